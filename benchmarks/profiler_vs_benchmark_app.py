"""evalsvc's latency profiler against OpenVINO's benchmark_app, on the same model, device, batch and threads.

For each case (an ONNX model, a batch size, a thread count) the two tools
take turns, round after round, in alternating order (A B, B A, A B, ...) so
that a change in the machine's load hits both alike:

* **benchmark_app** in a subprocess, as a single synchronous stream::

      benchmark_app -m model.onnx -d CPU -api sync -hint none -nireq 1 -nstreams 1
                    -nthreads N -infer_precision f32 -data_shape [B,...] -t T

  ``-hint none -nstreams 1 -nireq 1 -api sync`` is one request called back
  to back, which is what the profiler's loop does. The model is left with
  its dynamic batch axis and fed ``-data_shape``, because the openvino
  backend compiles the model as it is, without reshaping it to a static
  batch. Its console "Median" and "Throughput" lines are parsed.
* **the profiler**: :func:`workers.engine.latency.profile_grid` with the
  ``openvino`` backend on ``cpu``, ``fp32``, the same batch and
  ``threads``, synthetic inputs, percentiles by benchmark_app's own method.

What each number is
-------------------
benchmark_app's *latency* is OpenVINO's own timer inside
``InferRequest.infer`` (``request.latency``): it excludes everything the
Python binding does to pass inputs in and outputs out. Its *throughput* is
iterations × batch over the loop's wall time, so that cost counts there.
The profiler's *latency* is ``perf_counter_ns`` around
``Backend.predict``: what a caller of the service waits, binding overhead
included. Where the backend reports the runtime's own timing
(``runtime_latency_ns()``), the profiler records it too and it is printed
as "runtime p50"; that is the like-for-like figure to benchmark_app's median.

The ratios of the medians over rounds (profiler / benchmark_app) are printed
last; the gate is 0.90-1.10 for latency and throughput. Latency is gated on
the like-for-like figure (the runtime p50 where the backend reports one, the
call p50 otherwise); the call-latency ratio and the per-call difference in µs
are printed beside it, since that cost is what the service's callers pay and
what benchmark_app's throughput includes. The exit status is 1 if a gate fails.

Run ``python benchmarks/profiler_vs_benchmark_app.py`` (``--quick`` for a
smoke run, ``--record`` to append the table to benchmarks/RESULTS.md).
Needs ``fixtures/digits_cnn.onnx`` (``scripts/build_models.py``) and, for
EfficientNet-Lite0, ``python scripts/build_models.py --only-efficientnet``
(skipped with a note if it is not built).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workers.engine.latency import ProfileGrid, StabilityRule, SyntheticInputs, host_facts, profile_grid  # noqa: E402
from workers.engine.types import ModelSpec  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
GATE = (0.90, 1.10)
_CACHE = Path(os.environ.get("EVALSVC_MODEL_CACHE") or ROOT / "var" / "cache" / "models")


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    sample_shape: tuple[int, ...]
    batch: int
    threads: int

    @property
    def label(self) -> str:
        return f"{self.name} b{self.batch} t{self.threads}"


@dataclass
class Round:
    bench_p50_us: float
    bench_fps: float
    ours_p50_us: float
    ours_fps: float
    ours_runtime_p50_us: float | None
    ours_stable: bool
    bench_count: int
    ours_count: int


@dataclass
class Outcome:
    case: Case
    rounds: list[Round] = field(default_factory=list)

    def median(self, attr: str) -> float | None:
        values = [getattr(r, attr) for r in self.rounds if getattr(r, attr) is not None]
        return statistics.median(values) if values else None

    @property
    def latency_ratio(self) -> float:
        return self._ratio("ours_p50_us", "bench_p50_us")

    @property
    def throughput_ratio(self) -> float:
        return self._ratio("ours_fps", "bench_fps")

    @property
    def overhead_us(self) -> float:
        """Profiler median minus benchmark_app median: the per-call cost benchmark_app's timer leaves out."""
        ours, bench = self.median("ours_p50_us"), self.median("bench_p50_us")
        assert ours is not None and bench is not None
        return ours - bench

    @property
    def runtime_ratio(self) -> float | None:
        ours = self.median("ours_runtime_p50_us")
        bench = self.median("bench_p50_us")
        return ours / bench if ours is not None and bench else None

    def _ratio(self, ours: str, bench: str) -> float:
        top, bottom = self.median(ours), self.median(bench)
        assert top is not None and bottom
        return top / bottom


def benchmark_app_command() -> list[str]:
    """benchmark_app from the environment's scripts, else from PATH."""
    beside = Path(sys.executable).parent / "benchmark_app"
    found = str(beside) if beside.exists() else shutil.which("benchmark_app")
    if found is None:
        raise SystemExit("benchmark_app not found: it ships with the openvino package")
    return [found]


