"""Concurrent users: locust against gunicorn on PostgreSQL with 10,000 runs in the database.

Creates a scratch database (dropped and recreated), migrates it, seeds a team
of 50 users and ``--runs`` runs (``benchmarks/load/seed.py``), starts gunicorn
as the deployment does (the Dockerfile's ``CMD``: its worker count, worker class
and timeout; ``--workers`` overrides the count), and runs ``--users`` concurrent locust users
(``benchmarks/load/locustfile.py``) for ``--duration`` seconds: each browses
the pages (runs list, a run, home), lists and opens runs over the API, and
now and then submits a job (submissions queue: no Celery worker runs; the
queue is emptied afterwards). It prints p50/p95 per endpoint, the error rate,
and whether the goal holds (API list and detail p95 <= 300 ms, no errors);
``--record`` appends the table to benchmarks/RESULTS.md.

    python benchmarks/concurrent_users.py \\
        --database-url postgres://postgres@127.0.0.1:5432/evalsvc_load \\
        --broker-url redis://127.0.0.1:6379/9 --record

Each user waits 1-3 s between actions (``locustfile.py``). Run it on a quiet
machine: locust shares the cores with the service.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
LOAD = ROOT / "benchmarks" / "load"
#: The endpoints the goal is about, and the goal.
GOAL_ENDPOINTS = ("GET /api/runs/", "GET /api/runs/?status=", "GET /api/runs/{id}/")
GOAL_P95_MS = 300


def deployment_gunicorn_args() -> list[str]:
    """gunicorn's options in the Dockerfile's ``CMD`` (the web service's command), less the app and the bind."""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("CMD ["):
            command = json.loads(line.removeprefix("CMD "))
            break
    else:
        raise SystemExit("the Dockerfile has no CMD")
    if command[0] != "gunicorn":
        raise SystemExit(f"the Dockerfile's CMD is not gunicorn: {command}")
    options, args = [], iter(command[1:])
    for arg in args:
        if arg in ("--bind", "-b"):
            next(args)
        elif arg.startswith("--bind=") or (":" in arg and not arg.startswith("-")):
            continue  # the bind address or the application
        else:
            options.append(arg)
    return options


def gunicorn_args(workers: int | None) -> list[str]:
    """The deployment's options, with ``workers`` (when given) in place of its worker count."""
    options = deployment_gunicorn_args()
    if workers is None:
        return options
    out, args = [], iter(options)
    for arg in args:
        if arg in ("--workers", "-w"):
            next(args)
        elif not arg.startswith("--workers="):
            out.append(arg)
    return [*out, "--workers", str(workers)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def service_env(args: argparse.Namespace, var_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "evalsvc.settings.local",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": args.broker_url,
        "EVALSVC_VAR_DIR": str(var_dir),
        "PYTHONPATH": str(ROOT),
    }


def keep_worker_alive(database_url: str, stop: threading.Event) -> None:
    """The seeded worker's heartbeat, every 20 s, so that submissions stay accepted for the whole run."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            conn.execute("UPDATE fleet_workerstatus SET last_seen = now()")  # the scratch database's one worker
            if stop.wait(20):
                return


def wait_until_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/login/", timeout=5).read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("gunicorn did not answer within a minute")


def solo_times(host: str, state_path: Path, rounds: int = 10) -> list[dict[str, Any]]:
    """Each endpoint alone, one request at a time (before the users start): what one request costs here."""
    import statistics

    state = json.loads(state_path.read_text())
    user = state["users"][0]
    api = {"Authorization": f"Token {user['token']}", "Accept": "application/json"}
    page = {"Cookie": f"{state['session_cookie']}={user['session']}"}
    run, profile = state["sample_runs"]["evaluation"], state["sample_runs"]["profile"]
    cases = [
        ("GET /api/runs/", "/api/runs/?page=5", api),
        ("GET /api/runs/?status=", "/api/runs/?status=failed", api),
        ("GET /api/runs/{id}/ (evaluation)", f"/api/runs/{run}/", api),
        ("GET /api/runs/{id}/ (profile)", f"/api/runs/{profile}/", api),
        ("GET /api/model-versions/", "/api/model-versions/", api),
        ("page /runs/", "/runs/?page=3", page),
        ("page /runs/{id}/ (evaluation)", f"/runs/{run}/", page),
        ("page /runs/{id}/ (profile)", f"/runs/{profile}/", page),
        ("page /", "/", page),
    ]
    rows = []
    for name, path, headers in cases:
        times, size = [], 0
        for _ in range(rounds + 1):
            started = time.perf_counter()
            with urllib.request.urlopen(urllib.request.Request(host + path, headers=headers), timeout=60) as r:
                size = len(r.read())
            times.append(1000 * (time.perf_counter() - started))
        rows.append({"name": name, "p50": statistics.median(times[1:]), "bytes": size})
    return rows


def solo_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| endpoint, alone | median ms | body |", "|---|---:|---:|"]
    lines += [f"| {r['name']} | {r['p50']:.0f} | {r['bytes'] / 1024:.1f} kB |" for r in rows]
    return "\n".join(lines)


def read_stats(prefix: Path) -> list[dict[str, Any]]:
    rows = []
    with open(f"{prefix}_stats.csv") as fh:
        for row in csv.DictReader(fh):
            rows.append(
                {
                    "name": row["Name"] if row["Name"] != "Aggregated" else "all requests",
                    "requests": int(row["Request Count"]),
                    "failures": int(row["Failure Count"]),
                    "p50": float(row["50%"]),
                    "p95": float(row["95%"]),
                    "max": float(row["Max Response Time"]),
                    "rps": float(row["Requests/s"]),
                    "bytes": float(row["Average Content Size"]),
                }
            )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| endpoint | requests | errors | p50 ms | p95 ms | max ms | req/s | mean body |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['requests']} | {r['failures']} | {r['p50']:.0f} | {r['p95']:.0f} | {r['max']:.0f} "
            f"| {r['rps']:.1f} | {r['bytes'] / 1024:.1f} kB |"
        )
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]]) -> tuple[bool, str]:
    total = next(r for r in rows if r["name"] == "all requests")
    error_rate = total["failures"] / max(total["requests"], 1)
    worst = max((r["p95"] for r in rows if r["name"] in GOAL_ENDPOINTS), default=float("nan"))
    ok = worst <= GOAL_P95_MS and total["failures"] == 0
    return ok, (
        f"error rate {100 * error_rate:.2f} % ({total['failures']} of {total['requests']}); worst API list/detail "
        f"p95 {worst:.0f} ms (goal <= {GOAL_P95_MS} ms, 0 errors): {'pass' if ok else 'FAIL'}"
    )


def record(
    rows: list[dict[str, Any]], solo: list[dict[str, Any]], args: argparse.Namespace, load: tuple[float, float, float]
) -> None:
    import django
    import gunicorn
    import locust

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"""
## Concurrent users — {now}

- Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()}; load average after the run {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}{args.note}
- Versions: python {platform.python_version()}, django {django.get_version()}, gunicorn {gunicorn.__version__}, locust {locust.__version__}
- Method: `benchmarks/concurrent_users.py`; PostgreSQL with {args.runs:,} runs of one team (1 in 50 a latency profile of ~230 kB of result, the rest evaluations), gunicorn as deployed (`{" ".join(gunicorn_args(args.workers))}`), {args.users} locust users (one account each, {args.spawn_rate}/s ramp-up, 1–3 s between actions) for {args.duration} s; locust ran on the same 2 cores. Submissions queue (no Celery worker). First each endpoint alone (10 sequential requests, median), then the users.

{solo_table(solo)}

{table(rows)}

- {verdict(rows)[1]}
"""
    with RESULTS.open("a") as fh:
        fh.write(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a scratch PostgreSQL database (dropped and recreated)")
    parser.add_argument("--broker-url", required=True, help="a Redis database for the (unconsumed) job queue")
    parser.add_argument("--runs", type=int, default=10_000, help="runs to seed (default 10,000)")
    parser.add_argument("--users", type=int, default=50, help="concurrent locust users (default 50)")
    parser.add_argument("--spawn-rate", type=int, default=10, help="users started per second")
    parser.add_argument("--duration", type=int, default=60, help="seconds of load")
    parser.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers (default: the Dockerfile's, as deployed)"
    )
    parser.add_argument("--note", default="", help="appended to the machine line (e.g. what shared it)")
    parser.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="evalsvc-load-") as tmp:
        work = Path(tmp)
        env = service_env(args, work / "var")
        recreate_database(args.database_url)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        state = work / "state.json"
        started = time.monotonic()
        subprocess.run(
            [sys.executable, str(LOAD / "seed.py"), "--runs", str(args.runs), "--users", str(args.users),
             "--out", str(state)],
            cwd=ROOT, env=env, check=True,
        )  # fmt: skip
        print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
        print("gunicorn", " ".join(gunicorn_args(args.workers)), flush=True)
        port = free_port()
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "evalsvc.wsgi:application", *gunicorn_args(args.workers),
             "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT, env=env, stdout=(work / "web.log").open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        stop = threading.Event()
        heartbeat = threading.Thread(target=keep_worker_alive, args=(args.database_url, stop), daemon=True)
        try:
            host = f"http://127.0.0.1:{port}"
            heartbeat.start()
            wait_until_up(host)
            solo = solo_times(host, state)
            print(solo_table(solo), flush=True)
            prefix = work / "load"
            subprocess.run(
                [sys.executable, "-m", "locust", "-f", str(LOAD / "locustfile.py"), "--headless",
                 "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.duration}s", "--host", host,
                 "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"],
                cwd=ROOT, env={**env, "LOAD_STATE": str(state)}, check=True,
            )  # fmt: skip
            load = os.getloadavg()
        finally:
            stop.set()
            web.terminate()
            web.wait(timeout=30)
            _empty_queue(args.broker_url)
        rows = read_stats(prefix)
        if args.record:
            record(rows, solo, args, load)
        print(table(rows))
        print(verdict(rows)[1])


def _empty_queue(broker_url: str) -> None:
    """The submissions made during the run are not for any worker: drop them."""
    import redis

    from workers.queues import CPU, PROFILE

    redis.Redis.from_url(broker_url).delete(CPU, PROFILE)


if __name__ == "__main__":
    main()
