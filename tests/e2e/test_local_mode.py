"""`make run`'s script on embedded defaults: SQLite, the filesystem broker, web + worker + beat.

Runs scripts/run_local.sh as a user would (in a scratch var/ directory), waits
for the demo runs to be finished by its worker, and fetches pages
from its web server.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except OSError:
        return 0, b""


def _run_statuses(db: Path) -> list[str]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return [row[0] for row in conn.execute("SELECT status FROM evaluations_evaluationrun")]
    except sqlite3.OperationalError:  # tables not created yet
        return []


def test_run_script_starts_everything_and_finishes_the_demo_runs(tmp_path):
    port = _free_port()
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="evalsvc.settings.local",
        EVALSVC_VAR_DIR=str(var),
        HOST="127.0.0.1",
        PORT=str(port),
    )
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            ["bash", "scripts/run_local.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        statuses: list[str] = []
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            statuses = _run_statuses(var / "db.sqlite3")
            if len(statuses) == 3 and all(s in ("succeeded", "failed") for s in statuses):
                break
            time.sleep(1)
        # Two evaluations and a latency profile, on the worker's cpu and profile queues.
        assert statuses == ["succeeded"] * 3, (statuses, log_path.read_text()[-4000:])

        # the worker may finish the demo runs before the web server is listening
        while time.monotonic() < deadline:
            status, body = _get(f"{base}/login/")
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200 and b"Sign in" in body
        status, body = _get(f"{base}/static/vendor/plotly.min.js")
        assert status == 200 and len(body) > 1_000_000
        output = log_path.read_text()
        assert f"http://127.0.0.1:{port}/" in output and "demo / evalsvc-demo" in output
        # The banner is not buried: what comes before it is a few lines of progress, not a migration log.
        before_banner = output.split("evalsvc is starting at")[0].strip().splitlines()
        assert len(before_banner) <= 15, before_banner
        # profiles have a worker of their own: the evaluations never wait behind the demo profile
        profile_log = (var / "log" / "profile-worker.log").read_text()
        assert "evalsvc.profile[" in profile_log and "evalsvc.evaluate[" not in profile_log
        assert "evalsvc.profile[" not in (var / "log" / "worker.log").read_text()
        # large uploads are validated on their own queue, by a worker of their own
        assert ".> registry" in (var / "log" / "registry-worker.log").read_text()
        assert (var / "log" / "beat.log").exists()
        assert "beat: Starting" in (var / "log" / "beat.log").read_text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
