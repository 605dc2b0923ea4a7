"""A threshold verdict from a value and its interval: pass, fail, or inconclusive.

With an interval, a minimum is met when the whole interval lies at or above
it, missed when the whole interval lies below it, and the verdict is
inconclusive when the interval straddles it (a maximum mirrors this). A
number without an interval (a latency, a size) is compared as it stands.
Below ``MIN_ROWS`` rows a verdict is inconclusive whatever the interval
says, and says why.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MIN_ROWS", "threshold_verdict"]

#: Fewest rows a metric's verdict may rest on.
MIN_ROWS = 30


def threshold_verdict(value: float, bound: str, limit: float, interval: dict[str, Any] | None) -> dict[str, Any]:
    """``{"verdict", "reason", "low", "high", "n"}`` for ``value`` against ``bound`` (``min``/``max``) ``limit``."""
    low = high = n = None
    if isinstance(interval, dict) and interval.get("low") is not None and interval.get("high") is not None:
        low, high, n = float(interval["low"]), float(interval["high"]), interval.get("n")
    if n is not None and n < MIN_ROWS:
        return {"verdict": "inconclusive", "reason": f"too few rows ({n}; at least {MIN_ROWS} needed)",
                "low": low, "high": high, "n": n}  # fmt: skip
    if low is None or high is None:
        met = value >= limit if bound == "min" else value <= limit
        return {"verdict": "pass" if met else "fail", "reason": "value compared as it stands (no interval)",
                "low": None, "high": None, "n": n}  # fmt: skip
    sure_pass = low >= limit if bound == "min" else high <= limit
    sure_fail = high < limit if bound == "min" else low > limit
    if sure_pass:
        verdict, reason = "pass", "the whole 95 % interval meets the threshold"
    elif sure_fail:
        verdict, reason = "fail", "the whole 95 % interval misses the threshold"
    else:
        verdict, reason = "inconclusive", "the 95 % interval straddles the threshold"
    return {"verdict": verdict, "reason": reason, "low": low, "high": high, "n": n}
