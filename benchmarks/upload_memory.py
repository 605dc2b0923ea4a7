"""Upload memory and time: the web process's peak memory and the time a request holds it, per upload.

Starts the service as deployed (gunicorn, one sync worker, on PostgreSQL)
and one Celery worker on Redis, in a scratch database and storage root, and
uploads over HTTP, streaming each body from disk:

* a 600 MB ``.onnx`` of zeros (refused by the worker: not an ONNX model),
* a 1.5 GB numeric CSV (about 75 M rows; made ready by the worker),
* a body announced above the limit (refused before it is read), and one
  whose file passes the limit while it streams (cut off there).

The web worker process's resident memory (VmRSS) is sampled every 10 ms;
"above idle" is its peak during the request minus its memory just before,
after a warm-up upload of each kind. For the large files the validation
worker's time and peak memory above idle are given too (``--pool solo``,
so validation runs in the sampled process).

``--onnx-check`` adds the ONNX check itself, side by side in child
processes: a valid model whose one initializer holds ``--onnx-mb`` MB of
weights, checked as registration checked it before (``onnx.load`` of the
whole file, then the checker and strict shape inference on the loaded
model) and as it does now (:func:`workers.engine.formats.onnx.inspect_onnx`,
which leaves the weights on disk); peak memory above the child's memory just before the check and
seconds, with their ratios.

With ``--inline`` the same files are also uploaded to a second gunicorn with
``EVALSVC_INLINE_VALIDATION_MB`` above their size, so they are validated
inside the request, as every upload was before: the two rows of each file
sit side by side.

Run ``python benchmarks/upload_memory.py --database-url postgres://…/scratch
--broker-url redis://…/N`` (the database is dropped and recreated: never
point it at one you need); ``--record`` appends the table to
benchmarks/RESULTS.md. The temporary files are deleted afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
MIB = 1024 * 1024
GOAL_MIB = 100


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


class Sampler:
    """Peak VmRSS of a process while a block runs, sampled on a thread."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid, self.interval = pid, interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(self.interval)

    def __enter__(self) -> Sampler:
        self.idle = rss_mib(self.pid)
        self.peak = self.idle
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib(self.pid))

    @property
    def above_idle(self) -> float:
        return self.peak - self.idle


# --- the service --------------------------------------------------------------------


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


def service_env(args: argparse.Namespace, var_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "evalsvc.settings.local",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": args.broker_url,
        "EVALSVC_VAR_DIR": str(var_dir),
        "PYTHONPATH": str(ROOT),
        "EVALSVC_MAX_UPLOAD_MB": str(args.limit_mb),
        **extra,
    }


def setup_world(env: dict[str, str]) -> str:
    """Migrate, create a team with its owner; return the owner's API token."""
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    script = (
        "from django.contrib.auth import get_user_model\n"
        "from rest_framework.authtoken.models import Token\n"
        "from evalsvc.teams.models import Membership, Role, Team\n"
        "u = get_user_model().objects.create_user('bench', password='x')\n"
        "for slug in ('worker', 'inline'):\n"
        "    t = Team.objects.create(name=slug, slug=slug)\n"
        "    Membership.objects.create(team=t, user=u, role=Role.OWNER)\n"
        "print(Token.objects.create(user=u).key)\n"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True, capture_output=True
    )
    return out.stdout.decode().strip().splitlines()[-1]


