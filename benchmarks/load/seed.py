"""Seed a scratch database for the load benchmark: one team, its users, and many runs.

Run with the service's settings in the environment (``DATABASE_URL`` ...):
``python benchmarks/load/seed.py --runs 10000 --users 50 --out state.json``.
It registers the breast-cancer model and data set from ``fixtures/``, runs
one evaluation and one latency profile of them with the real tasks, stores
``--runs`` runs copying those results (one in 50 a profile), publishes a
worker so that submissions are accepted (they queue: no worker consumes
them), and writes what the users need (API tokens, session cookies, run ids)
to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsvc.settings.local")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from evalsvc.evaluations.models import EvaluationRun, RunStatus  # noqa: E402
from evalsvc.fleet.services import worker_status_publish  # noqa: E402
from evalsvc.registry.services import dataset_version_register, model_version_register  # noqa: E402
from evalsvc.teams.models import Membership, Role, Team  # noqa: E402

FIXTURES = ROOT / "fixtures"
WORKER = "load-benchmark@localhost"


def real_results(*, user: Any, model: Any, data: Any) -> tuple[EvaluationRun, EvaluationRun]:
    """One evaluation and one latency profile, run here by the real tasks: the seeded runs copy their results."""
    from evalsvc.evaluations.services import run_submit
    from workers.tasks.evaluate import run_evaluate
    from workers.tasks.profile import run_profile

    evaluation = run_submit(user=user, model_version_id=model.pk, dataset_version_id=data.pk)
    run_evaluate.apply(args=[str(evaluation.pk)])
    profile = run_submit(
        user=user, model_version_id=model.pk, dataset_version_id=None, kind="profile",
        params={"backends": ["onnxruntime"], "batch_sizes": [1, 32], "threads": [1], "max_seconds_per_cell": 1},
    )  # fmt: skip
    run_profile.apply(args=[str(profile.pk)])
    evaluation.refresh_from_db()
    profile.refresh_from_db()
    assert evaluation.status == profile.status == RunStatus.SUCCEEDED, (evaluation.error, profile.error)
    return evaluation, profile


def seed_runs(*, team: Team, users: list[Any], templates: tuple[EvaluationRun, EvaluationRun], count: int,
              rng: random.Random) -> None:  # fmt: skip
    """``count`` runs over the past, mostly succeeded evaluations; one in 50 a latency profile."""
    now = timezone.now()
    statuses = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.QUEUED, RunStatus.CANCELLED]
    batch: list[EvaluationRun] = []
    for i in range(count):
        created = now - timedelta(minutes=count - i)
        status = rng.choices(statuses, weights=[85, 8, 5, 2])[0]
        template = templates[1] if i % 50 == 0 else templates[0]
        done = status == RunStatus.SUCCEEDED
        batch.append(
            EvaluationRun(
                team=team, kind=template.kind, status=status, model_version=template.model_version,
                dataset_version=template.dataset_version, params=template.params, queue=template.queue,
                result=template.result if done else None, headline=template.headline if done else "",
                environment=template.environment if done else {},
                progress=1.0 if done else 0.0, progress_message="done" if done else "",
                error="the worker reported: out of memory" if status == RunStatus.FAILED else "",
                created_by=users[i % len(users)], attempts=0 if status == RunStatus.QUEUED else 1,
                started_at=None if status == RunStatus.QUEUED else created,
                finished_at=created + timedelta(seconds=20) if status in (RunStatus.SUCCEEDED, RunStatus.FAILED) else None,
            )
        )  # fmt: skip
        if len(batch) == 500:
            _backdate(EvaluationRun.objects.bulk_create(batch))
            batch = []
    if batch:
        _backdate(EvaluationRun.objects.bulk_create(batch))


def _backdate(runs: list[EvaluationRun]) -> None:
    # created_at is set on insert; spread the runs over the past as a team's history would be.
    for run in runs:
        run.created_at = run.started_at or run.finished_at or timezone.now()
    EvaluationRun.objects.bulk_update(runs, ["created_at"])


def session_cookie(user: Any) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    assert session.session_key is not None
    return session.session_key


def publish_worker() -> None:
    """A live CPU worker offering ONNX Runtime, so that submissions are accepted (and queue)."""
    from workers.engine.inference.registry import probe_backends

    worker_status_publish(hostname=WORKER, queues=["cpu", "profile"], backends=probe_backends(), host={})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--publish-worker-only", action="store_true", help="refresh the worker's heartbeat and stop")
    args = parser.parse_args()
    if args.publish_worker_only:
        publish_worker()
        return
    rng = random.Random(15)
    team = Team.objects.create(name="Load", slug="load")
    users = []
    for i in range(args.users):
        user = get_user_model().objects.create_user(f"user{i:02d}", password=None)
        Membership.objects.create(team=team, user=user, role=Role.EDITOR)
        users.append(user)
    model = model_version_register(
        user=users[0], team=team, name="bc", path=str(FIXTURES / "breast_cancer_logreg.onnx"), filename="bc.onnx"
    )
    data = dataset_version_register(
        user=users[0], team=team, name="bc-test", path=str(FIXTURES / "breast_cancer_test.csv"),
        filename="bc_test.csv", label_column="diagnosis",
    )  # fmt: skip
    publish_worker()
    templates = real_results(user=users[0], model=model, data=data)
    sizes = [len(json.dumps(t.result)) for t in templates]
    seed_runs(team=team, users=users, templates=templates, count=args.runs - 2, rng=rng)
    with connection.cursor() as cursor:
        # What autovacuum does to a table in steady use: planner statistics and the visibility map.
        cursor.execute("VACUUM ANALYZE")
    runs = list(EvaluationRun.objects.filter(team=team).values_list("pk", "kind", "status"))
    state = {
        "users": [
            {"username": u.username, "token": Token.objects.create(user=u).key, "session": session_cookie(u)}
            for u in users
        ],
        "session_cookie": settings.SESSION_COOKIE_NAME,
        "model_version": str(model.pk),
        "dataset_version": str(data.pk),
        "runs": [str(pk) for pk, kind, _ in runs if kind == "evaluate"],
        "profile_runs": [str(pk) for pk, kind, status in runs if kind == "profile" and status == RunStatus.SUCCEEDED],
        "sample_runs": {"evaluation": str(templates[0].pk), "profile": str(templates[1].pk)},
    }
    state["result_bytes"] = {"evaluate": sizes[0], "profile": sizes[1]}
    args.out.write_text(json.dumps(state))
    print(f"seeded {len(runs)} runs, {len(users)} users; results of {sizes[0]:,} and {sizes[1]:,} bytes")


if __name__ == "__main__":
    main()