_LINE = {
    "median": re.compile(r"Median:\s+([\d.]+)\s+(us|ms)"),
    "fps": re.compile(r"Throughput:\s+([\d.]+)\s+FPS"),
    "count": re.compile(r"Count:\s+(\d+)\s+iterations"),
}


def run_benchmark_app(case: Case, seconds: float) -> tuple[float, float, int]:
    """(median µs, throughput rows/s, iterations) of one benchmark_app run."""
    shape = ",".join(str(d) for d in (case.batch, *case.sample_shape))
    command = benchmark_app_command() + [
        "-m", str(case.path), "-d", "CPU", "-api", "sync", "-hint", "none", "-nireq", "1", "-nstreams", "1",
        "-nthreads", str(case.threads), "-infer_precision", "f32", "-data_shape", f"[{shape}]",
        "-t", str(max(1, round(seconds))),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds * 10 + 120)
    text = done.stdout + done.stderr
    found = {key: pattern.search(text) for key, pattern in _LINE.items()}
    if done.returncode != 0 or not all(found.values()):
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise SystemExit(f"benchmark_app failed on {case.label} (exit {done.returncode}):\n{tail}")
    median = found["median"]
    assert median is not None and found["fps"] is not None and found["count"] is not None
    value = float(median.group(1)) * (1000.0 if median.group(2) == "ms" else 1.0)
    return value, float(found["fps"].group(1)), int(found["count"].group(1))


def run_profiler(case: Case, seconds: float) -> tuple[float, float, float | None, bool, int]:
    """(p50 µs, rows/s, runtime p50 µs or None, stable, calls) of one profiler cell."""
    spec = ModelSpec(path=str(case.path), format="onnx", sha256=case.name)
    # Three windows of a third of benchmark_app's duration each when stable.
    window = max(0.5, seconds / 3)
    grid = ProfileGrid(
        backends=("openvino",),
        devices=("cpu",),
        precisions=("fp32",),
        batch_sizes=(case.batch,),
        threads=(case.threads,),
        rule=StabilityRule(min_calls=50, min_window_s=window, max_windows=10, max_seconds=seconds * 3),
        warmup_calls=10,
        warmup_s=0.5,
        keep_samples=0,
        percentile_method="benchmark_app",
    )
    cell = profile_grid(spec, grid, SyntheticInputs(distinct=1)).cells[0]
    if cell.status != "ok" or cell.model is None:
        raise SystemExit(f"the profiler failed on {case.label}: {cell.status}: {cell.error}")
    summary = cell.model.latency
    runtime = cell.model.runtime_latency
    return (
        summary.p50_ms * 1e3,
        summary.throughput_rows_s,
        runtime.p50_ms * 1e3 if runtime is not None else None,
        cell.model.stability.stable,
        summary.count,
    )


def measure(case: Case, rounds: int, seconds: float) -> Outcome:
    outcome = Outcome(case)
    for index in range(rounds):
        bench: tuple[float, float, int] | None = None
        ours: tuple[float, float, float | None, bool, int] | None = None
        for tool in ("bench", "ours") if index % 2 == 0 else ("ours", "bench"):
            if tool == "bench":
                bench = run_benchmark_app(case, seconds)
            else:
                ours = run_profiler(case, seconds)
        assert bench is not None and ours is not None
        outcome.rounds.append(Round(bench[0], bench[1], ours[0], ours[1], ours[2], ours[3], bench[2], ours[4]))
        r = outcome.rounds[-1]
        runtime = f"{r.ours_runtime_p50_us:8.1f}" if r.ours_runtime_p50_us is not None else "     n/a"
        print(
            f"  {case.label:28s} round {index + 1}: benchmark_app p50 {r.bench_p50_us:9.1f} us {r.bench_fps:9.1f}/s"
            f" | profiler p50 {r.ours_p50_us:9.1f} us {r.ours_fps:9.1f}/s runtime p50 {runtime} us"
            f" {'stable' if r.ours_stable else 'UNSTABLE'}",
            flush=True,
        )
    return outcome


def cases(quick: bool) -> tuple[list[Case], list[str]]:
    notes: list[str] = []
    found: list[Case] = []
    digits = ROOT / "fixtures" / "digits_cnn.onnx"
    if digits.exists():
        found.append(Case("digits_cnn", digits, (1, 8, 8), 1, 1))
        if not quick:
            found.append(Case("digits_cnn", digits, (1, 8, 8), 64, 1))
    else:
        notes.append("digits CNN skipped: fixtures/digits_cnn.onnx is missing (run scripts/build_models.py)")
    effnet = _CACHE / "efficientnet_lite0.onnx"
    if effnet.exists():
        found.append(Case("efficientnet_lite0", effnet, (3, 224, 224), 1, 1))
        if not quick:
            found.append(Case("efficientnet_lite0", effnet, (3, 224, 224), 1, 2))
    else:
        notes.append("EfficientNet-Lite0 skipped: not built (run `python scripts/build_models.py --only-efficientnet`)")
    return found, notes


