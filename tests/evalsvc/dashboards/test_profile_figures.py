"""The profile dashboard's table words and the concurrency figure, from stored results."""

from __future__ import annotations

import pytest

from evalsvc.evaluations.kinds.profile.figures import concurrency_figures
from evalsvc.evaluations.kinds.profile.tables import profile_rows
from evalsvc.reports.svg import figure_svg


def verdict(latency=None, throughput=None, passed=False):
    return {"latency": latency, "latency_ms": None, "throughput": throughput, "throughput_rows_s": None,
            "passed": passed, "notes": []}  # fmt: skip


@pytest.mark.parametrize(
    ("stored", "word"),
    [
        (None, None),
        (verdict(), None),  # no objective set: not a failure
        (verdict(latency="pass", passed=True), "pass"),
        (verdict(latency="fail"), "fail"),
        (verdict(latency="not_applicable"), "n/a"),  # the objective is for another batch size
        (verdict(latency="not_applicable", throughput="pass"), "pass"),
        (verdict(latency="not_applicable", throughput="fail"), "fail"),
    ],
)
def test_verdict_words(stored, word):
    cell = {"key": {"backend": "onnxruntime", "batch_size": 1}, "status": "ok", "verdict": stored}
    assert profile_rows({"cells": [cell]})[0]["verdict"] == word


def level(n, p50, p99, rows_s):
    return {"concurrency": n, "latency": {"p50_ms": p50, "p99_ms": p99, "throughput_rows_s": rows_s}}


def test_concurrency_figures_plot_the_stored_sweep_and_mark_the_climb():
    sweep = {"levels": [level(1, 1.0, 1.5, 900), level(2, 1.1, 1.8, 1700), level(4, 2.0, 3.5, 1900)],
             "latency_climbs_at": 4, "best_throughput_at": 4, "climb_threshold": 0.25}  # fmt: skip
    cells = [{"concurrency": sweep}, {"concurrency": None}]
    (lat_title, latency), (thr_title, throughput) = concurrency_figures(cells, ["a", "b"])
    assert (lat_title, thr_title) == ("Concurrency: latency", "Concurrency: throughput")
    by_name = {trace.name: trace for trace in latency.data}
    assert list(by_name["a p50"].y) == [1.0, 1.1, 2.0] and list(by_name["a p50"].x) == [1, 2, 4]
    assert list(by_name["a p99"].y) == [1.5, 1.8, 3.5]
    assert list(by_name["a latency climbs"].x) == [4] and list(by_name["a latency climbs"].y) == [2.0]
    assert [list(t.y) for t in throughput.data] == [[900, 1700, 1900]]
    assert not any(name.startswith("b ") for name in by_name)  # a cell without a sweep adds nothing
    row = profile_rows({"cells": [{"key": {}, "status": "ok", "concurrency": sweep}]})[0]
    assert (row["concurrency_levels"], row["latency_climbs_at"], row["best_throughput_at"]) == ("1,2,4", 4, 4)
    # Reports draw them as they are (one axis each).
    for figure in (latency, throughput):
        svg = figure_svg(figure)
        assert svg.startswith("<svg") and "requests in flight" in svg


def test_no_sweep_no_figure():
    assert concurrency_figures([{"concurrency": {"levels": []}}, {}], ["a", "b"]) == []


