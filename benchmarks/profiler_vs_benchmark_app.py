"""evalsvc's latency profiler against OpenVINO's benchmark_app, on the same model, device, batch and threads.

For each case (an ONNX model, a batch size, a thread count) the two tools
take turns, round after round, in alternating order (A B, B A, A B, ...) so
that a change in the machine's load hits both alike:

* **benchmark_app** in a subprocess, as a single synchronous stream::

      benchmark_app -m model.onnx -d CPU -api sync -hint none -nireq 1 -nstreams 1
                    -nthreads N -infer_precision f32 -data_shape [B,...]
                    -inference_only true|false -t T

  ``-hint none -nstreams 1 -nireq 1 -api sync`` is one request called back
  to back, which is what the profiler's loop does. The model is left with
  its dynamic batch axis and fed ``-data_shape``, because the openvino
  backend compiles the model as it is, without reshaping it to a static
  batch. ``-inference_only`` follows what the backend does with an input of
  that size (see :func:`inference_only`): small inputs are copied into the
  tensor already bound to the request (benchmark_app: ``true``, tensors stay
  bound), large ones are bound anew around the caller's array on each call
  (``false``, benchmark_app's "full mode", which binds new tensors before
  every inference). Its console "Median" and "Throughput" lines are parsed.
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

Each round gives one median (p50) and one throughput per tool; the ratio
profiler / benchmark_app is taken within each round and its median over the
rounds is gated at 0.90-1.10 for latency and throughput (see
:class:`Outcome` for why the ratios are paired; the ratio of the two tools'
medians over rounds is printed beside it). Latency is gated on the
like-for-like figure (the runtime p50 where the backend reports one, the
call p50 otherwise). The call-latency ratio is printed for information, with
the "per-call cost" (the profiler's call p50 minus its runtime p50: what the
binding and the backend add around OpenVINO's timer, which the service's
callers pay and benchmark_app's throughput includes) and the "binding floor",
measured in the same run: the median gap between a bare call of the binding's
C++ ``infer`` (no inputs passed, outputs shared) and OpenVINO's timer of that
call. No Python caller can get under the floor, so where it alone is over
10 % of the model's time (a model of ~10 µs) the call-latency ratio cannot
be within 0.90-1.10 for any profiler written in Python. The exit status is 1
if a gate fails.

Run ``python benchmarks/profiler_vs_benchmark_app.py`` (``--quick`` for a
smoke run, ``--record`` to append the table to benchmarks/RESULTS.md).
Needs ``fixtures/digits_cnn.onnx`` (``scripts/build_models.py``) and, for
EfficientNet-Lite0, ``python scripts/build_models.py --only-efficientnet``
(skipped with a note if it is not built).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workers.engine.inference.openvino import SHARE_INPUT_BYTES  # noqa: E402
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
    """The rounds of one case.

    Ratios are *paired*: profiler / benchmark_app within each round (the two
    runs adjacent in time), then the median over rounds. This machine's speed
    moves between regimes for seconds to minutes at a time (EfficientNet at 2
    threads reads either ~2.4 or ~3.0 ms, for both tools alike), and a ratio
    of the two tools' medians over rounds swings by whichever tool happened
    to get one more slow round; a pair straddling a switch is one outlier
    among the paired ratios instead. The ratio of the medians over rounds is
    printed beside it.
    """

    case: Case
    rounds: list[Round] = field(default_factory=list)
    floor_us: float | None = None

    def median(self, attr: str) -> float | None:
        values = [getattr(r, attr) for r in self.rounds if getattr(r, attr) is not None]
        return statistics.median(values) if values else None

    def paired(self, ours: str, bench: str) -> float | None:
        """Median over rounds of the round's profiler / benchmark_app ratio."""
        values = [getattr(r, ours) / getattr(r, bench) for r in self.rounds if getattr(r, ours) is not None]
        return statistics.median(values) if values else None

    def of_medians(self, ours: str, bench: str) -> float | None:
        top, bottom = self.median(ours), self.median(bench)
        return top / bottom if top is not None and bottom else None

    @property
    def latency_ratio(self) -> float:
        """The like-for-like latency ratio: the runtime's own timer where the backend reports it."""
        runtime = self.paired("ours_runtime_p50_us", "bench_p50_us")
        if runtime is not None:
            return runtime
        call = self.paired("ours_p50_us", "bench_p50_us")
        assert call is not None
        return call

    @property
    def latency_gated_on(self) -> str:
        return "runtime timer" if self.median("ours_runtime_p50_us") is not None else "call"

    @property
    def throughput_ratio(self) -> float:
        value = self.paired("ours_fps", "bench_fps")
        assert value is not None
        return value

    @property
    def call_ratio(self) -> float:
        value = self.paired("ours_p50_us", "bench_p50_us")
        assert value is not None
        return value

    @property
    def per_call_cost_us(self) -> float | None:
        """Median over rounds of the profiler's call p50 minus its runtime p50: the binding's cost per call."""
        values = [r.ours_p50_us - r.ours_runtime_p50_us for r in self.rounds if r.ours_runtime_p50_us is not None]
        return statistics.median(values) if values else None


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


