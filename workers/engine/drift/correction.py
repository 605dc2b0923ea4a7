"""Multiple-testing correction across the per-column tests.

With 30 columns tested at ``alpha = 0.05`` and no correction, the chance that
at least one flags drift on identical distributions is about 79 %. Two
corrections, both giving an adjusted p-value per column that is compared
with ``alpha`` directly:

* ``"bonferroni"``: ``min(1, p * k)`` for ``k`` tests; controls the chance of
  any false alarm (family-wise error rate) at ``alpha``. Same verdicts as
  alibi-detect's ``correction="bonferroni"`` (``p < alpha / k``).
* ``"fdr"``: Benjamini–Hochberg adjusted p-values
  (``scipy.stats.false_discovery_control``); controls the expected share of
  false alarms among the flagged columns. Same verdicts as alibi-detect's
  ``correction="fdr"``.
* ``"none"``: the raw p-values.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from workers.engine.arrays import Array
from workers.engine.errors import EngineError

__all__ = ["CORRECTIONS", "adjust"]

CORRECTIONS = ("bonferroni", "fdr", "none")


def adjust(p_values: Array, method: str) -> Array:
    p = np.asarray(p_values, dtype=np.float64)
    if method not in CORRECTIONS:
        raise EngineError(f"unknown correction {method!r}; choose one of {', '.join(CORRECTIONS)}")
    if p.size == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(1.0, p * p.size)
    return np.asarray(stats.false_discovery_control(p, method="bh"))
