"""The perf_analyzer window rule on synthetic timing sequences, and the measurement driver with a fake clock."""

from __future__ import annotations

import numpy as np
import pytest

from workers.engine.errors import EngineError
from workers.engine.latency.stability import (
    StabilityRule,
    Window,
    evaluate_sequence,
    is_stable,
    measure_until_stable,
    spreads,
)

US = 1_000  # ns
# Windows of at least 100 calls and 10 ms; 3 must agree within 10 %; at most 8 windows or 1 s.
RULE = StabilityRule(min_calls=100, min_window_s=0.01, windows=3, tolerance=0.10, max_windows=8, max_seconds=1.0)


def noisy(rng: np.random.Generator, centre_us: float, n: int, spread: float = 0.03) -> np.ndarray:
    return (centre_us * US * (1 + spread * rng.standard_normal(n))).astype(np.int64)


def test_stable_sequence_is_stable_after_exactly_three_windows():
    rng = np.random.default_rng(0)
    seq = noisy(rng, 100, 10_000)  # 100 µs calls: a window is 100 calls = 10 ms
    m = evaluate_sequence(seq, RULE)
    assert m.report.stable and m.report.reason == "stable"
    assert len(m.report.windows) == 3
    assert m.report.p50_spread is not None and m.report.p50_spread <= 0.10
    assert m.report.throughput_spread is not None and m.report.throughput_spread <= 0.10
    assert m.samples_ns.size == sum(w.calls for w in m.report.windows) == m.total_calls
    assert m.wall_ns == pytest.approx(m.samples_ns.sum())


def test_window_needs_both_its_minimum_count_and_its_minimum_time():
    rng = np.random.default_rng(1)
    fast = noisy(rng, 10, 20_000)  # 10 µs calls: 100 calls are only 1 ms, the window runs to 10 ms
    m = evaluate_sequence(fast, RULE)
    assert all(w.calls >= 1000 and w.seconds >= 0.01 for w in m.report.windows)
    slow = noisy(rng, 1000, 2000)  # 1 ms calls: 10 ms pass after 10 calls, the window runs to 100 calls
    m = evaluate_sequence(slow, RULE)
    assert all(w.calls == 100 for w in m.report.windows)


def test_only_the_last_windows_are_reported_after_a_slow_start():
    rng = np.random.default_rng(2)
    # first window slow (caches cold), then steady: stable at the 4th window, reporting windows 2-4
    seq = np.concatenate([noisy(rng, 150, 100), noisy(rng, 100, 5000)])
    m = evaluate_sequence(seq, RULE)
    assert m.report.stable and len(m.report.windows) == 4
    assert m.samples_ns.size == sum(w.calls for w in m.report.windows[1:]) >= 300
    assert np.median(m.samples_ns) < 110 * US


def test_drifting_sequence_is_unstable_at_the_window_cap():
    rng = np.random.default_rng(3)
    n = 20_000
    # thermal throttling: each 100 calls 8 % slower than the last, so any 3 windows differ by ~17 %
    drift = 1.08 ** (np.arange(n) / 100)
    seq = (100 * US * drift * (1 + 0.01 * rng.standard_normal(n))).astype(np.int64)
    m = evaluate_sequence(seq, RULE)
    assert not m.report.stable
    assert m.report.reason == "max_windows"
    assert len(m.report.windows) == RULE.max_windows
    assert m.report.p50_spread is not None and m.report.p50_spread > RULE.tolerance
    # the figures are still reported, from the last windows
    assert m.samples_ns.size == sum(w.calls for w in m.report.windows[-3:])


def test_bimodal_sequence_in_blocks_is_unstable():
    rng = np.random.default_rng(4)
    # a neighbour steals the CPU every other window: 100 µs and 200 µs phases
    seq = np.concatenate([noisy(rng, 100 if i % 2 == 0 else 200, 100) for i in range(40)])
    m = evaluate_sequence(seq, RULE)
    assert not m.report.stable and m.report.reason == "max_windows"


def test_bimodal_mixture_is_unstable_or_flagged():
    from workers.engine.latency.stats import bimodality_gap

    rng = np.random.default_rng(5)
    n = 20_000
    slow = rng.random(n) < 0.5  # a cache that hits half the time
    seq = np.where(slow, noisy(rng, 200, n, 0.02), noisy(rng, 100, n, 0.02))
    m = evaluate_sequence(seq, RULE)
    assert (not m.report.stable) or bimodality_gap(m.samples_ns) > 0.25
    assert bimodality_gap(m.samples_ns) > 0.25  # flagged in any case


def test_time_cap_stops_a_slow_sequence():
    rng = np.random.default_rng(6)
    rule = StabilityRule(min_calls=100, min_window_s=0.01, max_windows=10, max_seconds=0.25)
    seq = noisy(rng, 20_000, 100)  # 20 ms calls: a 100-call window would take 2 s
    m = evaluate_sequence(seq, rule)
    assert m.report.reason == "max_seconds" and not m.report.stable
    assert len(m.report.windows) == 1 and not m.report.windows[0].complete
    assert m.total_calls == 13  # 13 * 20 ms >= 250 ms