def inference_only(case: Case) -> bool:
    """Whether benchmark_app's loop should leave its input tensors bound, as the backend does for this input.

    The openvino backend copies an input of up to ``SHARE_INPUT_BYTES`` into
    the tensor already bound to its request, and binds a new tensor around
    the caller's array for a larger one. benchmark_app's "full mode" (its
    default for a dynamic-shape model) binds new input tensors before every
    inference; ``-inference_only true`` leaves them bound. The mode that does
    the same work per call as the backend is the one compared.
    """
    nbytes = 4 * case.batch * math.prod(case.sample_shape)  # float32
    return nbytes <= SHARE_INPUT_BYTES


def run_benchmark_app(case: Case, seconds: float) -> tuple[float, float, int]:
    """(median µs, throughput rows/s, iterations) of one benchmark_app run."""
    shape = ",".join(str(d) for d in (case.batch, *case.sample_shape))
    command = benchmark_app_command() + [
        "-m", str(case.path), "-d", "CPU", "-api", "sync", "-hint", "none", "-nireq", "1", "-nstreams", "1",
        "-nthreads", str(case.threads), "-infer_precision", "f32", "-data_shape", f"[{shape}]",
        "-inference_only", "true" if inference_only(case) else "false", "-t", str(max(1, round(seconds))),
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
    outcome.floor_us = binding_floor(case, seconds)
    print(f"  {case.label:28s} binding floor {outcome.floor_us:+.1f} us per call", flush=True)
    return outcome


def binding_floor(case: Case, seconds: float) -> float:
    """Median µs between a bare call of the binding's C++ ``infer`` and OpenVINO's own timer of it.

    The same model, device, threads and precision as the profiler's cell, one
    reused request, no inputs passed and outputs shared: the least any Python
    caller can pay per call on top of what benchmark_app reports.
    """
    import numpy as np
    import openvino as ov
    from openvino._pyopenvino import InferRequest

    core = ov.Core()
    config = {ov.properties.inference_num_threads: case.threads, ov.properties.hint.inference_precision: ov.Type.f32}
    request = core.compile_model(core.read_model(str(case.path)), "CPU", config).create_infer_request()
    request.set_input_tensor(
        0, ov.Tensor(np.random.default_rng(0).random((case.batch, *case.sample_shape), np.float32))
    )
    gaps: list[float] = []
    warm_until = time.perf_counter() + min(0.5, seconds / 4)
    end = warm_until + seconds
    while (now := time.perf_counter()) < end or len(gaps) < 100:
        t0 = time.perf_counter_ns()
        InferRequest.infer(request, {}, True, True)
        wall = time.perf_counter_ns() - t0
        if now >= warm_until:
            gaps.append(wall / 1e3 - request.latency * 1e3)
    return statistics.median(gaps)


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
        "| case | benchmark_app median | profiler runtime p50 | latency ratio | benchmark_app rows/s "
        "| profiler rows/s | throughput ratio | ratios of medians (lat, thr) | profiler call p50 | per-call cost "
        "| binding floor | call-latency ratio (info) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        runtime = o.median("ours_runtime_p50_us")
        runtime_text = f"{runtime:.1f} us" if runtime is not None else "n/a (call p50 gated)"
        latency_key = "ours_runtime_p50_us" if runtime is not None else "ours_p50_us"
        of_medians = f"{o.of_medians(latency_key, 'bench_p50_us'):.3f}, {o.of_medians('ours_fps', 'bench_fps'):.3f}"
        cost = f"{o.per_call_cost_us:+.1f} us" if o.per_call_cost_us is not None else "n/a"
        floor = f"{o.floor_us:+.1f} us" if o.floor_us is not None else "n/a"
        lines.append(
            f"| {o.case.label} | {o.median('bench_p50_us'):.1f} us | {runtime_text} "
            f"| {o.latency_ratio:.3f} {gate(o.latency_ratio)} | {o.median('bench_fps'):.1f} "
            f"| {o.median('ours_fps'):.1f} | {o.throughput_ratio:.3f} {gate(o.throughput_ratio)} | {of_medians} "
            f"| {o.median('ours_p50_us'):.1f} us | {cost} | {floor} | {o.call_ratio:.3f} |"
        )
    return lines


def rounds_detail(outcomes: list[Outcome]) -> list[str]:
    """Per-round paired ratios, so the spread behind each median is on record."""
    lines = []
    for o in outcomes:
        key = "ours_runtime_p50_us" if o.median("ours_runtime_p50_us") is not None else "ours_p50_us"
        latency = ", ".join(f"{getattr(r, key) / r.bench_p50_us:.3f}" for r in o.rounds)
        throughput = ", ".join(f"{r.ours_fps / r.bench_fps:.3f}" for r in o.rounds)
        lines.append(f"- {o.case.label}, by round: latency ratios {latency}; throughput ratios {throughput}")
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
            "`-api sync -hint none -nireq 1 -nstreams 1 -infer_precision f32 -data_shape [B,...]`, "
            "`-inference_only true` where the backend copies the input into its bound tensor (≤ "
            f"{SHARE_INPUT_BYTES // 1024} KiB), `false` where it binds a new one per call",
            "- Ratios are profiler / benchmark_app within each round (the two runs adjacent in time), median over "
            "rounds; gate 0.90–1.10 on the runtime-latency ratio (the like-for-like figure) and the throughput "
            "ratio. The ratios of the two tools' medians over rounds are shown beside them. benchmark_app's median "
            "is OpenVINO's own timer inside `infer()` (no Python binding cost); the profiler's call p50 is "
            '`perf_counter_ns` around `Backend.predict`; "per-call cost" is its call p50 minus its runtime p50, '
            'and "binding floor" the same gap for a bare call of the binding\'s C++ `infer` with nothing else '
            "around it (no Python caller gets under it). "
            "Both throughputs are iterations × batch over wall time.",
            *(f"- {note}" for note in notes),
            "",
            *lines,
            "",
            *rounds_detail(outcomes),
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
        print(
            f"{o.case.label}: latency ratio ({o.latency_gated_on}) {o.latency_ratio:.3f} ({gate(o.latency_ratio)}), "
            f"throughput ratio {o.throughput_ratio:.3f} ({gate(o.throughput_ratio)}); "
            f"call-latency ratio {o.call_ratio:.3f} (info)"
        )
        failed |= gate(o.latency_ratio) == "FAIL" or gate(o.throughput_ratio) == "FAIL"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
