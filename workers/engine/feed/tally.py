"""Missing and infinite values per column, counted block by block with vectorised masks."""

from __future__ import annotations

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.feed.reader import RawBlock

__all__ = ["MissingTally"]


class MissingTally:
    """Counts missing and infinite values per column; a run stops scoring at the first one.

    An infinite feature is invalid input just like a missing one: the model
    would turn it into an infinite or NaN prediction and every error metric
    into inf.
    """

    def __init__(self, features: list[str], label: str) -> None:
        self.columns = features + [label]
        self.label = label
        self.counts: dict[tuple[str, str], int] = {}
        self.first_row: dict[tuple[str, str], int] = {}

    def add(self, block: RawBlock) -> None:
        """Count the block's missing values, then its infinite ones, column by column."""
        infinite: list[tuple[str, Array]] = []
        for name in self.columns:
            missing = block.missing.get(name)
            if missing is not None:
                self._count(name, "missing", missing, block.offset)
            values = block.columns[name]
            if values.dtype.kind == "f":
                inf = np.isinf(values)
                if inf.any():
                    infinite.append((name, inf))
        for name, inf in infinite:
            self._count(name, "infinite", inf, block.offset)

    def _count(self, name: str, what: str, bad: Array, offset: int) -> None:
        n = int(np.count_nonzero(bad))
        if not n:
            return
        key = (name, what)
        self.counts[key] = self.counts.get(key, 0) + n
        self.first_row.setdefault(key, offset + int(np.argmax(bad)) + 1)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def raise_if_any(self) -> None:
        if not self.counts:
            return
        parts = [
            f"{'label ' if name == self.label else ''}column {name!r} has {n} {what} "
            f"value{'s' if n != 1 else ''} (first in data row {self.first_row[(name, what)]})"
            for (name, what), n in self.counts.items()
        ]
        raise EngineError(
            "; ".join(parts) + "; the model cannot take missing inputs or infinite ones, and rows without a "
            "label cannot be scored: fill or drop those rows and upload the data set again"
        )
