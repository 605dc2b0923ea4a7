"""Scales: nice tick values and labels, and the axes that map data to pixels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._base import _num


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
