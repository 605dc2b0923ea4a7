"""The reference side of a drift check, computed once and cached.

A :class:`ReferenceProfile` holds, per column, what every later check needs
from the reference data: for numeric columns the sorted values, their
a coarse grid with exact reference counts (what the
two-pass exact KS test needs, :mod:`.ks`), the PSI bin edges and a display histogram; for categorical and binary columns
the category counts. It also keeps a uniform sample of rows for the
multivariate detectors. A monitor builds it when its reference is set and
saves it with :meth:`ReferenceProfile.save`; every scheduled check loads it
instead of sorting the reference again.

Column kinds: a column with two distinct values is ``binary``; a string,
boolean or categorical column, or an integer column with at most
``max_int_categories`` distinct values, is ``categorical``; anything else
numeric is ``numeric``. Missing values: numeric ones are left out of the
tests and counted; categorical ones are a category of their own, ``"(missing)"``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workers.engine.arrays import Array
from workers.engine.drift.ks import KSGrid
from workers.engine.drift.report import ColumnKind
from workers.engine.errors import EngineError

__all__ = ["MISSING", "ColumnProfile", "ReferenceProfile", "categorical_values", "infer_kind"]

MISSING = "(missing)"
#: PSI bins: deciles of the reference (documented in the README).
PSI_BINS = 10
#: Display histogram: equal-width bins over the reference's 0.5–99.5 % range.
DISPLAY_BINS = 30
#: Rows of the reference kept for the multivariate detectors.
DEFAULT_ROW_SAMPLE = 5000
#: Values per numeric column kept for Wasserstein and Cramér–von Mises.
DEFAULT_SAMPLE = 100_000


def infer_kind(series: pd.Series, *, max_int_categories: int = 10) -> ColumnKind:
    dtype = series.dtype
    kind = dtype.kind if isinstance(dtype, np.dtype) else "O"
    if kind in "fiu":
        values = series.to_numpy()
        distinct = np.unique(values[~np.isnan(values)] if kind == "f" else values).size
    else:
        distinct = series.dropna().nunique()
    if distinct == 2:
        return "binary"
    if kind not in "fiu" or distinct < 2:
        return "categorical"
    if kind in "iu" and distinct <= max_int_categories:
        return "categorical"
    return "numeric"


def _sorted_quantiles(s: Array, qs: Array) -> Array:
    """``np.quantile(s, qs)`` (linear interpolation) for an already sorted ``s``."""
    pos = qs * (s.size - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, s.size - 1)
    return np.asarray(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def categorical_values(series: pd.Series) -> Array:
    """A column's values as strings, missing ones as ``"(missing)"``."""
    out = series.astype("object").where(series.notna(), MISSING)
    return np.asarray(out.map(str), dtype=object)


def _psi_edges(sorted_values: Array) -> Array:
    """Inner edges of the PSI bins: the reference's deciles, duplicates merged."""
    if sorted_values.size == 0:
        return np.empty(0)
    qs = _sorted_quantiles(sorted_values, np.linspace(0, 1, PSI_BINS + 1)[1:-1])
    return np.unique(qs)


def _display_edges(sorted_values: Array) -> Array:
    if sorted_values.size == 0:
        return np.array([0.0, 1.0])
    lo, hi = _sorted_quantiles(sorted_values, np.array([0.005, 0.995]))
    if hi <= lo:
        lo, hi = float(sorted_values[0]) - 0.5, float(sorted_values[-1]) + 0.5
    return np.asarray(np.linspace(lo, hi, DISPLAY_BINS + 1))


def display_counts(values: Array, edges: Array) -> Array:
    """Counts over ``edges`` with the outer bins open-ended."""
    idx = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, edges.size - 2)
    return np.bincount(idx, minlength=edges.size - 1)


