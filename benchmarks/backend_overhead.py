"""How much time the backend wrappers add to a bare runtime call, measured side by side.

For each model, runtime and batch size the same loaded model is called two
ways in the same process:

* bare: ``InferenceSession.run`` (ONNX Runtime), ``CompiledModel.__call__``
  (OpenVINO, which reuses one cached infer request), ``module(tensor)``
  under ``torch.inference_mode`` (TorchScript);
* wrapped: ``Backend.predict`` on the backend that owns that very session,
  compiled model or module, so the only difference is the wrapper.

The two are interleaved: every round runs a block of calls of each, in
alternating order, and the per-call time of a block is one sample; the
medians of the samples are compared. The gate: the wrapper may add at most
5% at batch 64 and 10% at batch 1.

Run ``python benchmarks/backend_overhead.py`` (``--quick`` for a smoke run,
``--record`` to append the table to benchmarks/RESULTS.md). Needs the
fixtures from ``scripts/build_models.py`` and ``scripts/build_fixtures.py``.
The overhead ratios are printed last; the exit status is 1 if a gate fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workers.engine.inference.onnxruntime import OnnxRuntimeBackend  # noqa: E402
from workers.engine.inference.openvino import OpenVinoBackend  # noqa: E402
from workers.engine.inference.pytorch import TorchBackend  # noqa: E402
from workers.engine.types import ModelSpec  # noqa: E402

FIXTURES = ROOT / "fixtures"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
GATES = {1: 0.10, 64: 0.05}


@dataclass
class Case:
    model: str
    runtime: str
    batch: int
    bare: Callable[[], Any]
    wrapped: Callable[[], Any]
    #: False for the informational rows that compare against the runtime's
    #: lowest-level call (the one the wrapper itself makes), not its public API.
    gated: bool = True


@dataclass
class Result:
    case: Case
    bare_us: float
    wrapped_us: float
    #: Median over rounds of (wrapper block time / adjacent bare block time) - 1.
    overhead: float


def cpu_model() -> str:
    """The CPU model name, read from /proc/cpuinfo at run time (platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    import onnxruntime
    import openvino
    import torch

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
        "openvino": openvino.__version__.split("-")[0],
        "torch": torch.__version__,
    }


def _spec(name: str, fmt: str) -> ModelSpec:
    return ModelSpec(str(FIXTURES / name), fmt, "")


def build_cases(threads: int) -> tuple[list[Case], list[Any], list[str]]:
    """Load every backend once and pair its predict() with the bare call on the same object."""
    import torch

    rng = np.random.default_rng(0)
    cases: list[Case] = []
    notes: list[str] = []
    digits = {b: rng.random((b, 1, 8, 8), dtype=np.float32) for b in GATES}
    cancer = {b: rng.normal(size=(b, 30)).astype(np.float32) for b in GATES}

    ort_options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
    backends: list[Any] = [
        OnnxRuntimeBackend(_spec("digits_cnn.onnx", "onnx"), options=ort_options),
        OnnxRuntimeBackend(_spec("breast_cancer_logreg.onnx", "onnx"), options=ort_options),
        OpenVinoBackend(_spec("digits_cnn.onnx", "onnx"), options={"threads": threads}),
        TorchBackend(_spec("digits_cnn.pt", "torchscript"), options={"threads": threads}),
    ]
    for backend in backends:
        backend.load()
    ort_digits, ort_cancer, ov_digits, torch_digits = backends

    for batch in GATES:
        for model, backend, data in (("digits CNN", ort_digits, digits), ("breast-cancer logreg", ort_cancer, cancer)):
            session, names = backend._session, backend._output_names
            feed = {"input": data[batch]}
            cases.append(
                Case(
                    model,
                    "onnxruntime",
                    batch,
                    bare=lambda s=session, n=names, f=feed: s.run(n, f),
                    wrapped=lambda b=backend, f=feed: b.predict(f),
                )
            )
            cases.append(
                Case(
                    model,
                    "onnxruntime vs C-level _sess.run",
                    batch,
                    bare=lambda s=session._sess, n=names, f=feed: s.run(n, f, None),
                    wrapped=lambda b=backend, f=feed: b.predict(f),
                    gated=False,
                )
            )
        compiled, port = ov_digits._compiled, ov_digits._compiled.outputs[0]
        feed = {"input": digits[batch]}
        cases.append(
            Case(
                "digits CNN",
                "openvino",
                batch,
                bare=lambda c=compiled, p=port, f=feed: c(f)[p],
                wrapped=lambda b=ov_digits, f=feed: b.predict(f),
            )
        )
        request = compiled.create_infer_request()

        def bare_request(r: Any = request, a: np.ndarray = digits[batch]) -> np.ndarray:
            r.set_input_tensor(0, ov.Tensor(a, shared_memory=True))
            r.infer()
            return r.get_output_tensor(0).data.copy()

        cases.append(
            Case(
                "digits CNN",
                "openvino vs set_input_tensor/infer()",
                batch,
                bare=bare_request,
                wrapped=lambda b=ov_digits, f=feed: b.predict(f),
                gated=False,
            )
        )
        module, x = torch_digits._module, digits[batch]

        def bare_torch(m: Any = module, a: np.ndarray = x) -> np.ndarray:
            with torch.inference_mode():
                return m(torch.from_numpy(a)).numpy()

        def bare_forward(fwd: Any = module.forward, a: np.ndarray = x) -> np.ndarray:
            with torch.inference_mode():
                return fwd(torch.from_numpy(a)).numpy()

        cases.append(
            Case(
                "digits CNN",
                "torch",
                batch,
                bare=bare_torch,
                wrapped=lambda b=torch_digits, f={"input": x}: b.predict(f),
            )
        )
        cases.append(
            Case(
                "digits CNN",
                "torch vs module.forward",
                batch,
                bare=bare_forward,
                wrapped=lambda b=torch_digits, f={"input": x}: b.predict(f),
                gated=False,
            )
        )
    notes += [
        "Gated rows compare with the runtime's public call: `InferenceSession.run`, `CompiledModel.__call__`, "
        "`module(tensor)`. The wrapper can beat them because it skips their per-call Python work (ONNX Runtime's "
        "input checks, OpenVINO's data dispatcher and result dict, nn.Module's hook dispatch).",
        "Rows marked info compare with the lowest-level call the wrapper itself makes, so they show what the "
        "wrapper's own Python costs (naming outputs, input checks).",
        "breast-cancer logreg on OpenVINO: not measured, OpenVINO cannot run its ONNX-ML operators "
        "(ai.onnx.ml:LinearClassifier, ai.onnx.ml:Scaler).",
    ]
    return cases, backends, notes


