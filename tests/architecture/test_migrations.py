"""Every model change has its migration: `makemigrations --check` finds nothing to write."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_is_missing_a_migration():
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit:  # --check exits 1 when there is something to write
        pytest.fail(f"models and migrations disagree; run `python manage.py makemigrations`:\n{out.getvalue()}")
    assert "No changes detected" in out.getvalue()
