"""Text in a plotly figure is text: the one place figures are made safe for plotly.js.

plotly.js renders a subset of HTML in every string it draws — titles, axis
and tick labels, legend names, hover text, annotations: ``<a href>`` becomes
a live link, ``<b>`` bold. Class labels, column names, model and backend
names come from users, so every string of a figure is escaped (``&``, ``<``,
``>`` as entities, which plotly.js draws literally) on its way to the browser.
The only strings left as they are are the figure code's own templates
(``hovertemplate``, ``texttemplate``): there ``%{x}`` placeholders receive
values that were escaped in the data, and ``<extra>`` is plotly's syntax.

Reports draw the same figures as SVG through their own renderer, which
writes text as XML text; they take the figure before this step.
"""

from __future__ import annotations

from typing import Any

#: Keys whose strings are written by the figure code, never by a user.
AUTHORED_KEYS = frozenset({"hovertemplate", "texttemplate", "hovertemplatefallback", "texttemplatefallback"})


def escape_plot_text(value: str) -> str:
    """A string plotly.js shows exactly as it is, markup and all."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def figure_for_browser(spec: Any, key: str | None = None) -> Any:
    """The figure's JSON (``fig.to_plotly_json()``-shaped) with every user-reachable string escaped."""
    if isinstance(spec, str):
        return spec if key in AUTHORED_KEYS else escape_plot_text(spec)
    if isinstance(spec, dict):
        return {k: figure_for_browser(v, k) for k, v in spec.items()}
    if isinstance(spec, list):
        return [figure_for_browser(v, key) for v in spec]
    return spec