def measure(case: Case, rounds: int, min_block_s: float) -> Result:
    """Interleave short blocks of bare and wrapped calls and compare each pair of neighbours.

    Other processes on the machine slow some blocks down; two adjacent blocks
    see nearly the same load, so the median of the per-round ratios is far
    steadier than a ratio of overall medians.
    """
    for fn in (case.bare, case.wrapped):
        for _ in range(50):
            fn()
    # Size a block to last about min_block_s, so the timer's resolution and the
    # loop around the calls are negligible.
    start = time.perf_counter()
    calls = 0
    while time.perf_counter() - start < min_block_s:
        case.bare()
        calls += 1
    block = max(5, int(calls * min_block_s / (time.perf_counter() - start)))
    bare: list[float] = []
    wrapped: list[float] = []
    for r in range(rounds):
        # Alternate which goes first, so neither always runs on a warmer cache.
        for fn, samples in ((case.bare, bare), (case.wrapped, wrapped))[:: 1 if r % 2 == 0 else -1]:
            t0 = time.perf_counter()
            for _ in range(block):
                fn()
            samples.append((time.perf_counter() - t0) / block)
    ratios = [w / b for w, b in zip(wrapped, bare, strict=True)]
    return Result(
        case,
        statistics.median(bare) * 1e6,
        statistics.median(wrapped) * 1e6,
        statistics.median(ratios) - 1.0,
    )


def table(results: list[Result]) -> list[str]:
    lines = [
        "| model | runtime | batch | bare µs/call | wrapper µs/call | overhead | gate |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        gate = GATES[r.case.batch]
        verdict = ("pass" if r.overhead <= gate else "FAIL") if r.case.gated else "info"
        lines.append(
            f"| {r.case.model} | {r.case.runtime} | {r.case.batch} | {r.bare_us:.1f} | {r.wrapped_us:.1f} | "
            f"{r.overhead * 100:+.1f}% | {verdict}{f' (≤ {gate * 100:.0f}%)' if r.case.gated else ''} |"
        )
    return lines


def header(threads: int, rounds: int, min_block_s: float) -> list[str]:
    info = versions()
    return [
        f"## Backend wrapper overhead — {dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        "",
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in info.items()),
        f"- Method: `benchmarks/backend_overhead.py`; {threads} inference thread(s) per runtime; {rounds} rounds "
        f"of adjacent bare/wrapper blocks of ~{min_block_s * 1000:.0f} ms (order alternating); µs columns are "
        "medians of the per-call block means, the overhead is the median of the per-round wrapper/bare ratios.",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="alternating rounds per case (default 300)")
    parser.add_argument("--block-ms", type=float, default=5.0, help="block length in ms (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="inference threads per runtime (default 1)")
    parser.add_argument("--quick", action="store_true", help="20 rounds of 2 ms blocks: a smoke run")
    parser.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    rounds, block_s = (20, 0.002) if args.quick else (args.rounds, args.block_ms / 1000)

    cases, backends, notes = build_cases(args.threads)
    results = []
    try:
        for case in cases:
            result = measure(case, rounds, block_s)
            results.append(result)
            print(
                f"{case.model:<22} {case.runtime:<38} batch {case.batch:>3}: bare {result.bare_us:9.1f} µs  "
                f"wrapper {result.wrapped_us:9.1f} µs",
                flush=True,
            )
    finally:
        for backend in backends:
            backend.unload()

    lines = header(args.threads, rounds, block_s) + table(results) + [""] + [f"- {n}" for n in notes]
    if args.record:
        if not RESULTS.exists():
            RESULTS.write_text(
                "# Benchmark results\n\nEach benchmark run with `--record` appends its own section (newest last), "
                "with the date, machine and versions it ran on.\n\n",
                encoding="utf-8",
            )
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(lines) + "\n")
    print()
    print("\n".join(lines))
    print()
    failed = [r for r in results if r.case.gated and r.overhead > GATES[r.case.batch]]
    print("overhead (wrapper / bare - 1):")
    for r in results:
        tag = "" if r.case.gated else "  (info)"
        print(f"  {r.case.runtime:<38} {r.case.model:<22} batch {r.case.batch:>3}: {r.overhead * 100:+6.1f}%{tag}")
    print("gate:", "FAIL" if failed else "pass", "(≤ 10% at batch 1, ≤ 5% at batch 64)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
