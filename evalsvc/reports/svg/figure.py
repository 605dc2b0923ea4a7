"""The entry point: :func:`figure_svg` lays out a figure and draws it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._base import AXIS_COLOR, SUPPORTED, UnsupportedFigure, _array, _num, _text, _x, text_width
from .axes import Axis, _build_axis
from .draw import (
    LEGEND_TEXT,
    _Canvas,
    _draw_bars,
    _draw_grid,
    _draw_heatmap,
    _draw_legend,
    _draw_scatter,
    _draw_shape,
    _trace_color,
    legend_rows,
)
from .images import _draw_image
from .waterfall import _draw_waterfall, waterfall_steps

Box = tuple[float, float, float, float]


def figure_svg(figure: Any, *, width: int = 640, height: int = 400, show_title: bool = True) -> str:
    """Draw a plotly figure (object or dict) as an SVG document string.

    ``show_title=False`` leaves the layout title out (the page around it has one)
    but keeps it as the SVG's accessible ``<title>``.
    """
    spec = figure.to_plotly_json() if hasattr(figure, "to_plotly_json") else dict(figure)
    traces: list[dict[str, Any]] = [dict(t) for t in spec.get("data") or []]
    layout: dict[str, Any] = dict(spec.get("layout") or {})
    _check_supported(traces)
    title = _text(layout.get("title"))
    shown_title = title if show_title else ""
    named = [t for t in traces if t.get("name") and t.get("showlegend") is not False and t.get("type") != "heatmap"]
    legend = len(named) > 1
    heatmap = next((t for t in traces if t.get("type") == "heatmap"), None)
    ext = _extent(traces, layout.get("shapes") or [])
    xs, ys = ext.xs, ext.ys
    category_x, category_y, zero_x, zero_y = ext.category_x, ext.category_y, ext.zero_x, ext.zero_y
    xaxis_layout = dict(layout.get("xaxis") or {})
    yaxis_layout = dict(layout.get("yaxis") or {})
    image = any(t.get("type") == "image" for t in traces)
    if image and "autorange" not in yaxis_layout:
        yaxis_layout["autorange"] = "reversed"  # plotly draws an image's first row on top, in square pixels
    show = (xaxis_layout.get("showticklabels") is not False, yaxis_layout.get("showticklabels") is not False)
    category_names = [str(v) for v in xs if v is not None and (category_x or _num(v) is None)]
    y_names = [str(v) for v in ys if v is not None and (category_y or _num(v) is None)]
    # Long category names (backend/device/precision) are set at an angle below the axis, in full: the room
    # below the plot and left of it grows with the longest label (up to a share of the figure, then they wrap).
    longest_x = max((text_width(n, 10) for n in category_names), default=0.0)
    slanted = show[0] and bool(category_names) and longest_x > 60
    x_room = (
        min(longest_x, height * 0.4 / 0.5) if slanted else max(40.0, (width - 150) / max(1, len(set(category_names))))
    )
    longest_y = max((text_width(n, 11) for n in y_names), default=0.0) if show[1] else 0.0
    y_room = min(max(longest_y, 48.0), width * 0.3)
    legend_width = 0.0
    if legend:
        legend_width = 30 + max(max(text_width(line, 11) for line in lines) for lines in legend_rows(
            [str(t.get("name")) for t in named]))  # fmt: skip
        legend_width = min(legend_width, 30 + LEGEND_TEXT)
    left = 24 + y_room if show[1] else 40
    top = 40 if shown_title else 16
    bottom = (30 + 0.5 * x_room + 12 if slanted else 56) if show[0] else 40
    right = 16 + legend_width + (70 if heatmap and heatmap.get("showscale") is not False else 0)
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    if (image or yaxis_layout.get("scaleanchor") == "x") and xs and ys:  # square cells: the longer side gives way
        per_x = (x1 - x0) / max(1, len({str(v) for v in xs}))
        per_y = (y1 - y0) / max(1, len({str(v) for v in ys}))
        if per_x > per_y:
            x1 = x0 + per_y * len({str(v) for v in xs})
        else:
            y1 = y0 + per_x * len({str(v) for v in ys})
    canvas = _Canvas(width, height, title or "figure")
    xaxis = _build_axis(xs, layout_axis=xaxis_layout, start=x0, end=x1, force_category=category_x, zero=zero_x)
    # SVG y grows downwards: the low end of the y axis is the bottom edge.
    yaxis = _build_axis(ys, layout_axis=yaxis_layout, start=y1, end=y0, force_category=category_y, zero=zero_y)

    _draw_grid(canvas, xaxis, yaxis, (x0, x1, y0, y1), slanted=slanted, labels=(x_room, y_room), show=show)
    _draw_traces(canvas, traces, xaxis, yaxis, (x0, x1, y0, y1))
    for shape in layout.get("shapes") or []:
        _draw_shape(canvas, shape, xaxis, yaxis, (x0, x1, y0, y1))
    canvas.add(
        f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="{AXIS_COLOR}" '
        'stroke-width="0.8"/>'
    )

    _draw_titles(canvas, shown_title, xaxis_layout, yaxis_layout, (x0, x1, y0, y1), height)
    if legend:
        _draw_legend(canvas, named, traces, x1 + (70 if heatmap else 0) + 10, y0)
    return canvas.svg()


def _check_supported(traces: list[dict[str, Any]]) -> None:
    for trace in traces:
        kind = trace.get("type", "scatter")
        if kind not in SUPPORTED:
            raise UnsupportedFigure(f"trace type {kind!r} has no static rendering")
        if trace.get("xaxis", "x") != "x" or trace.get("yaxis", "y") != "y":
            raise UnsupportedFigure("figures with several axes have no static rendering")


@dataclass
class _Extent:
    """Every x and y value the axes must cover, and which axis is categorical or starts at zero."""

    xs: list[Any] = field(default_factory=list)
    ys: list[Any] = field(default_factory=list)
    category_x: bool = False
    category_y: bool = False
    zero_x: bool = False
    zero_y: bool = False


def _extent(traces: list[dict[str, Any]], shapes: list[dict[str, Any]]) -> _Extent:
    ext = _Extent()
    for trace in traces:
        kind = trace.get("type", "scatter")
        if kind == "heatmap":
            z = _array(trace.get("z"))
            ext.xs += _array(trace.get("x")) or list(range(len(z[0]) if z else 0))
            ext.ys += _array(trace.get("y")) or list(range(len(z)))
            ext.category_x = ext.category_y = True
            continue
        if kind == "image":
            pixels = _array(trace.get("z"))
            ext.xs += list(range(len(pixels[0]) if pixels else 0))
            ext.ys += list(range(len(pixels)))
            ext.category_x = ext.category_y = True
            continue
        if kind == "waterfall":
            steps = waterfall_steps(trace)
            ext.xs += [cat for cat, *_ in steps]
            ext.ys += [v for _, start, end, _ in steps for v in (start, end)]
            ext.category_x, ext.zero_y = True, True
            continue
        ext.xs += _array(trace.get("x"))
        ext.ys += _array(trace.get("y"))
        if kind == "bar" and trace.get("orientation") == "h":
            ext.category_y, ext.zero_x = True, True
        elif kind == "bar":
            ext.category_x, ext.zero_y = True, True
    for shape in shapes:
        if not str(shape.get("xref", "x")).endswith(("domain", "paper")):
            ext.xs += [shape.get("x0"), shape.get("x1")]
        if not str(shape.get("yref", "y")).endswith(("domain", "paper")):
            ext.ys += [shape.get("y0"), shape.get("y1")]
    return ext


def _draw_traces(canvas: _Canvas, traces: list[dict[str, Any]], xaxis: Axis, yaxis: Axis, box: Box) -> None:
    bars = [t for t in traces if t.get("type") == "bar"]
    for index, trace in enumerate(traces):
        color = _trace_color(trace, index)
        kind = trace.get("type", "scatter")
        if kind == "heatmap":
            _draw_heatmap(canvas, trace, xaxis, yaxis, box)
        elif kind == "image":
            _draw_image(canvas, trace, xaxis, yaxis)
        elif kind == "waterfall":
            _draw_waterfall(canvas, trace, xaxis, yaxis)
        elif kind == "bar":
            _draw_bars(canvas, trace, xaxis, yaxis, color, len(bars), bars.index(trace))
        else:
            _draw_scatter(canvas, trace, xaxis, yaxis, color)


def _draw_titles(
    canvas: _Canvas, title: str, xaxis_layout: dict[str, Any], yaxis_layout: dict[str, Any], box: Box, height: int
) -> None:
    x0, x1, y0, y1 = box
    if title:
        canvas.text(x0, 22, title, anchor="start", size=14, font_weight="bold")
    x_title = _text(xaxis_layout.get("title"))
    y_title = _text(yaxis_layout.get("title"))
    if x_title:
        canvas.text((x0 + x1) / 2, height - 12, x_title, size=12)
    if y_title:
        cy = (y0 + y1) / 2
        canvas.text(16, cy, y_title, size=12, transform=f"rotate(-90 16 {_x(cy)})")
