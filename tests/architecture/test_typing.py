"""The type-checking rules `make lint` relies on, kept by the code itself."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from evalsvc.core.users import signed_in_user

ROOT = Path(__file__).resolve().parents[2]
EVALSVC = ROOT / "evalsvc"
#: Where a request's user may be read as it is: the helper itself, and code that serves anonymous visitors too.
READS_ANONYMOUS = {"core/users.py", "core/apidocs.py", "core/middleware.py"}


def _sources() -> list[Path]:
    return [p for p in EVALSVC.rglob("*.py") if "migrations" not in p.parts]


def _mypy_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]


def test_no_module_is_exempt_from_type_checking():
    exempt = [o["module"] for o in _mypy_config().get("overrides", []) if o.get("ignore_errors")]
    assert exempt == []


def test_engine_is_checked_strictly():
    overrides = _mypy_config()["overrides"]
    engine = next(o for o in overrides if "workers.engine.*" in o["module"])
    for flag in ("disallow_untyped_defs", "disallow_untyped_calls", "disallow_any_generics", "warn_return_any"):
        assert engine.get(flag) is True, flag


def test_no_user_is_typed_any():
    # Users are django.contrib.auth's User (acting) or AnyUser (reading, anonymous included).
    found = []
    for path in _sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.arg) and re.fullmatch(r"user|actor|owner", node.arg)):
                continue
            if node.annotation is None or ast.unparse(node.annotation) in {"Any", "object"}:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.arg}")
    assert found == []


def test_views_read_the_signed_in_user_through_the_helper():
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _sources()
        if str(path.relative_to(EVALSVC)) not in READS_ANONYMOUS
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\brequest\.user\b", line)
    ]
    assert found == []


@pytest.mark.django_db
def test_signed_in_user_returns_the_user_and_refuses_an_anonymous_visitor():
    request = RequestFactory().get("/")
    request.user = User.objects.create_user("typed")
    assert signed_in_user(request) is request.user
    request.user = AnonymousUser()
    with pytest.raises(PermissionDenied):
        signed_in_user(request)
