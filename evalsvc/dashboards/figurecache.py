"""The run page's figures, built once per succeeded run.

A succeeded run's result never changes (the status is final), so its figures
never do either, as long as the code that draws them stays the same. The page
builds them once — plotly figure, strings escaped for plotly.js, JSON for the
page — and keeps the finished ``<script type="application/json">`` blocks in
the cache under the run's id, its finish time and a fingerprint of the figure
code (the job kinds' sources, the escaping, the plotly version): a deployment
that changes how figures are drawn reads under new keys, and old entries expire.
Runs that have not succeeded get no figures (the page shows none).

The cache is consulted only after the run was looked up through the team-scoped
selectors, and its key is the run's own id: a page only ever shows its run's figures.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import plotly
from django.core.cache import cache
from django.utils.html import json_script

from evalsvc.evaluations.kinds import JobKind

from .plotlytext import figure_for_browser

#: How long a run's figures stay cached after they were built (a week): long
#: enough that a run is drawn once while people look at it, short enough that
#: entries of old code or deleted runs go away on their own.
FIGURE_CACHE_SECONDS = 7 * 24 * 3600


@functools.cache
def figure_code_version() -> str:
    """A fingerprint of everything that decides what a run's figures look like."""
    import evalsvc.evaluations.kinds as kinds_package

    digest = hashlib.sha256(plotly.__version__.encode())
    sources = sorted(Path(kinds_package.__file__).parent.rglob("*.py"))
    for path in [*sources, Path(__file__).with_name("plotlytext.py"), Path(__file__)]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_figures(kind: JobKind, result: dict[str, Any]) -> list[dict[str, str]]:
    """The figures of a result as the page embeds them: a title and a JSON script block each."""
    return [
        {
            "id": f"figure-{i}",
            "title": title,
            # Parsed back to a dict so that json_script escapes it safely inside the page, and its
            # strings escaped for plotly.js, which would render markup in a label.
            "script": json_script(figure_for_browser(json.loads(fig.to_json())), f"figure-{i}-data"),
        }
        for i, (title, fig) in enumerate(kind.figures(result))
    ]


def cache_key(run: Any) -> str:
    finished = run.finished_at.isoformat() if run.finished_at else "-"
    return f"run-figures:{run.pk}:{finished}:{figure_code_version()}"


def run_figures(run: Any, kind: JobKind) -> list[dict[str, str]]:
    """The page's figures of ``run`` (already checked to be visible to the user): cached once built."""
    if run.status != "succeeded" or not run.result:
        return []
    key = cache_key(run)
    figures = cache.get(key)
    if figures is None:
        figures = build_figures(kind, run.result)
        cache.set(key, figures, FIGURE_CACHE_SECONDS)
    return figures
