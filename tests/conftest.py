"""Shared fixtures: the named users, their teams, and registered demo artifacts.

alice owns team "alpha"; bob is a viewer on alpha; carol owns team "gamma".
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# Playwright's sync API runs an event loop in the test thread; the ORM calls made
# beside it in browser tests are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# Property tests: a modest number of examples keeps the suite fast; no per-example deadline, since a
# shared machine's pauses are not the code's. HYPOTHESIS_PROFILE=thorough runs many more.
hypothesis_settings.register_profile("default", max_examples=50, deadline=None)
hypothesis_settings.register_profile("thorough", max_examples=2000, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Drop sessions that outlive their tests before the test database is dropped.

    The live server's request threads and worker processes started by the
    end-to-end tests may leave an idle connection behind; PostgreSQL refuses
    to drop a database that still has one.
    """
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    """API throttles count in the cache; each test starts with none spent."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def digits_mlp():
    """fixtures/digits_mlp.onnx (built once by scripts/build_fixtures.py) with its data and sklearn's predictions."""
    from tests.support.models import load_digits_mlp

    return load_digits_mlp(FIXTURES)


@pytest.fixture
def users(db):
    from tests.factories import make_world

    return make_world()


@pytest.fixture
def alice(users):
    return users["alice"]


@pytest.fixture
def bob(users):
    return users["bob"]


@pytest.fixture
def carol(users):
    return users["carol"]


@pytest.fixture
def alpha(users):
    return users["alpha"]


@pytest.fixture
def api(users):
    """An API client per named user, authenticated with their token."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    clients = {}
    for name in ("alice", "bob", "carol"):
        client = APIClient()
        token, _ = Token.objects.get_or_create(user=users[name])
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        clients[name] = client
    return clients


@pytest.fixture
def bc_model(alice, alpha):
    from evalsvc.registry.services import model_version_register

    path = FIXTURES / "breast_cancer_logreg.onnx"
    return model_version_register(user=alice, team=alpha, name="bc", path=str(path), filename=path.name)


@pytest.fixture
def bc_data(alice, alpha):
    from evalsvc.registry.services import dataset_version_register

    path = FIXTURES / "breast_cancer_test.csv"
    return dataset_version_register(
        user=alice, team=alpha, name="bc-test", path=str(path), filename=path.name, label_column="diagnosis"
    )


@pytest.fixture
def diabetes_model(alice, alpha):
    from evalsvc.registry.services import model_version_register

    path = FIXTURES / "diabetes_ridge.onnx"
    return model_version_register(user=alice, team=alpha, name="diabetes", path=str(path), filename=path.name)


@pytest.fixture
def diabetes_data(alice, alpha):
    from evalsvc.registry.services import dataset_version_register

    path = FIXTURES / "diabetes.parquet"
    return dataset_version_register(
        user=alice, team=alpha, name="diabetes", path=str(path), filename=path.name, label_column="progression"
    )


def stored_blobs() -> set[str]:
    """Every file under the storage root (to prove failed uploads leave nothing)."""
    from django.conf import settings

    root = Path(settings.STORAGE_ROOT)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.fixture(scope="session")
def backend_probe():
    """What this process's backends report, probed once per test run (importing the runtimes is the slow part)."""
    from workers.engine.inference.registry import probe_backends

    return probe_backends()


@pytest.fixture
def local_worker(db, backend_probe):
    """This process, published as a live CPU worker with the backends it really has."""
    from evalsvc.fleet.services import worker_status_publish

    return worker_status_publish(
        hostname="tests@localhost",
        queues=["cpu", "profile"],
        backends=copy.deepcopy(backend_probe),  # a test may edit its worker's offers
        host={},
        starting=True,
    )
