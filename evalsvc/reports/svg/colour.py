"""Colour: parsing plotly colours, sampling a colorscale, and ink that reads on a fill."""

from __future__ import annotations

from typing import Any


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


def colorscale_rgb(scale: list[list[Any]], fractions: Any) -> Any:
    """:func:`colorscale_at` for many fractions at once: an (n, 3) array of rounded RGB values."""
    import numpy as np

    stops = [(float(p), _rgb(c)) for p, c in scale]
    positions = np.array([p for p, _ in stops])
    colours = np.array([c for _, c in stops], dtype=float)
    where = np.clip(np.asarray(fractions, dtype=float), 0.0, 1.0)
    return np.rint(np.stack([np.interp(where, positions, colours[:, i]) for i in range(3)], axis=-1))


def _ink_on(fill: str) -> str:
    r, g, b = _rgb(fill)
    return "#ffffff" if (0.299 * r + 0.587 * g + 0.114 * b) < 140 else "#1d2433"


_BLUES: list[list[Any]] = [[0, "rgb(247,251,255)"], [0.5, "rgb(107,174,214)"], [1, "rgb(8,48,107)"]]
