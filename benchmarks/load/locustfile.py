"""Users of evalsvc for locust: they browse the pages, list and open runs over the API, and submit jobs.

Each simulated user is one seeded account (``LOAD_STATE``: the JSON that
``seed.py`` wrote), signed in with its API token for the API and its session
cookie for the pages. Requests are named by endpoint, not by id, so the
statistics are per endpoint. Like a person at a browser or a script polling
the API, each user waits 1–3 s (uniformly) between one action and the next.
"""

from __future__ import annotations

import itertools
import json
import os
import random

from locust import HttpUser, between, task

with open(os.environ["LOAD_STATE"]) as fh:
    STATE = json.load(fh)
_accounts = itertools.count()
#: API list pages the users open: the first 20, or as many as the seeded runs fill (50 a page).
API_PAGES = max(1, min(20, len(STATE["runs"]) // 50))


class EvalsvcUser(HttpUser):
    wait_time = between(1, 3)

    def on_start(self) -> None:
        account = STATE["users"][next(_accounts) % len(STATE["users"])]
        self.api = {"Authorization": f"Token {account['token']}", "Accept": "application/json"}
        self.client.cookies.set(STATE["session_cookie"], account["session"])
        self.rng = random.Random(account["username"])

    def _run_id(self) -> str:
        pool = STATE["profile_runs"] if self.rng.random() < 0.05 else STATE["runs"]
        return self.rng.choice(pool)

    # Browsing the pages.
    @task(3)
    def runs_page(self) -> None:
        self.client.get(f"/runs/?page={self.rng.randint(1, 20)}", name="page /runs/")

    @task(2)
    def run_page(self) -> None:
        self.client.get(f"/runs/{self._run_id()}/", name="page /runs/{id}/")

    @task(1)
    def home_page(self) -> None:
        self.client.get("/", name="page /")

    # The API.
    @task(6)
    def runs_list(self) -> None:
        self.client.get(f"/api/runs/?page={self.rng.randint(1, API_PAGES)}", headers=self.api, name="GET /api/runs/")

    @task(2)
    def runs_list_filtered(self) -> None:
        self.client.get("/api/runs/?status=failed", headers=self.api, name="GET /api/runs/?status=")

    @task(6)
    def run_detail(self) -> None:
        self.client.get(f"/api/runs/{self._run_id()}/", headers=self.api, name="GET /api/runs/{id}/")

    @task(1)
    def model_versions(self) -> None:
        self.client.get("/api/model-versions/", headers=self.api, name="GET /api/model-versions/")

    @task(1)
    def submit(self) -> None:
        body = {"model_version": STATE["model_version"], "dataset_version": STATE["dataset_version"]}
        with self.client.post(
            "/api/runs/", json=body, headers=self.api, name="POST /api/runs/", catch_response=True
        ) as r:
            if r.status_code != 201:
                r.failure(f"{r.status_code}: {r.text[:200]}")
