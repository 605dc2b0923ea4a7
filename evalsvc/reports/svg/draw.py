"""Drawing: the SVG canvas and one function per thing drawn (grid, traces, shapes, legend)."""

from __future__ import annotations

from typing import Any

from ._base import COLORWAY, DASHES, FONT, GRID_COLOR, _array, _num, _t, _x, wrap
from .axes import Axis
from .colour import _BLUES, _ink_on, colorscale_at, colorscale_rgb
from .images import _draw_heatmap_layer

#: Line height, in font sizes.
LINE = 1.2


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

    def lines(
        self, x: float, y: float, lines: list[str], *, size: int = 11, anchor: str = "middle", **attrs: str
    ) -> None:
        """Several lines of one label, the first at ``y`` (a long label wraps; it is never cut short)."""
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
        spans = "".join(
            f'<tspan x="{_x(x)}" dy="{0 if i == 0 else _x(size * LINE)}">{_t(line)}</tspan>'
            for i, line in enumerate(lines)
        )
        self.add(
            f'<text x="{_x(x)}" y="{_x(y)}" text-anchor="{anchor}" font-size="{size}" fill="#1d2433"{extra}>'
            f"{spans}</text>"
        )

    def svg(self) -> str:
        return "".join(self.parts) + "</svg>"


def _dash(line: dict[str, Any]) -> str:
    dash = DASHES.get(str(line.get("dash") or ""))
    return f' stroke-dasharray="{dash}"' if dash else ""


def _trace_color(trace: dict[str, Any], index: int) -> str:
    for owner in ("marker", "line"):
        color = (trace.get(owner) or {}).get("color")
        if isinstance(color, str):
            return color
    return COLORWAY[index % len(COLORWAY)]


def _draw_grid(
    canvas: _Canvas,
    xaxis: Axis,
    yaxis: Axis,
    box: tuple[float, float, float, float],
    *,
    slanted: bool = False,
    labels: tuple[float, float] = (90.0, 60.0),
    show: tuple[bool, bool] = (True, True),
) -> None:
    """Grid lines and tick labels; ``labels`` is the room (px) for an x and a y tick label, which wrap to fit."""
    x0, x1, y0, y1 = box
    x_room, y_room = labels
    for pos, label in xaxis.ticks():
        if xaxis.kind != "category":
            canvas.add(f'<line x1="{_x(pos)}" y1="{y0}" x2="{_x(pos)}" y2="{y1}" stroke="{GRID_COLOR}"/>')
        if not show[0]:
            continue
        if slanted:
            ty = y1 + 12
            canvas.lines(
                pos, ty, wrap(label, x_room, 10), size=10, anchor="end", transform=f"rotate(-30 {_x(pos)} {ty})"
            )
        else:
            canvas.lines(pos, y1 + 15, wrap(label, x_room, 11))
    for pos, label in yaxis.ticks():
        if yaxis.kind != "category":
            canvas.add(f'<line x1="{x0}" y1="{_x(pos)}" x2="{x1}" y2="{_x(pos)}" stroke="{GRID_COLOR}"/>')
        if not show[1]:
            continue
        lines = wrap(label, y_room, 11)
        canvas.lines(x0 - 6, pos + 4 - (len(lines) - 1) * 11 * LINE / 2, lines, anchor="end")
    for axis, horizontal in ((xaxis, True), (yaxis, False)):
        if axis.kind == "linear" and axis.lo < 0 < axis.hi:
            p = axis(0.0)
            if p is not None:
                line = (p, y0, p, y1) if horizontal else (x0, p, x1, p)
                canvas.add(
                    f'<line x1="{_x(line[0])}" y1="{_x(line[1])}" x2="{_x(line[2])}" y2="{_x(line[3])}" '
                    'stroke="#9ca3af" stroke-width="1"/>'
                )


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
    given = trace.get("colorscale")
    scale: list[list[Any]] = given if isinstance(given, list) else _BLUES
    if trace.get("reversescale"):
        scale = [[1 - float(p), c] for p, c in reversed(scale)]
    texts = trace.get("text")
    template = str(trace.get("texttemplate") or "")
    w, h = xaxis.band(), yaxis.band()
    opacity = _num(trace.get("opacity"))
    translucent = opacity is not None and opacity < 1
    indexed = trace.get("x") is None and trace.get("y") is None
    if indexed and (translucent or len(z) * len(z[0]) > 2500):  # over an image, or cell for pixel: one picture
        _draw_heatmap_layer(canvas, z, scale, lo, hi, 1.0 if opacity is None else opacity, xaxis, yaxis)
        z = []
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
    fills = _marker_fills(trace.get("marker") or {}, len(xs))
    kept = [
        (px, py, fills[i] if fills else "")
        for i, (x, y) in enumerate(zip(xs, ys, strict=False))
        if (px := xaxis(x)) is not None
        and (py := yaxis(y)) is not None
        # Outside an explicit axis range: not drawn, as plotly clips it.
        and box_x[0] - 0.5 <= px <= box_x[1] + 0.5
        and box_y[0] - 0.5 <= py <= box_y[1] + 0.5
    ]
    points = [(px, py) for px, py, _ in kept]
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
        canvas.add("".join(f'<circle cx="{_x(px)}" cy="{_x(py)}" r="{_x(radius)}"{fill}/>' for px, py, fill in kept))
        canvas.add("</g>")


