"""The compose deployment's nginx (deploy/nginx.conf) hands gunicorn an upload only once its last byte is in.

The repository's configuration is run as it is, with only the addresses and
the temporary folder changed, in front of a real gunicorn whose sync worker
times out after 5 s; a client sends 4 MiB at 600 kB/s (about 7 s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.outages import free_port

pytestmark = [pytest.mark.e2e]

APP = """
import time
def app(environ, start_response):
    started = time.time()
    n = len(environ["wsgi.input"].read())
    body = f"{started:.3f} {time.time():.3f} {n} {environ.get('HTTP_X_FORWARDED_FOR')}".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


def _wait_port(port: int, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


@pytest.mark.skipif(shutil.which("nginx") is None or shutil.which("curl") is None, reason="needs nginx and curl")
def test_a_slow_upload_holds_nginx_not_a_gunicorn_worker(tmp_path: Path):
    web, proxy = free_port(), free_port()
    (tmp_path / "app.py").write_text(APP)
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = site.replace("server web:8000;", f"server 127.0.0.1:{web};").replace(
        "listen 8000;", f"listen 127.0.0.1:{proxy};"
    )
    site = site.replace("/var/cache/nginx/client_temp", str(tmp_path / "client_temp"))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "main.conf").write_text(
        # Started as root, nginx's workers would drop to "nobody", who cannot write in this private folder.
        ("user root;\n" if os.getuid() == 0 else "")
        + f"daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{ access_log off; include {tmp_path}/site.conf; }}\n"
    )
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "app:app", "-b", f"127.0.0.1:{web}", "-w", "1", "--timeout", "5"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    nginx = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "main.conf")])
    try:
        _wait_port(web)
        _wait_port(proxy)
        body = tmp_path / "body.bin"
        body.write_bytes(b"\0" * (4 * 1024 * 1024))
        sent_from = time.time()
        answer = subprocess.run(
            ["curl", "-s", "--limit-rate", "600k", "-H", "Content-Type: application/octet-stream",
             "--data-binary", f"@{body}", f"http://127.0.0.1:{proxy}/upload", "-w", " %{http_code}"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.split()  # fmt: skip
        sent_until = time.time()
        assert len(answer) == 5, answer
        started, ended, size, forwarded, status = answer
        assert status == "200" and int(size) == 4 * 1024 * 1024
        assert sent_until - sent_from > 5  # longer than the worker's timeout: served directly, it would be cut off
        assert float(started) - sent_from > sent_until - sent_from - 1  # the worker got it once it had all arrived
        assert float(ended) - float(started) < 1  # and held it briefly
        assert forwarded == "127.0.0.1"  # the address nginx saw, for the web server to trust
        # Past the limit (plus framing): refused at once by Content-Length, with a JSON body naming the limit.
        refused = subprocess.run(
            ["curl", "-s", "-H", "Content-Length: 3000000000", "-H", "Content-Type: application/octet-stream",
             "--data-binary", "x", f"http://127.0.0.1:{proxy}/upload", "-w", "\n%{http_code}", "--max-time", "10"],
            capture_output=True, text=True, timeout=30,
        ).stdout.splitlines()  # fmt: skip
        assert refused[-1] == "413" and "2,048 MiB limit" in refused[0]
    finally:
        for process in (nginx, gunicorn):
            process.terminate()
            process.wait(timeout=20)
