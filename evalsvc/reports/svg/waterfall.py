"""Waterfall traces: bars that start where the last one ended, as plotly stacks them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import _array, _num, _x

if TYPE_CHECKING:
    from .axes import Axis
    from .draw import _Canvas


#: plotly's waterfall colours: increasing, decreasing, totals.
WATERFALL = {"increasing": "#3D9970", "decreasing": "#FF4136", "totals": "#4499FF"}


def waterfall_steps(trace: dict[str, Any]) -> list[tuple[Any, float, float, str]]:
    """(category, start, end, which) per bar, as plotly stacks them: an absolute resets the running total,
    a relative moves it, a total shows it (its own y is not used)."""
    measures = _array(trace.get("measure"))
    steps: list[tuple[Any, float, float, str]] = []
    total = 0.0
    for i, (cat, value) in enumerate(zip(_array(trace.get("x")), _array(trace.get("y")), strict=False)):
        measure = measures[i] if i < len(measures) else "relative"
        number = _num(value)
        if measure == "total":
            steps.append((cat, 0.0, total, "totals"))
        elif measure == "absolute":
            total = number or 0.0
            steps.append((cat, 0.0, total, "totals"))
        else:
            start, total = total, total + (number or 0.0)
            steps.append((cat, start, total, "increasing" if total >= start else "decreasing"))
    return steps


def _draw_waterfall(canvas: _Canvas, trace: dict[str, Any], xaxis: Axis, yaxis: Axis) -> None:
    band = xaxis.band() * 0.8
    previous: tuple[float, float] | None = None
    for cat, start, end, which in waterfall_steps(trace):
        center, a, b = xaxis(cat), yaxis(start), yaxis(end)
        if center is None or a is None or b is None:
            continue
        top, bottom = sorted((a, b))
        canvas.add(
            f'<rect x="{_x(center - band / 2)}" y="{_x(top)}" width="{_x(band)}" height="{_x(max(bottom - top, 0.8))}" '
            f'fill="{WATERFALL[which]}"/>'
        )
        if previous is not None:  # the connector from the last bar's end to this bar
            canvas.add(
                f'<line x1="{_x(previous[0])}" y1="{_x(previous[1])}" x2="{_x(center - band / 2)}" '
                f'y2="{_x(previous[1])}" stroke="#444" stroke-width="0.8" stroke-dasharray="2,2"/>'
            )
        previous = (center + band / 2, b)