@dataclass(frozen=True, eq=False)
class ColumnProfile:
    """One reference column. Numeric: ``sorted_values`` and the grid; else ``categories``/``counts``."""

    name: str
    kind: ColumnKind
    n: int
    missing: int
    sorted_values: Array | None = None
    #: The coarse KS grid (:class:`~workers.engine.drift.ks.KSGrid`): edges, #ref < and <= each.
    ks_edges: Array | None = None
    ks_ref_lt: Array | None = None
    ks_ref_le: Array | None = None
    psi_edges: Array | None = None
    psi_counts: Array | None = None
    #: A uniform sample of ``sorted_values`` (sorted) for the sampled statistics; None: all of them.
    sample_sorted: Array | None = None
    display_edges: Array | None = None
    display_counts: Array | None = None
    mean: float = 0.0
    std: float = 1.0
    categories: tuple[str, ...] = ()
    counts: Array | None = None

    @classmethod
    def numeric(cls, name: str, values: Array, *, sample_rows: int = DEFAULT_SAMPLE, seed: int = 0) -> ColumnProfile:
        values = np.asarray(values, dtype=np.float64)
        finite = values[~np.isnan(values)]
        s = np.sort(finite)
        sample = None
        if s.size > sample_rows:
            sample = s[np.sort(np.random.default_rng(seed).choice(s.size, sample_rows, replace=False))]
        psi_edges = _psi_edges(s)
        display = _display_edges(s)
        # PSI and histogram edges join the KS grid, so one search per value serves all three.
        grid = KSGrid.from_sorted(s, extra=np.concatenate([psi_edges, display[1:-1]]))
        return cls(
            name=name,
            kind="numeric",
            n=int(s.size),
            missing=int(values.size - s.size),
            sorted_values=s,
            sample_sorted=sample,
            ks_edges=grid.edges,
            ks_ref_lt=grid.ref_lt,
            ks_ref_le=grid.ref_le,
            psi_edges=psi_edges,
            psi_counts=np.bincount(np.searchsorted(psi_edges, s, side="right"), minlength=psi_edges.size + 1),
            display_edges=display,
            display_counts=display_counts(s, display),
            mean=float(s.mean()) if s.size else 0.0,
            std=float(s.std()) if s.size > 1 and s.std() > 0 else 1.0,
        )

    def need(self, value: Array | None, what: str) -> Array:
        """One of this column's arrays, which a profile of the other kind (or a damaged cache) lacks."""
        if value is None:
            raise EngineError(f"the reference profile of {self.kind} column {self.name!r} has no {what}")
        return value

    @property
    def reference_sample(self) -> Array:
        """Sorted reference values for the sampled statistics (Wasserstein, Cramér–von Mises)."""
        if self.sample_sorted is not None:
            return self.sample_sorted
        return self.need(self.sorted_values, "sorted values")

    @property
    def ks_grid(self) -> KSGrid:
        return KSGrid(
            self.need(self.ks_edges, "KS grid"),
            self.need(self.ks_ref_lt, "KS grid"),
            self.need(self.ks_ref_le, "KS grid"),
            self.n,
        )

    @classmethod
    def categorical(cls, name: str, kind: ColumnKind, series: pd.Series) -> ColumnProfile:
        values = categorical_values(series)
        cats, counts = np.unique(values, return_counts=True)
        return cls(
            name=name,
            kind=kind,
            n=int(values.size),
            missing=int(series.isna().sum()),
            categories=tuple(str(c) for c in cats),
            counts=counts.astype(np.int64),
        )


class ReferenceProfile:
    """Everything a drift check needs from the reference, computed once.

    Parameters
    ----------
    columns:
        Profiles in the reference's column order.
    row_sample:
        A uniform sample of reference rows (all columns), for the multivariate
        detectors.
    """

    def __init__(self, columns: Mapping[str, ColumnProfile], row_sample: pd.DataFrame) -> None:
        self.columns = dict(columns)
        self.row_sample = row_sample

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @property
    def rows(self) -> int:
        return max((c.n + (c.missing if c.kind == "numeric" else 0) for c in self.columns.values()), default=0)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        kinds: Mapping[str, ColumnKind] | None = None,
        max_int_categories: int = 10,
        row_sample: int = DEFAULT_ROW_SAMPLE,
        sample_rows: int = DEFAULT_SAMPLE,
        seed: int = 0,
    ) -> ReferenceProfile:
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise EngineError("the reference data has no rows or no columns")
        kinds = dict(kinds or {})
        unknown = set(kinds) - set(frame.columns)
        if unknown:
            raise EngineError(f"column kinds given for columns the reference lacks: {sorted(unknown)}")
        columns: dict[str, ColumnProfile] = {}
        for name in frame.columns:
            series = frame[name]
            kind = kinds.get(name) or infer_kind(series, max_int_categories=max_int_categories)
            if kind == "numeric":
                if not (isinstance(series.dtype, np.dtype) and series.dtype.kind in "fiu"):
                    raise EngineError(f"column {name!r} is not numeric and cannot be tested as numeric")
                columns[str(name)] = ColumnProfile.numeric(
                    str(name), series.to_numpy(dtype=np.float64, na_value=np.nan), sample_rows=sample_rows, seed=seed
                )
            else:
                columns[str(name)] = ColumnProfile.categorical(str(name), kind, series)
        if frame.shape[0] > row_sample:
            rng = np.random.default_rng(seed)
            frame = frame.iloc[np.sort(rng.choice(frame.shape[0], row_sample, replace=False))]
        return cls(columns, frame.reset_index(drop=True).rename(columns=str))

    # --- cache -------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the profile to one ``.npz`` file (no pickles)."""
        arrays: dict[str, Array] = {}
        meta: list[dict[str, Any]] = []
        for i, col in enumerate(self.columns.values()):
            entry = {
                "name": col.name,
                "kind": col.kind,
                "n": col.n,
                "missing": col.missing,
                "mean": col.mean,
                "std": col.std,
                "categories": list(col.categories),
            }
            for field_name in (
                "sorted_values",
                "sample_sorted",
                "ks_edges",
                "ks_ref_lt",
                "ks_ref_le",
                "psi_edges",
                "psi_counts",
                "display_edges",
                "display_counts",
                "counts",
            ):
                value = getattr(col, field_name)
                if value is not None:
                    arrays[f"c{i}_{field_name}"] = value
            meta.append(entry)
        buffer = io.BytesIO()
        self.row_sample.to_parquet(buffer, index=False)
        arrays["row_sample"] = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes())
            sample = pd.read_parquet(io.BytesIO(data["row_sample"].tobytes()))
            columns: dict[str, ColumnProfile] = {}
            for i, entry in enumerate(meta):
                arrays = {key.split("_", 1)[1]: data[key] for key in data.files if key.startswith(f"c{i}_")}
                columns[entry["name"]] = ColumnProfile(
                    name=entry["name"],
                    kind=entry["kind"],
                    n=entry["n"],
                    missing=entry["missing"],
                    mean=entry["mean"],
                    std=entry["std"],
                    categories=tuple(entry["categories"]),
                    **arrays,
                )
        return cls(columns, sample)
