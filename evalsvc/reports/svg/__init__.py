"""Plotly figures drawn as static SVG, without kaleido or a browser.

Reports show the same figures as the dashboard: the builders in
each job kind's ``figures`` make the plotly figure, and this module draws
it as vector graphics for the PDF and the HTML download. It covers the
traces the builders use: heatmap, scatter/scattergl (markers and lines, one
colour or a colorscale per point), bar, waterfall and image (with a
translucent heatmap over it), with category, linear or log axes, a reversed
y axis, square pixels, line/rect shapes and a legend. Labels are set in
full: tick labels and legend entries wrap onto lines at separators and the
margins grow to hold them. Anything else raises :class:`UnsupportedFigure`, and the report says
so instead of drawing it wrong.

Modules: :mod:`.figure` (:func:`figure_svg`: layout and the order of
drawing), :mod:`.axes` (tick values and labels, :class:`Axis`),
:mod:`.colour` (colorscales), :mod:`.draw` (the SVG canvas and the grid,
traces, shapes and legend), :mod:`.waterfall`, :mod:`.images` (embedded
PNG pictures) and :mod:`._base` (the look, label widths and wrapping, and
value helpers they share).
"""

from __future__ import annotations

from ._base import AXIS_COLOR, COLORWAY, DASHES, FONT, GRID_COLOR, SUPPORTED, UnsupportedFigure
from .axes import Axis, nice_ticks, tick_label
from .colour import colorscale_at
from .figure import figure_svg

__all__ = [
    "AXIS_COLOR",
    "COLORWAY",
    "DASHES",
    "FONT",
    "GRID_COLOR",
    "SUPPORTED",
    "Axis",
    "UnsupportedFigure",
    "colorscale_at",
    "figure_svg",
    "nice_ticks",
    "tick_label",
]
