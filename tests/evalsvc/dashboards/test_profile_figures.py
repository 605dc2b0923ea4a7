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


@pytest.mark.django_db
def test_the_sweep_and_regression_tables_are_one_set_of_rows_for_page_and_report(alice, bc_model, client):
    """A stored profile with a concurrency sweep and a regression check: the run page and the report
    section table the same rows, each formatting them its own way."""
    import uuid

    from evalsvc.evaluations import services
    from evalsvc.evaluations.kinds.profile.tables import concurrency_sweeps, regression_rows
    from evalsvc.reports.sections import JobContext, build_section

    key = {"backend": "onnxruntime", "device": "cpu", "precision": "fp32", "batch_size": 8, "threads": 2}
    levels = [
        {"concurrency": n, "latency": {"p50_ms": p50, "p99_ms": p99, "throughput_rows_s": rows_s},
         "stability": {"stable": stable}, "within_latency_objective": within}
        for n, p50, p99, rows_s, stable, within in [(1, 1.23456, 2.5, 6480.4, True, True),
                                                    (2, 1.98765, 3.25, 8050.6, True, None),
                                                    (4, 4.5, 9.875, 7111.1, False, False)]
    ]  # fmt: skip
    latency = {"count": 300, "p50_ms": 1.2, "p90_ms": 1.5, "p95_ms": 1.8, "p99_ms": 2.4, "max_ms": 3.0,
               "throughput_rows_s": 6600.0}  # fmt: skip
    comparison = {"baseline_p50_ms": 0.61234, "candidate_p50_ms": 1.23456, "median_ratio": 2.01613,
                  "ratio_ci_low": 1.9377, "ratio_ci_high": 2.0981, "p_value": 3.2e-7, "cliffs_delta": 0.9712,
                  "verdict": "regression"}  # fmt: skip
    result = {
        "cells": [
            {"key": key, "status": "ok", "model": {"latency": latency, "stability": {"stable": True}},
             "cold_start": {"load_s": 0.05, "first_inference_ms": 3.0}, "memory": {"peak_rss_bytes": 2**27},
             "concurrency": {"levels": levels, "latency_climbs_at": 2, "climb_threshold": 0.25,
                             "best_throughput_at": 2, "max_within_latency_objective": 1}},
        ],
        "regression": {
            "baseline_run": str(uuid.uuid4()), "alpha": 0.01, "threshold": 0.1,
            "cells": [{"label": "onnxruntime/cpu/fp32/b8/t2", "status": "compared", "comparison": comparison},
                      {"label": "onnxruntime/cpu/fp32/b1/t2", "status": "missing", "reason": "not in the baseline run"}],
            "regressions": ["onnxruntime/cpu/fp32/b8/t2"],
        },
        "host": {},
    }  # fmt: skip
    run = services.run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=None, kind="profile",
                              params={"backends": ["onnxruntime"]})  # fmt: skip
    services.run_start(run_id=run.pk, worker="w")
    assert services.run_succeed(run_id=run.pk, result=result, environment={})

    client.force_login(alice)
    response = client.get(f"/runs/{run.pk}/")
    page_sweeps, page_regression = response.context["concurrency_sweeps"], response.context["regression_rows"]
    assert page_sweeps == concurrency_sweeps(result) and page_regression == regression_rows(result)
    section = build_section(JobContext(kind="profile", label="Latency profile", params={}, result=result,
                                       dataset=None))  # fmt: skip
    tables = {t["title"]: t for t in section.tables}

    (sweep,) = page_sweeps
    report_sweep = tables["Concurrency: onnxruntime/cpu/fp32 b8 t2"]["rows"]
    assert [[r["concurrency"], r["p50_ms"], r["p99_ms"], round(r["throughput_rows_s"]),
             "yes" if r["stable"] else "no", {True: "yes", False: "no"}.get(r["within_latency_objective"], "—")]
            for r in sweep["rows"]] == report_sweep  # fmt: skip
    assert report_sweep == [[1, 1.23456, 2.5, 6480, "yes", "yes"], [2, 1.98765, 3.25, 8051, "yes", "—"],
                            [4, 4.5, 9.875, 7111, "no", "no"]]  # fmt: skip

    report_regression = tables[f"Regression check against job {result['regression']['baseline_run'][:8]}"]["rows"]
    assert [r["label"] for r in page_regression] == [r[0] for r in report_regression]
    compared, missing = page_regression
    assert report_regression[0] == ["onnxruntime/cpu/fp32/b8/t2", 0.61234, 1.23456, 2.01613, "1.938–2.098", 3.2e-7,
                                    0.9712, "regression"]  # fmt: skip
    assert [compared[k] for k in ("baseline_p50_ms", "candidate_p50_ms", "median_ratio", "p_value",
                                  "cliffs_delta")] == [0.61234, 1.23456, 2.01613, 3.2e-7, 0.9712]  # fmt: skip
    assert report_regression[1][-1] == missing["reason"] == "not in the baseline run" and not missing["compared"]

    # The page renders those rows: the same numbers, at the page's precision.
    html = response.content.decode()
    for r in sweep["rows"]:
        assert (
            f'<tr data-concurrency="{r["concurrency"]}"><td>{r["concurrency"]}</td><td>{r["p50_ms"]:.3f}</td>' in html
        )
    assert 'data-cell="onnxruntime/cpu/fp32/b8/t2"' in html and "slower</span>" in html
    assert "<td>0.6123</td><td>1.2346</td><td>2.016</td><td>1.938–2.098</td><td>3.2e-07</td><td>0.971</td>" in html
    assert 'data-cell="onnxruntime/cpu/fp32/b1/t2"' in html and "not in the baseline run</td>" in html
    assert "from <strong>2</strong> requests in flight" in html