def gate(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "pass" if GATE[0] <= value <= GATE[1] else "FAIL"


def table(outcomes: list[Outcome]) -> list[str]:
    lines = [
        "| case | benchmark_app median | profiler p50 | difference | profiler runtime p50 | latency ratio "
        "| benchmark_app rows/s | profiler rows/s | throughput ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        runtime = o.median("ours_runtime_p50_us")
        runtime_text = f"{runtime:.1f} us ({o.runtime_ratio:.3f})" if runtime is not None else "n/a"
        lines.append(
            f"| {o.case.label} | {o.median('bench_p50_us'):.1f} us | {o.median('ours_p50_us'):.1f} us "
            f"| {o.overhead_us:+.1f} us | {runtime_text} "
            f"| {o.latency_ratio:.3f} {gate(o.latency_ratio)} | {o.median('bench_fps'):.1f} "
            f"| {o.median('ours_fps'):.1f} | {o.throughput_ratio:.3f} {gate(o.throughput_ratio)} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="rounds per case (default 4)")
    parser.add_argument("--seconds", type=float, default=5.0, help="benchmark_app -t per run (default 5)")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s, batch 1 only")
    parser.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    parser.add_argument("--only", default="", help="run only cases whose label contains this, e.g. 'b1 t2'")
    args = parser.parse_args(argv)
    rounds, seconds = (2, 2.0) if args.quick else (args.rounds, args.seconds)

    host = host_facts(with_gpu=False)
    found, notes = cases(args.quick)
    if args.only:
        found = [c for c in found if args.only in c.label]
    for note in notes:
        print(f"note: {note}")
    print(
        f"{host.cpu_model}, {host.cpu_logical} logical CPUs, load {host.load_before}; "
        f"openvino {host.libraries.get('openvino')}; {rounds} rounds of {seconds:g} s, alternating order",
        flush=True,
    )
    outcomes = [measure(case, rounds, seconds) for case in found]
    load_after = host_facts(with_gpu=False).load_before
    lines = table(outcomes)

    if args.record:
        when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        section = [
            f"## Latency profiler vs benchmark_app — {when}",
            "",
            f"- CPU: {host.cpu_model}, {host.cpu_logical} logical CPUs ({host.cpu_physical or '?'} physical); "
            f"load average before {host.load_before}, after {load_after}",
            f"- Versions: python {host.python}, "
            + ", ".join(f"{k} {v}" for k, v in sorted(host.libraries.items()) if k in ("numpy", "openvino")),
            f"- {rounds} rounds × {seconds:g} s per tool and case, alternating order; profiler: openvino backend, "
            "cpu, fp32, percentiles by benchmark_app's method; benchmark_app: "
            "`-api sync -hint none -nireq 1 -nstreams 1 -infer_precision f32 -data_shape [B,...]`",
            "- Ratios are profiler / benchmark_app of the medians over rounds; gate 0.90–1.10 on the runtime-latency "
            "ratio (the like-for-like figure) and the throughput ratio. benchmark_app's median "
            "is OpenVINO's own timer inside `infer()` (no Python binding cost); the profiler's p50 is "
            '`perf_counter_ns` around `Backend.predict`; "difference" is the per-call cost between the two. '
            "Both throughputs are iterations × batch over wall time.",
            *(f"- {note}" for note in notes),
            "",
            *lines,
            "",
        ]
        if not RESULTS.exists():
            RESULTS.write_text("# Benchmark results\n\n", encoding="utf-8")
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write("\n".join(section) + "\n")
        print(f"appended to {RESULTS.relative_to(ROOT)}")

    print()
    print("\n".join(lines))
    print()
    failed = False
    for o in outcomes:
        runtime = o.runtime_ratio
        extra = f", runtime-latency ratio {runtime:.3f} ({gate(runtime)})" if runtime is not None else ""
        print(
            f"{o.case.label}: call-latency ratio {o.latency_ratio:.3f} ({o.overhead_us:+.1f} us per call), "
            f"throughput ratio {o.throughput_ratio:.3f} ({gate(o.throughput_ratio)}){extra}"
        )
        latency_gated = runtime if runtime is not None else o.latency_ratio
        failed |= gate(latency_gated) == "FAIL" or gate(o.throughput_ratio) == "FAIL"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
