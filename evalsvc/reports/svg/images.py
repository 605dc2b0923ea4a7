"""Pictures: an image trace, and a translucent heatmap laid cell for pixel over one, as embedded PNGs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import _array, _num, _x
from .colour import colorscale_rgb

if TYPE_CHECKING:
    from .axes import Axis
    from .draw import _Canvas


def _png_data_uri(rgba: Any) -> str:
    import base64
    import io

    import numpy as np
    from PIL import Image

    array = np.asarray(rgba, dtype=float)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    mode = "RGBA" if array.shape[2] == 4 else "RGB"
    buffer = io.BytesIO()
    Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8), mode=mode).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pixel_box(xaxis: Axis, yaxis: Axis, width: int, height: int) -> tuple[float, float, float, float] | None:
    """Where a grid of width × height cells (centred on 0, 1, …) lies in pixels: x, y, w, h."""
    corners = [xaxis(0), xaxis(width - 1), yaxis(0), yaxis(height - 1)]
    if any(c is None for c in corners):
        return None
    xa, xb, ya, yb = (float(c) for c in corners)  # type: ignore[arg-type]
    half_w, half_h = xaxis.band() / 2, yaxis.band() / 2
    left, top = min(xa, xb) - half_w, min(ya, yb) - half_h
    return left, top, abs(xb - xa) + 2 * half_w, abs(yb - ya) + 2 * half_h


def _draw_image(canvas: _Canvas, trace: dict[str, Any], xaxis: Axis, yaxis: Axis) -> None:
    """An image trace (rows of RGB(A) pixels) as one embedded PNG over the cells it covers."""
    import numpy as np

    pixels = np.asarray(_array(trace.get("z")), dtype=float)
    if pixels.ndim < 2 or not pixels.size:
        return
    if yaxis.reversed is False and yaxis.kind == "category":
        pixels = pixels[::-1]  # row 0 at the bottom, as plotly draws it on an upward axis
    placed = _pixel_box(xaxis, yaxis, pixels.shape[1], pixels.shape[0])
    if placed is None:
        return
    left, top, w, h = placed
    canvas.add(
        f'<image x="{_x(left)}" y="{_x(top)}" width="{_x(w)}" height="{_x(h)}" preserveAspectRatio="none" '
        f'style="image-rendering: pixelated" href="{_png_data_uri(pixels)}"/>'
    )


def _draw_heatmap_layer(
    canvas: _Canvas,
    z: list[list[Any]],
    scale: list[Any],
    lo: float,
    hi: float,
    opacity: float,
    xaxis: Axis,
    yaxis: Axis,
) -> None:
    """A translucent heatmap over an image, cell for pixel: one RGBA PNG (thousands of cells, one element)."""
    import numpy as np

    values = np.array([[_num(v) if _num(v) is not None else np.nan for v in row] for row in z], dtype=float)
    fractions = np.zeros_like(values) if hi == lo else (values - lo) / (hi - lo)
    rgb = colorscale_rgb(scale, np.nan_to_num(fractions))
    alpha = np.where(np.isnan(values), 0.0, 255 * opacity)[..., None]
    pixels = np.concatenate([np.where(np.isnan(values)[..., None], 0.0, rgb), alpha], axis=-1)
    placed = _pixel_box(xaxis, yaxis, pixels.shape[1], pixels.shape[0])
    if placed is None:
        return
    left, top, w, h = placed
    canvas.add(
        f'<image x="{_x(left)}" y="{_x(top)}" width="{_x(w)}" height="{_x(h)}" preserveAspectRatio="none" '
        f'style="image-rendering: pixelated" href="{_png_data_uri(pixels)}"/>'
    )