@dataclass
class Web:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def worker_pid(self) -> int:
        """gunicorn's one worker process (the child that serves requests)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return int(children[0])


def start_web(env: dict[str, str], log: Path) -> Web:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "evalsvc.wsgi", "-w", "1", "-b", f"127.0.0.1:{port}", "--timeout", "600"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/teams/")
            conn.getresponse().read()
            web = Web(process, port)
            web.worker_pid  # noqa: B018 - the worker has started
            return web
        except (OSError, IndexError, FileNotFoundError):
            time.sleep(0.3)
    raise RuntimeError(f"gunicorn did not start:\n{log.read_text()[-2000:]}")


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    name = f"bench-{uuid.uuid4().hex[:6]}@localhost"
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "evalsvc",
            "worker",
            "-Q",
            "cpu,registry",
            "--pool",
            "solo",
            "-n",
            name,
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- uploads --------------------------------------------------------------------------


def _zeros(size: int) -> Iterator[bytes]:
    block = b"\0" * MIB
    while size > 0:
        yield block[: min(size, MIB)]
        size -= MIB


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(MIB):
            yield chunk


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    seconds: float
    #: From the last byte sent to the answer: what the request holds the web process beyond receiving.
    after_body: float
    sent: int


def post_multipart(
    port: int,
    url: str,
    token: str,
    fields: dict[str, str],
    filename: str,
    size: int,
    chunks: Iterator[bytes],
    *,
    content_length: int | None = None,
) -> Answer:
    """A multipart POST with the file streamed from `chunks` (never whole in this process's memory)."""
    boundary = uuid.uuid4().hex
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    started = time.monotonic()
    sent = 0
    conn.putrequest("POST", url)
    conn.putheader("Authorization", f"Token {token}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(content_length or len(head) + size + len(tail)))
    conn.endheaders()
    try:
        conn.send(head)
        for chunk in chunks:
            conn.send(chunk)
            sent += len(chunk)
        conn.send(tail)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed before the whole body was sent
    body_sent = time.monotonic()
    try:
        response = conn.getresponse()
        raw = response.read()
        status = response.status
    except (ConnectionResetError, http.client.RemoteDisconnected):
        status, raw = 0, b"{}"
    answered = time.monotonic()
    conn.close()
    try:
        body = json.loads(raw or b"{}")
    except json.JSONDecodeError:
        body = {"raw": raw[:200].decode(errors="replace")}
    return Answer(status, body, answered - started, answered - body_sent, sent)


def get_json(port: int, url: str, token: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", url, headers={"Authorization": f"Token {token}"})
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body


def make_csv(path: Path, size: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    rows = rng.integers(0, 10_000, size=(60_000, 4))
    block = "".join(f"{a},{b / 100:.2f},{c},{d % 2}\n" for a, b, c, d in rows).encode()
    with path.open("wb") as fh:
        fh.write(b"a,b,c,label\n")
        written = 12
        while written < size:
            fh.write(block)
            written += len(block)


# --- the run ----------------------------------------------------------------------------


def wait_decided(
    port: int, token: str, url: str, worker_pid: int | None, timeout: float = 1800
) -> tuple[dict, float, float]:
    started = time.monotonic()
    sampler = Sampler(worker_pid) if worker_pid else None
    if sampler:
        sampler.__enter__()
    try:
        while time.monotonic() - started < timeout:
            body = get_json(port, url, token)
            if body.get("status") != "validating":
                break
            time.sleep(0.5)
    finally:
        if sampler:
            sampler.__exit__()
    return body, time.monotonic() - started, sampler.above_idle if sampler else float("nan")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="upload-bench-", dir=args.tmp_dir))
    try:
        recreate_database(args.database_url)
        onnx_path, csv_path = tmp / "zeros.onnx", tmp / "big.csv"
        with onnx_path.open("wb") as fh:
            fh.truncate(args.onnx_mb * MIB)
        make_csv(csv_path, args.csv_mb * MIB)
        warm_csv, warm_onnx = tmp / "warm.csv", tmp / "warm.onnx"
        make_csv(warm_csv, 9 * MIB)
        with warm_onnx.open("wb") as fh:
            fh.truncate(9 * MIB)
        small_csv = ROOT / "fixtures" / "breast_cancer.csv"
        small_onnx = ROOT / "fixtures" / "breast_cancer_logreg.onnx"
        modes = [("worker", {})]
        if args.inline:
            modes.append(("inline", {"EVALSVC_INLINE_VALIDATION_MB": str(args.csv_mb * 2)}))
        token = ""
        for mode, extra in modes:
            var_dir = tmp / f"var-{mode}"
            env = service_env(args, var_dir, **extra)
            if not token:
                token = setup_world(env)
            web = start_web(env, tmp / f"web-{mode}.log")
            worker = start_worker(env, tmp / f"worker-{mode}.log") if mode == "worker" else None
            try:
                time.sleep(3)
                # Warm-up: the first upload of each kind imports what validation needs, in the web process
                # and (files above the inline limit) in the worker.
                for i, path in enumerate((small_csv, small_onnx, warm_csv, warm_onnx)):
                    url = "/api/dataset-versions/" if path.suffix == ".csv" else "/api/model-versions/"
                    warm = post_multipart(web.port, url, token, {"team": mode, "name": f"warm-{i}"},
                                          path.name, path.stat().st_size, _file_chunks(path))  # fmt: skip
                    if warm.status == 202:
                        wait_decided(web.port, token, f"{url}{warm.body['id']}/", None)
                cases = [
                    (f"{args.onnx_mb} MB .onnx of zeros", "/api/model-versions/", onnx_path),
                    (f"{args.csv_mb / 1000:.1f} GB CSV", "/api/dataset-versions/", csv_path),
                ]
                for label, url, path in cases:
                    size = path.stat().st_size
                    with Sampler(web.worker_pid) as web_mem:
                        answer = post_multipart(web.port, url, token, {"team": mode, "name": path.stem},
                                                path.name, size, _file_chunks(path))  # fmt: skip
                    row = {
                        "mode": mode, "upload": label, "bytes": size, "status": answer.status,
                        "request_s": answer.seconds, "after_body_s": answer.after_body,
                        "web_above_idle_mib": web_mem.above_idle,
                        "outcome": answer.body.get("status") or answer.body.get("detail", "")[:80],
                    }  # fmt: skip
                    if answer.status == 202 and worker is not None:
                        kind = "model" if url.startswith("/api/model") else "dataset"
                        final, seconds, peak = wait_decided(
                            web.port, token, f"/api/{kind}-versions/{answer.body['id']}/", worker.pid
                        )
                        row.update(
                            outcome=final["status"] + (f": {final['status_message'][:70]}" if final.get("status_message") else ""),
                            validation_s=seconds,
                            worker_above_idle_mib=peak,
                        )  # fmt: skip
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                if mode == "worker":
                    limit = args.limit_mb * MIB
                    for label, size, announced in (
                        ("body announced over the limit", limit + 8 * MIB, None),
                        # Within the form's allowance by its length; the file alone passes the limit.
                        ("file passes the limit while streaming", limit + 3 * MIB, None),
                    ):
                        with Sampler(web.worker_pid) as web_mem:
                            answer = post_multipart(
                                web.port, "/api/dataset-versions/", token, {"team": mode, "name": "over"},
                                "over.csv", size, _zeros(size), content_length=announced,
                            )  # fmt: skip
                        row = {
                            "mode": mode, "upload": label, "bytes": size, "status": answer.status,
                            "request_s": answer.seconds, "after_body_s": answer.after_body,
                            "web_above_idle_mib": web_mem.above_idle,
                            "outcome": answer.body.get("detail", "")[:80], "sent": answer.sent,
                        }  # fmt: skip
                        rows.append(row)
                        print(json.dumps(row), flush=True)
            finally:
                stop(web.process)
                if worker is not None:
                    stop(worker)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


_CHECK_BEFORE = """
import sys, time, onnx
from onnx import shape_inference
def kb(field): return int(open('/proc/self/status').read().split(field + ':')[1].split()[0])
open('/proc/self/clear_refs', 'w').write('5')  # the peak (VmHWM) starts again from now
start = kb('VmRSS')
t = time.perf_counter()
model = onnx.load(sys.argv[1], load_external_data=False)
onnx.checker.check_model(model, full_check=False)
shape_inference.infer_shapes(model, strict_mode=True)
print(time.perf_counter() - t, (kb('VmHWM') - start) / 1024)
"""
_CHECK_NOW = """
import sys, time
from workers.engine.formats.onnx import inspect_onnx
def kb(field): return int(open('/proc/self/status').read().split(field + ':')[1].split()[0])
open('/proc/self/clear_refs', 'w').write('5')  # the peak (VmHWM) starts again from now
start = kb('VmRSS')
t = time.perf_counter()
inspect_onnx(sys.argv[1])
print(time.perf_counter() - t, (kb('VmHWM') - start) / 1024)
"""


def make_weighted_onnx(path: Path, size: int) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = size // 4 // 1000 * 1000
    weights = numpy_helper.from_array(np.ones((1000, n // 1000), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "weighted",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1000])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n // 1000])],
        [weights],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def onnx_check(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="onnx-check-", dir=args.tmp_dir))
    try:
        path = tmp / "weighted.onnx"
        make_weighted_onnx(path, args.onnx_mb * 1000 * 1000)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for label, script in (("whole file (before)", _CHECK_BEFORE), ("without weights (now)", _CHECK_NOW)):
            out = subprocess.run(
                [sys.executable, "-c", script, str(path)], env=env, cwd=ROOT, check=True, capture_output=True
            )
            seconds, peak = map(float, out.stdout.decode().split()[-2:])
            rows.append({"check": label, "bytes": path.stat().st_size, "seconds": seconds, "peak_mib": peak})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def check_table(rows: list[dict[str, Any]]) -> str:
    before, now = rows
    return "\n".join(
        [
            "| ONNX check of a valid model | file | seconds | peak memory above start |",
            "|---|---:|---:|---:|",
            *(
                f"| {r['check']} | {r['bytes'] / MIB:,.0f} MiB | {r['seconds']:.2f} | {r['peak_mib']:,.0f} MiB |"
                for r in rows
            ),
            f"| ratio now / before | | {now['seconds'] / before['seconds']:.3f} "
            f"| {now['peak_mib'] / max(before['peak_mib'], 1):.4f} |",
        ]
    )


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| upload | validated | answer | request s | of which after the body | body sent | web process peak above idle | validation s | worker peak above idle | outcome |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        where = "in the request" if r["mode"] == "inline" else ("worker" if r["status"] == 202 else "—")
        validation = f"{r['validation_s']:.1f}" if "validation_s" in r else "—"
        worker = f"{r['worker_above_idle_mib']:.0f} MiB" if "worker_above_idle_mib" in r else "—"
        lines.append(
            f"| {r['upload']} | {where} | {r['status']} | {r['request_s']:.1f} | {r['after_body_s']:.2f}"
            f" | {r.get('sent', r['bytes']) / MIB:,.0f} of {r['bytes'] / MIB:,.0f} MiB | {r['web_above_idle_mib']:.0f} MiB"
            f" | {validation} | {worker} | {r['outcome']} |"
        )
    return "\n".join(lines)


def record(rows: list[dict[str, Any]], checks: list[dict[str, Any]], args: argparse.Namespace) -> None:
    import django
    import gunicorn

    worst = max((r["web_above_idle_mib"] for r in rows if r["mode"] == "worker"), default=float("nan"))
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()
    text = f"""
## Upload memory — {now}

- Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()}; load average after the run {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}{args.note}
- Versions: python {platform.python_version()}, django {django.get_version()}, gunicorn {gunicorn.__version__}
- Method: `benchmarks/upload_memory.py`; gunicorn with one sync worker on PostgreSQL, one Celery worker (`--pool solo`) on Redis; bodies streamed over HTTP from disk; VmRSS of the serving process sampled every 10 ms, peak minus the value just before the request (after a warm-up upload of each kind). Upload limit {args.limit_mb} MiB, inline validation up to 8 MiB{"; the inline rows are a second gunicorn with inline validation above the files' size (as files up to the inline limit are still validated)" if args.inline else ""}.

{table(rows) if rows else ""}

{check_table(checks) if checks else ""}

- Goal: the web process stays under {GOAL_MIB} MiB above idle for uploads up to the limit: worst here {worst:.0f} MiB ({"pass" if worst < GOAL_MIB else "FAIL"}).
"""
    with RESULTS.open("a") as fh:
        fh.write(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a scratch PostgreSQL database (dropped and recreated)")
    parser.add_argument("--broker-url", required=True, help="a Redis database for the worker's queue")
    parser.add_argument("--onnx-mb", type=int, default=600)
    parser.add_argument("--csv-mb", type=int, default=1500)
    parser.add_argument("--limit-mb", type=int, default=2048, help="EVALSVC_MAX_UPLOAD_MB of the service")
    parser.add_argument("--inline", action="store_true", help="also validate the same files inside the request")
    parser.add_argument("--tmp-dir", default=None, help="where the files and the scratch storage go")
    parser.add_argument("--note", default="", help="appended to the machine line (e.g. what shared it)")
    parser.add_argument("--onnx-check", action="store_true", help="also compare the ONNX check before and now")
    parser.add_argument("--no-uploads", action="store_true", help="skip the HTTP uploads (with --onnx-check)")
    parser.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = [] if args.no_uploads else run(args)
    checks = onnx_check(args) if args.onnx_check else []
    if args.record:
        record(rows, checks, args)
    if rows:
        print(table(rows))
    if checks:
        print(check_table(checks))


if __name__ == "__main__":
    main()
