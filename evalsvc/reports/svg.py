"""Plotly figures drawn as static SVG, without kaleido or a browser.

Reports show the same figures as the dashboard: the builders in
``evalsvc.dashboards.figures`` make the plotly figure, and this module draws
it as vector graphics for the PDF and the HTML download. It covers the
traces the builders use: heatmap, scatter/scattergl (markers and lines) and
bar, with category or linear axes, a reversed y axis, line/rect shapes and a
legend. Anything else raises :class:`UnsupportedFigure`, and the report says
so instead of drawing it wrong.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np

FONT = "DejaVu Sans, Noto Sans CJK SC, Noto Sans CJK JP, sans-serif"
#: plotly_white's colour sequence.
COLORWAY = ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880", "#FF97FF"]
AXIS_COLOR = "#444"
GRID_COLOR = "#e5e7eb"
DASHES = {"dash": "6,4", "dot": "2,3", "dashdot": "6,3,2,3", "longdash": "10,4"}
SUPPORTED = {"heatmap", "scatter", "scattergl", "bar"}


class UnsupportedFigure(Exception):
    """The figure uses a trace type or feature that has no static drawing here."""


def _x(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _t(text: Any) -> str:
    return escape(str(text), quote=True)


def _array(value: Any) -> list[Any]:
    """Plotly data arrays: lists, numpy arrays, or plotly's base64 typed arrays."""
    if value is None:
        return []
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        if "shape" in value:
            arr = arr.reshape([int(s) for s in str(value["shape"]).split(",")])
        return arr.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return list(value)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("text") or "")
    return "" if value is None else str(value)


# --- scales --------------------------------------------------------------------


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    # Multiples of the step, not a running sum: no drift like 0.30000000000000004.
    return [0.0 if k == 0 else round(k * step, 12) for k in range(first, last + 1)]


def tick_label(value: float, ticks: Sequence[float]) -> str:
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(value) or 1.0
    if max(abs(t) for t in ticks) >= 1e6 or step < 1e-4:
        return f"{value:.3g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if step * 10**decimals % 1 > 1e-6:  # 2.5, 0.25: one more digit
        decimals += 1
    return f"{value:.{decimals}f}"


