"""Load the demo team, users, model and data set versions from fixtures/demo.json.

Rerunnable: rows that exist are kept, so running it twice changes nothing.
Artifacts go through the same registration services as uploads.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from evalsvc.core.users import User
from evalsvc.evaluations.models import EvaluationRun
from evalsvc.evaluations.services import run_submit
from evalsvc.fleet.selectors import live_workers
from evalsvc.registry.curation import registered_model_update
from evalsvc.registry.models import DatasetVersion, ModelVersion
from evalsvc.registry.services import dataset_version_register, model_version_register
from evalsvc.registry.storage import hash_file
from evalsvc.reports.models import ReportPolicy
from evalsvc.reports.services import report_policy_set
from evalsvc.teams.models import Membership, Team
from evalsvc.teams.services import membership_set


class Command(BaseCommand):
    help = "Create the demo team and users and register the demo models and data sets."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--fixture", default=str(Path(settings.BASE_DIR) / "fixtures" / "demo.json"))
        parser.add_argument("--no-runs", action="store_true", help="Do not submit the demo evaluation runs.")
        parser.add_argument(
            "--wait-for-worker",
            type=float,
            default=0,
            metavar="SECONDS",
            help="Wait this long for a worker to come up before submitting the demo runs.",
        )

    def handle(self, *args: Any, fixture: str, no_runs: bool, wait_for_worker: float, **options: Any) -> None:
        path = Path(fixture)
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        spec = json.loads(path.read_text())
        base = path.parent
        User = get_user_model()

        team, _ = Team.objects.get_or_create(slug=spec["team"]["slug"], defaults={"name": spec["team"]["name"]})
        users = {}
        for entry in spec["users"]:
            user, created = User.objects.get_or_create(
                username=entry["username"], defaults={"email": entry.get("email", "")}
            )
            if created:
                user.set_password(entry["password"])
                user.save()
            if not Membership.objects.filter(team=team, user=user).exists():
                membership_set(team=team, user=user, role=entry["role"])
            users[entry["username"]] = user
        owner = users[spec["users"][0]["username"]]

        thresholds = spec["team"].get("thresholds")
        if thresholds and not ReportPolicy.objects.filter(team=team).exclude(thresholds={}).exists():
            report_policy_set(user=owner, team=team, thresholds=thresholds)
        models = {}
        for entry in spec["models"]:
            models[entry["key"]] = self._model(team, owner, base / entry["file"], entry)
            registered_model_update(
                user=owner,
                model_id=models[entry["key"]].registered_model_id,
                intended_use=entry.get("intended_use"),
                limitations=entry.get("limitations"),
            )
        datasets = {}
        for entry in spec["datasets"]:
            datasets[entry["key"]] = self._dataset(team, owner, base / entry["file"], entry)

        # Profiles have a worker of their own: wait for every queue the demo runs go to.
        needed = {"profile" if entry["kind"] == "profile" else "cpu" for entry in spec.get("runs", [])}
        if not no_runs and not self._worker_is_up(wait_for_worker, needed):
            self.stdout.write(
                self.style.WARNING(f"no worker serves {', '.join(sorted(needed))}: the demo runs were not submitted")
            )
            no_runs = True
        if not no_runs:
            for entry in spec.get("runs", []):
                model, dataset = models[entry["model"]], datasets[entry["dataset"]]
                if EvaluationRun.objects.filter(
                    model_version=model, dataset_version=dataset, kind=entry["kind"]
                ).exists():
                    continue
                with transaction.atomic():
                    run = run_submit(
                        user=owner,
                        model_version_id=model.pk,
                        dataset_version_id=dataset.pk,
                        kind=entry["kind"],
                        params=entry.get("params", {}),
                    )
                self.stdout.write(f"submitted {run.kind} run {run.pk} ({model} on {dataset})")
        self.stdout.write(self.style.SUCCESS(f"demo team {team.slug!r} ready"))

    def _worker_is_up(self, wait_s: float, queues: set[str]) -> bool:
        deadline = time.monotonic() + wait_s
        while True:
            served = {q for worker_queues in live_workers().values_list("queues", flat=True) for q in worker_queues}
            if live_workers().exists() and queues <= served:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)

    def _model(self, team: Team, owner: User, path: Path, entry: dict[str, Any]) -> ModelVersion:
        sha256, _ = hash_file(path)
        existing = ModelVersion.objects.filter(team=team, sha256=sha256).first()
        if existing:
            return existing
        version = model_version_register(
            user=owner, team=team, name=entry["name"], path=str(path), filename=path.name, notes=entry.get("notes", "")
        )
        self.stdout.write(f"registered {version} sha256={version.sha256[:12]}")
        return version

    def _dataset(self, team: Team, owner: User, path: Path, entry: dict[str, Any]) -> DatasetVersion:
        sha256, _ = hash_file(path)
        existing = DatasetVersion.objects.filter(team=team, sha256=sha256).first()
        if existing:
            return existing
        version = dataset_version_register(
            user=owner,
            team=team,
            name=entry["name"],
            path=str(path),
            filename=path.name,
            label_column=entry.get("label_column", ""),
            notes=entry.get("notes", ""),
        )
        self.stdout.write(f"registered {version} ({version.rows} rows)")
        return version
