"""CPU time per request: what each endpoint of the load benchmark costs the web process, one client, in process.

Creates a scratch database (dropped and recreated), seeds it like
``concurrent_users.py`` (``benchmarks/load/seed.py``, ``--runs`` runs), then
sends each endpoint ``--rounds`` requests through Django's test client in one
process and prints the median process CPU time per request and the queries it
makes. CPU time, unlike wall time, hardly changes with what else the machine is
doing. Run pages are measured twice, side by side: with their figures drawn
for the request (the cache emptied before each one) and served from the cache.
``--record`` appends the table to benchmarks/RESULTS.md.

    python benchmarks/request_cpu.py \\
        --database-url postgres://postgres@127.0.0.1:5432/evalsvc_cpu \\
        --broker-url redis://127.0.0.1:6379/9 --record
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from concurrent_users import RESULTS, ROOT, recreate_database, service_env


def measure(state_path: Path, rounds: int) -> list[dict[str, Any]]:
    """In the service's environment: each endpoint's median CPU ms, queries and body size."""
    import django

    django.setup()
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client

    state = json.loads(state_path.read_text())
    user = state["users"][0]
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies[state["session_cookie"]] = user["session"]
    api = {"HTTP_AUTHORIZATION": f"Token {user['token']}", "HTTP_ACCEPT": "application/json"}
    run, profile = state["sample_runs"]["evaluation"], state["sample_runs"]["profile"]
    cases = [
        ("GET /api/runs/", "/api/runs/?page=5", api, False),
        ("GET /api/runs/?status=", "/api/runs/?status=failed", api, False),
        ("GET /api/runs/{id}/ (evaluation)", f"/api/runs/{run}/", api, False),
        ("GET /api/runs/{id}/ (profile)", f"/api/runs/{profile}/", api, False),
        ("GET /api/model-versions/", "/api/model-versions/", api, False),
        ("page /runs/", "/runs/?page=3", {}, False),
        ("page /runs/{id}/ (evaluation), figures drawn", f"/runs/{run}/", {}, True),
        ("page /runs/{id}/ (evaluation), figures cached", f"/runs/{run}/", {}, False),
        ("page /runs/{id}/ (profile), figures drawn", f"/runs/{profile}/", {}, True),
        ("page /runs/{id}/ (profile), figures cached", f"/runs/{profile}/", {}, False),
        ("page /", "/", {}, False),
    ]
    queries: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append(sql)
        return execute(sql, params, many, context)

    rows = []
    for name, path, headers, cold in cases:
        first = client.get(path, **headers)
        if first.status_code != 200:
            raise SystemExit(f"{name}: {first.status_code}")
        times = []
        for _ in range(rounds):
            if cold:
                cache.clear()
            queries.clear()
            started = time.process_time()
            with connection.execute_wrapper(count):
                client.get(path, **headers)
            times.append(1000 * (time.process_time() - started))
        rows.append({"name": name, "cpu_ms": statistics.median(times), "queries": len(queries),
                     "bytes": len(first.content)})  # fmt: skip
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| endpoint | CPU ms per request (median) | queries | body |", "|---|---:|---:|---:|"]
    lines += [f"| {r['name']} | {r['cpu_ms']:.1f} | {r['queries']} | {r['bytes'] / 1024:.1f} kB |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a scratch PostgreSQL database (dropped and recreated)")
    parser.add_argument("--broker-url", required=True, help="a Redis database for the seed's jobs")
    parser.add_argument("--runs", type=int, default=10_000, help="runs to seed (default 10,000)")
    parser.add_argument("--rounds", type=int, default=30, help="requests per endpoint (default 30)")
    parser.add_argument("--note", default="", help="appended to the machine line (e.g. what shared it)")
    parser.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the inner step, in the service's environment
    args = parser.parse_args()

    if args.measure:
        print(json.dumps(measure(args.measure, args.rounds)))
        return
    with tempfile.TemporaryDirectory(prefix="evalsvc-cpu-") as tmp:
        work = Path(tmp)
        env = service_env(args, work / "var")
        recreate_database(args.database_url)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        state = work / "state.json"
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "load" / "seed.py"), "--runs", str(args.runs), "--users", "2",
             "--out", str(state)],
            cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        out = subprocess.run(
            [sys.executable, __file__, "--database-url", args.database_url, "--broker-url", args.broker_url,
             "--rounds", str(args.rounds), "--measure", str(state)],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        rows = json.loads(out.stdout.strip().splitlines()[-1])
    print(table(rows))
    if args.record:
        import django

        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        load = os.getloadavg()
        with RESULTS.open("a") as fh:
            fh.write(
                f"\n## CPU time per request — {now}\n\n"
                f"- Machine: {platform.machine()}, {os.cpu_count()} logical cores; load average after "
                f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}{args.note}\n"
                f"- Versions: python {platform.python_version()}, django {django.get_version()}\n"
                f"- Method: `benchmarks/request_cpu.py`; PostgreSQL with {args.runs:,} seeded runs; Django's test "
                f"client in one process, {args.rounds} requests per endpoint, median process CPU time. Run pages "
                f"side by side: figures drawn for each request (cache emptied before it) and served from the cache.\n\n"
                f"{table(rows)}\n"
            )


if __name__ == "__main__":
    main()
