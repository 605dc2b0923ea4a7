"""A monitor on the breast-cancer classifier with a reference data set, and a loopback webhook receiver."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pandas as pd
import pytest

from tests.conftest import FIXTURES

REFERENCE = FIXTURES / "breast_cancer_test.csv"
SHIFTED = ["mean_radius", "worst_texture"]


@pytest.fixture
def reference_table() -> pd.DataFrame:
    return pd.read_csv(REFERENCE)


def drifted_rows(table: pd.DataFrame) -> list[dict]:
    rows = table.copy()
    for name in SHIFTED:
        rows[name] += table[name].std()
    return rows.to_dict(orient="records")


@pytest.fixture
def webhook_server():
    """An HTTP server on loopback that records every POST (headers and raw body)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"headers": dict(self.headers), "body": body})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()