@dataclass
class Axis:
    kind: str  # "linear" | "log" | "category"; a log axis keeps lo and hi as powers of ten
    start: float  # pixel of the low end (or first category's edge)
    end: float
    lo: float = 0.0
    hi: float = 1.0
    categories: tuple[str, ...] = ()
    reversed: bool = False

    def __call__(self, value: Any) -> float | None:
        if self.kind == "category":
            key = str(value)
            if key not in self.categories:
                return None
            index = self.categories.index(key)
            fraction = (index + 0.5) / len(self.categories)
        else:
            number = _num(value)
            if number is None or (self.kind == "log" and number <= 0):
                return None
            if self.kind == "log":
                number = math.log10(number)
            fraction = (number - self.lo) / (self.hi - self.lo)
        if self.reversed:
            fraction = 1 - fraction
        return self.start + fraction * (self.end - self.start)

    def band(self) -> float:
        return abs(self.end - self.start) / max(1, len(self.categories))

    def ticks(self) -> list[tuple[float, str]]:
        if self.kind == "category":
            return [(p, c) for c in self.categories if (p := self(c)) is not None]
        if self.kind == "log":
            powers = range(math.ceil(self.lo - 1e-9), math.floor(self.hi + 1e-9) + 1)
            step = max(1, len(powers) // 6 + (len(powers) % 6 > 0))
            return [(p, _power_label(k)) for k in powers[::step] if (p := self(10.0**k)) is not None]
        values = nice_ticks(self.lo, self.hi)
        return [(p, tick_label(v, values)) for v in values if (p := self(v)) is not None]

    def baseline(self) -> float:
        """Where bars start: zero, or the bottom of a log axis."""
        zero = self(0.0) if self.kind == "linear" else None
        return zero if zero is not None else self.start


def _power_label(k: int) -> str:
    return f"{10.0**k:g}" if -3 <= k <= 4 else f"1e{k}"


def _build_axis(
    values: list[Any], *, layout_axis: dict[str, Any], start: float, end: float, force_category: bool, zero: bool
) -> Axis:
    reversed_ = layout_axis.get("autorange") == "reversed"
    if force_category or layout_axis.get("type") == "category" or any(_num(v) is None for v in values if v is not None):
        seen: dict[str, None] = {}
        for v in values:
            if v is not None:
                seen.setdefault(str(v), None)
        return Axis("category", start, end, categories=tuple(seen), reversed=reversed_)
    numbers = [n for v in values if (n := _num(v)) is not None]
    explicit = layout_axis.get("range")
    if layout_axis.get("type") == "log":
        # plotly gives a log axis's range in powers of ten already.
        if explicit and len(explicit) == 2 and all(_num(v) is not None for v in explicit):
            lo, hi = float(explicit[0]), float(explicit[1])
        else:
            logs = [math.log10(n) for n in numbers if n > 0] or [0.0, 1.0]
            lo, hi = math.floor(min(logs) * 10) / 10 - 0.1, math.ceil(max(logs) * 10) / 10 + 0.1
        return Axis("log", start, end, lo=lo, hi=hi if hi > lo else lo + 1, reversed=reversed_)
    if zero:
        numbers.append(0.0)
    if explicit and len(explicit) == 2 and all(_num(v) is not None for v in explicit):
        lo, hi = float(explicit[0]), float(explicit[1])
    elif numbers:
        lo, hi = min(numbers), max(numbers)
        pad = (hi - lo) * 0.05 or abs(hi) * 0.1 or 1.0
        lo, hi = (lo if zero and lo == 0 else lo - pad), (hi if zero and hi == 0 else hi + pad)
    else:
        lo, hi = 0.0, 1.0
    return Axis("linear", start, end, lo=lo, hi=hi, reversed=reversed_)


# --- colour --------------------------------------------------------------------


def _rgb(color: str) -> tuple[float, float, float]:
    color = color.strip()
    if color.startswith("#"):
        h = color[1:]
        if len(h) == 3:
            h = "".join(c * 2 for c in h)
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    if color.startswith("rgb"):
        parts = color[color.index("(") + 1 : color.index(")")].split(",")
        return float(parts[0]), float(parts[1]), float(parts[2])
    return 99.0, 110.0, 250.0


def colorscale_at(scale: list[list[Any]], fraction: float) -> str:
    fraction = min(1.0, max(0.0, fraction))
    stops = [(float(p), _rgb(c)) for p, c in scale]
    for (p0, c0), (p1, c1) in zip(stops, stops[1:], strict=False):
        if fraction <= p1:
            w = 0.0 if p1 == p0 else (fraction - p0) / (p1 - p0)
            r, g, b = (c0[i] + (c1[i] - c0[i]) * w for i in range(3))
            return f"rgb({round(r)},{round(g)},{round(b)})"
    r, g, b = stops[-1][1]
    return f"rgb({round(r)},{round(g)},{round(b)})"


def _ink_on(fill: str) -> str:
    r, g, b = _rgb(fill)
    return "#ffffff" if (0.299 * r + 0.587 * g + 0.114 * b) < 140 else "#1d2433"


_BLUES = [[0, "rgb(247,251,255)"], [0.5, "rgb(107,174,214)"], [1, "rgb(8,48,107)"]]


# --- drawing --------------------------------------------------------------------


class _Canvas:
    def __init__(self, width: int, height: int, title: str) -> None:
        self.width, self.height = width, height
        self.parts: list[str] = [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="figure-svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="{FONT}" font-size="11" role="img">',
            f"<title>{_t(title)}</title>",
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        ]

    def add(self, part: str) -> None:
        self.parts.append(part)

    def text(
        self,
        x: float,
        y: float,
        content: str,
        *,
        anchor: str = "middle",
        size: int = 11,
        fill: str = "#1d2433",
        **attrs: str,
    ) -> None:
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
        self.add(
            f'<text x="{_x(x)}" y="{_x(y)}" text-anchor="{anchor}" font-size="{size}" fill="{fill}"{extra}>'
            f"{_t(content)}</text>"
        )

    def svg(self) -> str:
        return "".join(self.parts) + "</svg>"


def _dash(line: dict[str, Any]) -> str:
    dash = DASHES.get(str(line.get("dash") or ""))
    return f' stroke-dasharray="{dash}"' if dash else ""


def figure_svg(figure: Any, *, width: int = 640, height: int = 400, show_title: bool = True) -> str:
    """Draw a plotly figure (object or dict) as an SVG document string.

    ``show_title=False`` leaves the layout title out (the page around it has one)
    but keeps it as the SVG's accessible ``<title>``.
    """
    spec = figure.to_plotly_json() if hasattr(figure, "to_plotly_json") else dict(figure)
    traces: list[dict[str, Any]] = [dict(t) for t in spec.get("data") or []]
    layout: dict[str, Any] = dict(spec.get("layout") or {})
    for trace in traces:
        kind = trace.get("type", "scatter")
        if kind not in SUPPORTED:
            raise UnsupportedFigure(f"trace type {kind!r} has no static rendering")
        if trace.get("xaxis", "x") != "x" or trace.get("yaxis", "y") != "y":
            raise UnsupportedFigure("figures with several axes have no static rendering")
    title = _text(layout.get("title"))
    shown_title = title if show_title else ""
    named = [t for t in traces if t.get("name") and t.get("showlegend") is not False and t.get("type") != "heatmap"]
    legend = len(named) > 1
    heatmap = next((t for t in traces if t.get("type") == "heatmap"), None)
    xs: list[Any] = []
    ys: list[Any] = []
    category_x = category_y = False
    zero_x = zero_y = False
    for trace in traces:
        kind = trace.get("type", "scatter")
        if kind == "heatmap":
            z = _array(trace.get("z"))
            xs += _array(trace.get("x")) or list(range(len(z[0]) if z else 0))
            ys += _array(trace.get("y")) or list(range(len(z)))
            category_x = category_y = True
        elif kind == "bar" and trace.get("orientation") == "h":
            xs += _array(trace.get("x"))
            ys += _array(trace.get("y"))
            category_y, zero_x = True, True
        elif kind == "bar":
            xs += _array(trace.get("x"))
            ys += _array(trace.get("y"))
            category_x, zero_y = True, True
        else:
            xs += _array(trace.get("x"))
            ys += _array(trace.get("y"))
    for shape in layout.get("shapes") or []:
        if not str(shape.get("xref", "x")).endswith(("domain", "paper")):
            xs += [shape.get("x0"), shape.get("x1")]
        if not str(shape.get("yref", "y")).endswith(("domain", "paper")):
            ys += [shape.get("y0"), shape.get("y1")]
    xaxis_layout = dict(layout.get("xaxis") or {})
    yaxis_layout = dict(layout.get("yaxis") or {})
    category_names = [str(v) for v in xs if v is not None and (category_x or _num(v) is None)]
    # Long category names (backend/device/precision) are set at an angle below the axis.
    slanted = bool(category_names) and max(len(n) for n in category_names) > 10
    left, top, bottom = 72, 40 if shown_title else 16, 110 if slanted else 56
    right = 16 + (120 if legend else 0) + (70 if heatmap and heatmap.get("showscale") is not False else 0)
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    canvas = _Canvas(width, height, title or "figure")
    xaxis = _build_axis(xs, layout_axis=xaxis_layout, start=x0, end=x1, force_category=category_x, zero=zero_x)
    # SVG y grows downwards: the low end of the y axis is the bottom edge.
    yaxis = _build_axis(ys, layout_axis=yaxis_layout, start=y1, end=y0, force_category=category_y, zero=zero_y)

    _draw_grid(canvas, xaxis, yaxis, (x0, x1, y0, y1), slanted=slanted)
    for index, trace in enumerate(traces):
        color = _trace_color(trace, index)
        kind = trace.get("type", "scatter")
        if kind == "heatmap":
            _draw_heatmap(canvas, trace, xaxis, yaxis, (x0, x1, y0, y1))
        elif kind == "bar":
            bars = [t for t in traces if t.get("type") == "bar"]
            _draw_bars(canvas, trace, xaxis, yaxis, color, len(bars), bars.index(trace))
        else:
            _draw_scatter(canvas, trace, xaxis, yaxis, color)
    for shape in layout.get("shapes") or []:
        _draw_shape(canvas, shape, xaxis, yaxis, (x0, x1, y0, y1))
    canvas.add(
        f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="{AXIS_COLOR}" '
        'stroke-width="0.8"/>'
    )

    if shown_title:
        canvas.text(x0, 22, shown_title, anchor="start", size=14, font_weight="bold")
    x_title = _text(xaxis_layout.get("title"))
    y_title = _text(yaxis_layout.get("title"))
    if x_title:
        canvas.text((x0 + x1) / 2, height - 12, x_title, size=12)
    if y_title:
        cy = (y0 + y1) / 2
        canvas.text(16, cy, y_title, size=12, transform=f"rotate(-90 16 {_x(cy)})")
    if legend:
        _draw_legend(canvas, named, traces, width - right + (70 if heatmap else 0) + 10, y0)
    return canvas.svg()


def _trace_color(trace: dict[str, Any], index: int) -> str:
    for owner in ("marker", "line"):
        color = (trace.get(owner) or {}).get("color")
        if isinstance(color, str):
            return color
    return COLORWAY[index % len(COLORWAY)]


def _draw_grid(
    canvas: _Canvas, xaxis: Axis, yaxis: Axis, box: tuple[float, float, float, float], *, slanted: bool = False
) -> None:
    x0, x1, y0, y1 = box
    for pos, label in xaxis.ticks():
        if xaxis.kind != "category":
            canvas.add(f'<line x1="{_x(pos)}" y1="{y0}" x2="{_x(pos)}" y2="{y1}" stroke="{GRID_COLOR}"/>')
        if slanted:
            ty = y1 + 12
            canvas.text(pos, ty, _clip(label, 22), anchor="end", size=10, transform=f"rotate(-30 {_x(pos)} {ty})")
        else:
            canvas.text(pos, y1 + 15, _clip(label, 14))
    for pos, label in yaxis.ticks():
        if yaxis.kind != "category":
            canvas.add(f'<line x1="{x0}" y1="{_x(pos)}" x2="{x1}" y2="{_x(pos)}" stroke="{GRID_COLOR}"/>')
        canvas.text(x0 - 6, pos + 4, _clip(label, 10), anchor="end")
    for axis, horizontal in ((xaxis, True), (yaxis, False)):
        if axis.kind == "linear" and axis.lo < 0 < axis.hi:
            p = axis(0.0)
            if p is not None:
                line = (p, y0, p, y1) if horizontal else (x0, p, x1, p)
                canvas.add(
                    f'<line x1="{_x(line[0])}" y1="{_x(line[1])}" x2="{_x(line[2])}" y2="{_x(line[3])}" '
                    'stroke="#9ca3af" stroke-width="1"/>'
                )


def _clip(label: str, length: int) -> str:
    return label if len(label) <= length else label[: length - 1] + "…"


def _draw_heatmap(
    canvas: _Canvas, trace: dict[str, Any], xaxis: Axis, yaxis: Axis, box: tuple[float, float, float, float]
) -> None:
    z = [_array(row) for row in _array(trace.get("z"))]
    if not z:
        return
    xcats = _array(trace.get("x")) or list(range(len(z[0])))
    ycats = _array(trace.get("y")) or list(range(len(z)))
    values = [n for row in z for v in row if (n := _num(v)) is not None]
    zmin = _num(trace.get("zmin"))
    zmax = _num(trace.get("zmax"))
    lo = zmin if zmin is not None else (min(values) if values else 0.0)
    hi = zmax if zmax is not None else (max(values) if values else 1.0)
    scale = trace.get("colorscale") if isinstance(trace.get("colorscale"), list) else _BLUES
    if trace.get("reversescale"):
        scale = [[1 - float(p), c] for p, c in reversed(scale)]
    texts = trace.get("text")
    template = str(trace.get("texttemplate") or "")
    w, h = xaxis.band(), yaxis.band()
    for i, row in enumerate(z):
        for j, value in enumerate(row):
            cx, cy = xaxis(xcats[j]) if j < len(xcats) else None, yaxis(ycats[i]) if i < len(ycats) else None
            if cx is None or cy is None:
                continue
            number = _num(value)
            fill = "#f3f4f6" if number is None else colorscale_at(scale, 0 if hi == lo else (number - lo) / (hi - lo))
            canvas.add(
                f'<rect x="{_x(cx - w / 2)}" y="{_x(cy - h / 2)}" width="{_x(w)}" height="{_x(h)}" fill="{fill}" '
                'stroke="#ffffff" stroke-width="1"/>'
            )
            label = None
            if "%{text}" in template and texts is not None:
                label = _array(texts)[i][j]
            elif "%{z}" in template or (template == "" and trace.get("text") is None and len(z) * len(row) <= 100):
                label = value
            if label is not None:
                canvas.text(cx, cy + 4, _format(label), size=12, fill=_ink_on(fill))
    if trace.get("showscale") is not False:
        x1, y0, y1 = box[1], box[2], box[3]
        bar_x, steps = x1 + 14, 24
        step_h = (y1 - y0) / steps
        for k in range(steps):
            fraction = 1 - (k + 0.5) / steps
            canvas.add(
                f'<rect x="{_x(bar_x)}" y="{_x(y0 + k * step_h)}" width="14" height="{_x(step_h + 0.5)}" '
                f'fill="{colorscale_at(scale, fraction)}"/>'
            )
        for value, ypos in ((hi, y0 + 8), ((lo + hi) / 2, (y0 + y1) / 2 + 4), (lo, y1)):
            canvas.text(bar_x + 18, ypos, _format(value), anchor="start", size=10)


def _format(value: Any) -> str:
    number = _num(value)
    if number is None:
        return str(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.4g}"


def _draw_scatter(canvas: _Canvas, trace: dict[str, Any], xaxis: Axis, yaxis: Axis, color: str) -> None:
    xs, ys = _array(trace.get("x")), _array(trace.get("y"))
    if not xs and ys:
        xs = list(range(len(ys)))
    box_x, box_y = sorted((xaxis.start, xaxis.end)), sorted((yaxis.start, yaxis.end))
    points = [
        (px, py)
        for x, y in zip(xs, ys, strict=False)
        if (px := xaxis(x)) is not None
        and (py := yaxis(y)) is not None
        # Outside an explicit axis range: not drawn, as plotly clips it.
        and box_x[0] - 0.5 <= px <= box_x[1] + 0.5
        and box_y[0] - 0.5 <= py <= box_y[1] + 0.5
    ]
    mode = str(trace.get("mode") or ("lines+markers" if len(points) <= 20 else "lines"))
    line = trace.get("line") or {}
    marker = trace.get("marker") or {}
    if "lines" in mode and len(points) > 1:
        coords = " ".join(f"{_x(px)},{_x(py)}" for px, py in points)
        width = _num(line.get("width")) or 2
        canvas.add(
            f'<polyline points="{coords}" fill="none" stroke="{_t(color)}" stroke-width="{_x(width)}"{_dash(line)}/>'
        )
    if "markers" in mode and points:
        radius = (_num(marker.get("size")) or 6) / 2
        opacity = _num(marker.get("opacity"))
        if opacity is None:
            opacity = _num(trace.get("opacity")) or 1.0
        canvas.add(f'<g fill="{_t(color)}" fill-opacity="{_x(opacity)}">')
        canvas.add("".join(f'<circle cx="{_x(px)}" cy="{_x(py)}" r="{_x(radius)}"/>' for px, py in points))
        canvas.add("</g>")


def _draw_bars(
    canvas: _Canvas, trace: dict[str, Any], xaxis: Axis, yaxis: Axis, color: str, groups: int, index: int
) -> None:
    horizontal = trace.get("orientation") == "h"
    xs, ys = _array(trace.get("x")), _array(trace.get("y"))
    cat_axis, val_axis = (yaxis, xaxis) if horizontal else (xaxis, yaxis)
    cats, vals = (ys, xs) if horizontal else (xs, ys)
    band = cat_axis.band() * 0.8
    width = band / max(1, groups)
    offset = -band / 2 + width * (index % max(1, groups))
    base = val_axis.baseline()
    labels = _array(trace.get("text")) if isinstance(trace.get("text"), list | tuple) else []
    for position, (cat, value) in enumerate(zip(cats, vals, strict=False)):
        center, end = cat_axis(cat), val_axis(value)
        if center is None or end is None:
            continue
        lo, hi = sorted((base, end))
        # An explicit axis range may cut a bar: clip it to the plot area.
        lo, hi = max(lo, min(val_axis.start, val_axis.end)), min(hi, max(val_axis.start, val_axis.end))
        if hi <= lo:
            continue
        rect = (lo, center + offset, hi - lo, width) if horizontal else (center + offset, lo, width, hi - lo)
        canvas.add(
            f'<rect x="{_x(rect[0])}" y="{_x(rect[1])}" width="{_x(rect[2])}" height="{_x(rect[3])}" '
            f'fill="{_t(color)}"/>'
        )
        if position < len(labels) and labels[position] not in (None, ""):
            if horizontal:
                canvas.text(max(end, base) + 4, center + offset + width / 2 + 4, str(labels[position]), anchor="start")
            else:
                canvas.text(center + offset + width / 2, min(end, base) - 4, str(labels[position]), size=10)


def _draw_shape(
    canvas: _Canvas, shape: dict[str, Any], xaxis: Axis, yaxis: Axis, box: tuple[float, float, float, float]
) -> None:
    x0, x1, y0, y1 = box

    def place(value: Any, ref: str, axis: Axis, lo_px: float, hi_px: float) -> float | None:
        if ref.endswith(("domain", "paper")):
            number = _num(value)
            return None if number is None else lo_px + number * (hi_px - lo_px)
        return axis(value)

    xref, yref = str(shape.get("xref", "x")), str(shape.get("yref", "y"))
    a = place(shape.get("x0"), xref, xaxis, x0, x1)
    b = place(shape.get("x1"), xref, xaxis, x0, x1)
    c = place(shape.get("y0"), yref, yaxis, y1, y0)
    d = place(shape.get("y1"), yref, yaxis, y1, y0)
    if None in (a, b, c, d):
        return
    line = shape.get("line") or {}
    stroke = line.get("color") or "#374151"
    if shape.get("type") == "rect":
        fill = shape.get("fillcolor") or "rgba(0,0,0,0)"
        opacity = _num(shape.get("opacity")) or 0.2
        canvas.add(
            f'<rect x="{_x(min(a, b))}" y="{_x(min(c, d))}" width="{_x(abs(b - a))}" height="{_x(abs(d - c))}" '
            f'fill="{_t(fill)}" fill-opacity="{_x(opacity)}" stroke="none"/>'
        )
    elif shape.get("type", "line") == "line":
        canvas.add(
            f'<line x1="{_x(a)}" y1="{_x(c)}" x2="{_x(b)}" y2="{_x(d)}" stroke="{_t(stroke)}" '
            f'stroke-width="{_x(_num(line.get("width")) or 1.5)}"{_dash(line)}/>'
        )


def _draw_legend(
    canvas: _Canvas, named: list[dict[str, Any]], traces: list[dict[str, Any]], x: float, y: float
) -> None:
    for row, trace in enumerate(named):
        color = _trace_color(trace, traces.index(trace))
        ty = y + 10 + row * 18
        if "markers" in str(trace.get("mode") or "") or trace.get("type") == "bar":
            canvas.add(f'<circle cx="{_x(x + 6)}" cy="{_x(ty - 4)}" r="4" fill="{_t(color)}"/>')
        else:
            canvas.add(
                f'<line x1="{_x(x)}" y1="{_x(ty - 4)}" x2="{_x(x + 14)}" y2="{_x(ty - 4)}" stroke="{_t(color)}" '
                f'stroke-width="2"{_dash(trace.get("line") or {})}/>'
            )
        canvas.text(x + 20, ty, _clip(str(trace.get("name")), 16), anchor="start")