def test_report_section_of_a_profile_with_a_failed_cell_and_a_regression_check():
    from evalsvc.reports.sections import JobContext, build_section

    ok = {
        "key": {"backend": "onnxruntime", "device": "cpu", "precision": "fp32", "batch_size": 1, "threads": 1},
        "status": "ok",
        "model": {
            "latency": {
                "count": 500,
                "p50_ms": 1.0,
                "p90_ms": 1.2,
                "p99_ms": 1.9,
                "max_ms": 3.0,
                "throughput_rows_s": 987.6,
            },
            "stability": {"stable": True},
        },  # fmt: skip
        "cold_start": {"load_s": 0.25, "first_inference_ms": 4.0},
        "memory": {"peak_rss_bytes": 300 * 2**20},
        "verdict": verdict(latency="pass", passed=True),
    }
    failed = {"key": {**ok["key"], "backend": "tensorrt", "device": "cuda"}, "status": "unavailable",
              "error": "no CUDA device"}  # fmt: skip
    comparison = {"baseline_p50_ms": 0.5, "candidate_p50_ms": 1.0, "median_ratio": 2.0, "ratio_ci_low": 1.9,
                  "ratio_ci_high": 2.1, "p_value": 1e-9, "cliffs_delta": 0.98, "verdict": "regression"}  # fmt: skip
    result = {
        "cells": [ok, failed],
        "grid": {"rule": {"min_calls": 50, "min_window_s": 1, "windows": 3, "tolerance": 0.1}, "warmup_calls": 10},
        "recommendation": {"reason": "onnxruntime/cpu/fp32/b1/t1: meets p99 <= 2 ms"},
        "regression": {
            "baseline_run": "abcdef12-0000",
            "alpha": 0.01,
            "threshold": 0.1,
            "cells": [{"label": "onnxruntime/cpu/fp32/b1/t1", "status": "compared", "comparison": comparison}],
            "regressions": ["onnxruntime/cpu/fp32/b1/t1"],
        },  # fmt: skip
    }
    built = build_section(JobContext(kind="profile", label="Latency profile", params={}, result=result, dataset=None))
    tables = {t["title"]: t for t in built.tables}
    latency = tables["Latency per configuration (ms per call)"]
    assert latency["rows"][0] == ["onnxruntime/cpu/fp32 b1 t1", 500, 1.0, 1.2, 1.9, 3.0, 988, "yes", "pass"]
    assert latency["rows"][1][0] == "tensorrt/cuda/fp32 b1 t1" and latency["rows"][1][-1] == "unavailable"
    assert tables["Cold start, preprocessing and memory"]["rows"] == [["onnxruntime/cpu/fp32 b1 t1", 250.0, 4.0,
                                                                        None, None, 300]]  # fmt: skip
    regression = tables["Regression check against job abcdef12"]
    assert regression["rows"][0][1:4] == [0.5, 1.0, 2.0] and regression["rows"][0][-1] == "regression"
    assert "within 10 %" in built.method
    assert "Recommended: onnxruntime/cpu/fp32/b1/t1: meets p99 <= 2 ms." in built.notes
    assert "tensorrt/cuda/fp32 b1 t1 was not measured (unavailable): no CUDA device" in built.notes
    assert "Slower beyond the threshold: onnxruntime/cpu/fp32/b1/t1" in built.notes


def test_the_latency_table_is_one_function_for_page_csv_and_report():
    """A cell timed with preprocessing only (preprocessing "in") shows the same numbers everywhere."""
    from evalsvc.reports.sections import JobContext, build_section

    latency = {"count": 90, "p50_ms": 1.25, "p90_ms": 1.5, "p99_ms": 2.0, "max_ms": 3.0, "throughput_rows_s": 812.4}
    result = {
        "cells": [
            {"key": {"backend": "onnxruntime", "device": "cpu", "precision": "fp32", "batch_size": 1, "threads": 1},
             "status": "ok", "model": None,
             "with_preprocessing": {"latency": latency, "stability": {"stable": True}}},
            {"key": {"backend": "openvino", "device": "cpu", "precision": "fp32", "batch_size": 1, "threads": None},
             "status": "unavailable", "error": "no openvino"},
        ]
    }  # fmt: skip
    rows = profile_rows(result)
    assert rows[0]["timed"] == "with_preprocessing" and rows[0]["p50_ms"] == 1.25 and rows[0]["stable"] is True
    assert rows[1]["timed"] is None and rows[1]["status"] == "unavailable"
    built = build_section(JobContext(kind="profile", label="Latency profile", params={}, result=result, dataset=None))
    table = built.tables[0]
    assert table["rows"][0] == ["onnxruntime/cpu/fp32 b1 t1", 90, 1.25, 1.5, 2.0, 3.0, 812, "yes", None]
    assert table["rows"][1] == ["openvino/cpu/fp32 b1", *[None] * 7, "unavailable"]
