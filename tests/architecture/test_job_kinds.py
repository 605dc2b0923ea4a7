"""Every registered job kind has everything it needs, and settings.EVALSVC_JOB_KINDS is the only list of kinds."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.template.loader import get_template
from django.test import override_settings

from evalsvc.evaluations.kinds import JobContext, JobKind, Section, all_kinds, get_kind, load_kind
from evalsvc.evaluations.kinds.base import CompareRun, Comparison
from evalsvc.evaluations.kinds.generic import generic_compare, generic_section

ROOT = Path(__file__).resolve().parents[2]
KINDS = all_kinds()


def test_the_settings_list_names_every_kind_once():
    assert [load_kind(path).name for path in settings.EVALSVC_JOB_KINDS] == [k.name for k in KINDS]
    names = [k.name for k in KINDS]
    assert len(set(names)) == len(names)
    assert {"evaluate", "parity", "quantize", "profile"} <= set(names)


def test_two_entries_with_one_name_are_refused():
    twice = [*settings.EVALSVC_JOB_KINDS, settings.EVALSVC_JOB_KINDS[0]]
    with override_settings(EVALSVC_JOB_KINDS=twice), pytest.raises(ImproperlyConfigured, match="two entries"):
        all_kinds()
    not_a_kind = ["evalsvc.evaluations.kinds.base:LAYOUT"]
    with override_settings(EVALSVC_JOB_KINDS=not_a_kind), pytest.raises(ImproperlyConfigured, match="a JobKind"):
        all_kinds()
    assert [k.name for k in all_kinds()] == [k.name for k in KINDS]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_a_kind_has_every_part(kind: JobKind):
    assert re.fullmatch(r"[a-z][a-z0-9_]{0,31}", kind.name)  # fits EvaluationRun.kind
    assert kind.label and kind.summary
    for part in (kind.clean_params, kind.route, kind.figures, kind.section):
        assert callable(part)
    assert kind.csv_rows is None or callable(kind.csv_rows)
    assert kind.page_context is None or callable(kind.page_context)
    if kind.template is not None:
        get_template(kind.template)  # exists and compiles
    else:
        assert kind.page_context is None, "page context without a template would be thrown away"
    # Every part reads a stored result, so an empty one must not break any of them.
    assert isinstance(kind.figures({}), list)
    section = kind.section(JobContext(kind=kind.name, label=kind.label, params={}, result={}, dataset=None))
    assert isinstance(section, Section) and isinstance(section.method, str)
    if kind.csv_rows is not None:
        assert kind.csv_rows({}) == []
    if kind.page_context is not None:
        assert isinstance(kind.page_context({}), dict)
    # A comparison (the kind's own, or the generic one) of runs whose results hold nothing it knows.
    compare = kind.compare or generic_compare
    assert callable(compare)
    empty = compare([CompareRun("a", {}, {}), CompareRun("b", {}, {})])
    assert isinstance(empty, Comparison) and all(len(row.values) == 2 for row in empty.metrics)
    assert get_kind(kind.name) is kind


def test_the_generic_fallbacks_are_there():
    get_template("dashboards/kinds/_generic.html")
    section = generic_section(JobContext(kind="x", label="X", params={}, result={"a": 1}, dataset=None))
    assert section.tables[0]["rows"] == [["a", 1]]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_the_task_module_defines_the_named_task(kind: JobKind):
    from evalsvc.celery import app

    importlib.import_module(kind.task_module)
    assert kind.task_name in app.tasks
    assert app.tasks[kind.task_name].__module__ == kind.task_module


def test_a_worker_imports_every_kinds_task_module():
    """What `celery -A evalsvc worker` does at start: import its task modules, derived from the settings list."""
    code = (
        "import json; from evalsvc.celery import app; imported = app.loader.import_default_modules(); "
        "modules = {m.__name__ for m in imported} | set(app.loader.task_modules); "
        "print(json.dumps({'modules': sorted(modules), 'tasks': sorted(app.tasks)}))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "evalsvc.settings.test", "CELERY_SKIP_CHECKS": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for kind in KINDS:
        assert kind.task_module in found["modules"]
        assert kind.task_name in found["tasks"]
    assert "workers.tasks.fleet" in found["modules"]  # the worker's own signals, no kind's


def _sources(*folders: str, suffixes: tuple[str, ...] = (".py", ".html")) -> list[Path]:
    return [p for folder in folders for p in (ROOT / folder).rglob("*") if p.suffix in suffixes]


def test_the_settings_list_is_the_only_list():
    """No module outside a kind's own package names kinds: no list of task modules, no `kind == "…"` branch."""
    kinds_dir = ROOT / "evalsvc" / "evaluations" / "kinds"
    names = "|".join(k.name for k in KINDS)
    branch = re.compile(r"""kind\s*(==|!=|in|not in)\s*[(\[{]?\s*["'](""" + names + """)["']""")
    offenders = []
    for path in _sources("evalsvc", "templates", "workers"):
        if kinds_dir in path.parents or path.parts[-3:-1] == ("evalsvc", "settings"):
            continue
        text = path.read_text(encoding="utf-8")
        for kind in KINDS:
            module = f"evalsvc.evaluations.kinds.{kind.name}"
            if f'"{kind.task_module}"' in text or f"'{kind.task_module}'" in text or f'"{module}"' in text:
                offenders.append(f"{path.relative_to(ROOT)} names {kind.name}'s modules")
        if branch.search(text):
            offenders.append(f"{path.relative_to(ROOT)} branches on a kind's name")
    assert offenders == []


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_the_job_form_offers_fields_of_the_kinds_params_schema(kind: JobKind):
    """The browser's job form hard-codes no kind's fields: each comes from the kind's registration."""
    if kind.form:
        assert kind.params is not None
    declared = kind.params().fields if kind.params is not None else {}
    for spec in kind.form:
        assert spec.name in declared, f"{kind.name} offers {spec.name!r}, which its params schema lacks"
        assert spec.choose in {"field", "column", "columns", "dataset", "backend", "device"}


@pytest.mark.django_db
def test_the_job_form_has_only_the_kinds_fields(alice):
    from evalsvc.evaluations.forms import OFFERED, RunSubmitForm

    form = RunSubmitForm(user=alice)
    offered = {OFFERED.get(spec.choose, spec.name) for kind in KINDS for spec in kind.form}
    assert set(form.fields) == {"kind", "model_version", "dataset_version"} | offered
    for name in offered:  # each tells the page which kinds it belongs to
        kinds = form.fields[name].widget.attrs["data-kinds"].split()
        assert kinds and set(kinds) <= {k.name for k in KINDS}


@pytest.mark.django_db
def test_a_field_shared_by_kinds_with_other_defaults_starts_empty_and_names_them(alice):
    from evalsvc.evaluations.forms import RunSubmitForm

    form = RunSubmitForm(user=alice)
    sharing = [k for k in KINDS if any(f.name == "batch_size" for f in k.form)]
    defaults = {k.params().fields["batch_size"].default for k in sharing}
    if len(defaults) < 2:
        pytest.skip("the kinds offering batch_size agree on its default")
    field = form.fields["batch_size"]
    assert field.initial is None
    for kind in sharing:
        assert f"{kind.params().fields['batch_size'].default} for {kind.label.lower()}" in field.help_text