def _marker_fills(marker: dict[str, Any], count: int) -> list[str]:
    """Per-point fill attributes (a number per point on the marker's colorscale); empty for one colour."""
    values = _array(marker.get("color")) if not isinstance(marker.get("color"), str) else []
    scale = marker.get("colorscale")
    if not values or not isinstance(scale, list | tuple):
        return []
    numbers = [_num(v) for v in values]
    known = [n for n in numbers if n is not None]
    lo = _num(marker.get("cmin"))
    hi = _num(marker.get("cmax"))
    lo = (min(known) if known else 0.0) if lo is None else lo
    hi = (max(known) if known else 1.0) if hi is None else hi
    shown = numbers[:count]
    rgb = colorscale_rgb(list(scale), [0.0 if n is None or hi == lo else (n - lo) / (hi - lo) for n in shown])
    fills = [
        "" if n is None else f' fill="rgb({int(r)},{int(g)},{int(b)})"' for n, (r, g, b) in zip(shown, rgb, strict=True)
    ]
    return fills + [""] * (count - len(fills))


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
    if a is None or b is None or c is None or d is None:
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


#: Widest a legend entry's name is set before it wraps, in px.
LEGEND_TEXT = 170


def legend_rows(names: list[str]) -> list[list[str]]:
    return [wrap(name, LEGEND_TEXT, 11) for name in names]


def _draw_legend(
    canvas: _Canvas, named: list[dict[str, Any]], traces: list[dict[str, Any]], x: float, y: float
) -> None:
    ty = y + 10
    for trace, lines in zip(named, legend_rows([str(t.get("name")) for t in named]), strict=True):
        color = _trace_color(trace, traces.index(trace))
        if "markers" in str(trace.get("mode") or "") or trace.get("type") in ("bar", "waterfall"):
            canvas.add(f'<circle cx="{_x(x + 6)}" cy="{_x(ty - 4)}" r="4" fill="{_t(color)}"/>')
        else:
            canvas.add(
                f'<line x1="{_x(x)}" y1="{_x(ty - 4)}" x2="{_x(x + 14)}" y2="{_x(ty - 4)}" stroke="{_t(color)}" '
                f'stroke-width="2"{_dash(trace.get("line") or {})}/>'
            )
        canvas.lines(x + 20, ty, lines, anchor="start")
        ty += 18 + (len(lines) - 1) * 11 * LINE