def test_a_minimum_sample_count_outlasts_the_time_cap():
    rng = np.random.default_rng(6)
    rule = StabilityRule(min_calls=100, min_window_s=0.01, max_windows=10, max_seconds=0.25, min_samples=30)
    seq = noisy(rng, 20_000, 100)  # 20 ms calls: the cap alone stops after 13 calls
    m = evaluate_sequence(seq, rule)
    assert m.report.reason == "max_seconds" and not m.report.stable
    assert m.total_calls == m.samples_ns.size == 30
    # a sample count already reached changes nothing
    assert evaluate_sequence(seq, StabilityRule(**{**rule.to_dict(), "min_samples": 5})).total_calls == 13


def test_sequence_that_ends_early_says_so():
    m = evaluate_sequence(np.full(150, 100 * US), RULE)
    assert m.report.reason == "sequence_ended" and not m.report.stable


def test_is_stable_uses_max_over_min_like_perf_analyzer():
    def window(p50_ms: float, tput: float) -> Window:
        return Window(calls=100, seconds=1.0, p50_ms=p50_ms, mean_ms=p50_ms, throughput_batches_s=tput)

    at_limit = [window(1.0, 1000.0), window(1.1, 1000.0), window(1.05, 1000.0)]
    assert spreads(at_limit, 3) == (pytest.approx(0.10), 0.0)
    assert is_stable(at_limit, RULE)
    over = [window(1.0, 1000.0), window(1.11, 1000.0), window(1.05, 1000.0)]
    assert not is_stable(over, RULE)
    tput_over = [window(1.0, 1000.0), window(1.0, 1111.0), window(1.0, 1050.0)]
    assert not is_stable(tput_over, RULE)
    assert not is_stable(at_limit[:2], RULE)  # too few windows
    partial = at_limit[:2] + [Window(10, 1.0, 1.0, 1.0, 1000.0, complete=False)]
    assert not is_stable(partial, RULE)
    assert spreads(at_limit, 4) is None


class FakeTimer:
    """A clock that advances only while the timed call runs, by the next duration of a sequence."""

    def __init__(self, durations: np.ndarray) -> None:
        self.durations = durations.tolist()
        self.now = 0
        self.calls = 0
        self.payloads: list[int] = []

    def clock(self) -> int:
        return self.now

    def call(self, payload: int) -> None:
        self.payloads.append(payload)
        self.now += self.durations[self.calls]
        self.calls += 1


@pytest.mark.parametrize("kind", ["stable", "drifting", "slow", "slow, 40 samples", "slow, 150 samples"])
def test_driver_with_fake_clock_agrees_with_the_pure_rule(kind):
    rng = np.random.default_rng(7)
    needed = int(kind.split(", ")[1].split()[0]) if "samples" in kind else 0
    rule = StabilityRule(min_calls=100, min_window_s=0.01, max_windows=6, max_seconds=0.2, min_samples=needed)
    if kind == "stable":
        seq = noisy(rng, 100, 10_000)
    elif kind == "drifting":
        seq = (100 * US * 1.08 ** (np.arange(10_000) / 100)).astype(np.int64)
    else:
        seq = noisy(rng, 20_000, 400)
    pure = evaluate_sequence(seq, rule)
    if needed:
        assert pure.total_calls == needed and pure.samples_ns.size == needed
    timer = FakeTimer(seq)
    driven = measure_until_stable(timer.call, [0, 1, 2], rule, clock=timer.clock)
    assert driven.report.reason == pure.report.reason
    assert driven.report.windows == pure.report.windows
    assert np.array_equal(driven.samples_ns, pure.samples_ns)
    assert driven.wall_ns == pure.wall_ns and driven.total_calls == pure.total_calls == timer.calls
    assert timer.payloads[:5] == [0, 1, 2, 0, 1]  # payloads cycle


def test_driver_reads_the_side_channel_after_each_call():
    seq = np.full(1000, 100 * US, dtype=np.int64)
    timer = FakeTimer(seq)
    rule = StabilityRule(min_calls=100, min_window_s=0.0, max_windows=5)
    m = measure_until_stable(timer.call, [0], rule, clock=timer.clock, after=lambda: 80 * US)
    assert m.report.stable and m.side_ns is not None
    assert m.side_ns.size == m.samples_ns.size == 300 and set(m.side_ns.tolist()) == {80 * US}


def test_rule_and_driver_validation():
    with pytest.raises(EngineError):
        StabilityRule(min_calls=0)
    with pytest.raises(EngineError):
        StabilityRule(windows=3, max_windows=2)
    with pytest.raises(EngineError):
        StabilityRule(tolerance=0.0)
    with pytest.raises(EngineError):
        measure_until_stable(lambda p: None, [], RULE)
