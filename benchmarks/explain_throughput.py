"""How close explanations run to the cost of the model rows they evaluate, beside shap and captum used directly.

The floor for a method is ONNX Runtime evaluating the same number of model
rows the method evaluated, in batches of ``--batch`` rows of real data; the
figure is wall time ÷ floor (1.0: the explainer's own Python costs nothing).
Every method runs through the same counting forward function, so each is
compared with the floor for its own row count, and the methods run round
after round in the same process (alternating order) so load on the machine
hits them alike.

* breast-cancer MLP (30 features, ONNX Runtime), 20 rows, k-means background
  of 10, 512 coalitions: evalsvc KernelSHAP; ``shap.KernelExplainer`` (same
  background and budget, ``l1_reg=False``: the same estimator); captum
  ``ShapleyValueSampling`` (mean baseline, 16 permutations) and captum
  ``KernelShap`` (mean baseline, 512 samples), both with
  ``perturbations_per_eval=512``. Goal: evalsvc ≤ 2×.
* EfficientNet-Lite0 (ONNX Runtime, 224×224): evalsvc patch-KernelSHAP
  (32-pixel patches, 49 features, 128 coalitions, one blurred baseline) and
  captum ``Occlusion`` (32×32 windows, stride 32) through the same forward.
  Goal: ≤ 1.5×. Needs ``scripts/build_models.py --only-efficientnet``
  (model found via ``EVALSVC_MODEL_CACHE``, default ``var/cache/models``).

Run ``python benchmarks/explain_throughput.py`` (``--quick`` for a smoke run,
``--record`` to append the table to benchmarks/RESULTS.md). The table is
printed last; the exit status is 1 if an evalsvc goal is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workers.engine.explain.forward import Forward  # noqa: E402
from workers.engine.explain.image import feature_mask, patch_mask  # noqa: E402
from workers.engine.explain.kernel_shap import kernel_shap  # noqa: E402
from workers.engine.explain.torch_bridge import as_torch_function  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
CACHE = Path(os.environ.get("EVALSVC_MODEL_CACHE", ROOT / "var" / "cache" / "models"))
#: The MLP is built here on first use (small, deterministic).
MLP_CACHE = ROOT / "var" / "cache" / "explain"
GOALS = {"mlp": 2.0, "efficientnet": 1.5}


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def floor_seconds(sess: ort.InferenceSession, pool: np.ndarray, rows: int, batch: int) -> float:
    """ONNX Runtime alone on ``rows`` rows of real data in batches of ``batch``."""
    name = sess.get_inputs()[0].name
    reps = -(-min(rows, batch) // len(pool))
    block = np.ascontiguousarray(np.concatenate([pool] * reps)[: min(rows, batch)])
    t0 = time.perf_counter()
    done = 0
    while done < rows:
        n = min(batch, rows - done)
        sess.run(None, {name: block[:n]})
        done += n
    return time.perf_counter() - t0


def measure(
    methods: dict[str, Callable[[Forward], None]],
    sess: ort.InferenceSession,
    pool: np.ndarray,
    batch: int,
    rounds: int,
) -> dict[str, dict[str, float]]:
    name = sess.get_inputs()[0].name
    out_name = sess.get_outputs()[0].name
    ratios: dict[str, list[float]] = {m: [] for m in methods}
    walls: dict[str, list[float]] = {m: [] for m in methods}
    model_rows: dict[str, int] = {}
    order = list(methods)
    for r in range(rounds):
        for label in order if r % 2 == 0 else order[::-1]:
            forward = Forward(lambda x: sess.run([out_name], {name: x})[0], batch_size=batch)
            t0 = time.perf_counter()
            methods[label](forward)
            wall = time.perf_counter() - t0
            floor = floor_seconds(sess, pool, forward.stats.rows, batch)
            ratios[label].append(wall / floor)
            walls[label].append(wall)
            model_rows[label] = forward.stats.rows
    return {
        m: {"ratio": statistics.median(ratios[m]), "wall": statistics.median(walls[m]), "rows": model_rows[m]}
        for m in methods
    }


def mlp_methods(x: np.ndarray, train: np.ndarray) -> dict[str, Callable[[Forward], None]]:
    import shap
    import torch
    from captum.attr import KernelShap, ShapleyValueSampling

    bg = shap.kmeans(train, 10)
    mean = torch.tensor(train.mean(axis=0, keepdims=True), dtype=torch.float32)
    xt = torch.tensor(x, dtype=torch.float32)

    def ours(forward: Forward) -> None:
        kernel_shap(forward, x, bg.data, background_weights=bg.weights, nsamples=512, seed=0)

    def shap_kernel(forward: Forward) -> None:
        explainer = shap.KernelExplainer(forward, bg)
        explainer.shap_values(x, nsamples=512, l1_reg=False, silent=True)

    def captum_svs(forward: Forward) -> None:
        fn = as_torch_function(forward)
        ShapleyValueSampling(fn).attribute(xt, baselines=mean, target=1, n_samples=16, perturbations_per_eval=512)

    def captum_kernel(forward: Forward) -> None:
        fn = as_torch_function(forward)
        explainer = KernelShap(fn)
        for i in range(len(xt)):
            explainer.attribute(xt[i : i + 1], baselines=mean, target=1, n_samples=512, perturbations_per_eval=512)

    return {
        "evalsvc KernelSHAP": ours,
        "shap.KernelExplainer": shap_kernel,
        "captum ShapleyValueSampling": captum_svs,
        "captum KernelShap": captum_kernel,
    }


def efficientnet_methods(image: np.ndarray) -> dict[str, Callable[[Forward], None]]:
    import torch
    from captum.attr import Occlusion

    groups = feature_mask(patch_mask(224, 224, 32), (3, 224, 224))
    # A blurred copy as the baseline: 8x8 block means.
    blurred = image.reshape(3, 28, 8, 28, 8).mean(axis=(2, 4)).repeat(8, axis=1).repeat(8, axis=2)[None]
    xt = torch.tensor(image[None], dtype=torch.float32)

    def ours(forward: Forward) -> None:
        kernel_shap(forward, image[None], blurred, nsamples=128, seed=0, groups=groups)

    def occlusion(forward: Forward) -> None:
        Occlusion(as_torch_function(forward)).attribute(
            xt, sliding_window_shapes=(3, 32, 32), strides=(3, 32, 32), target=285, perturbations_per_eval=64
        )

    return {"evalsvc patch-KernelSHAP": ours, "captum Occlusion": occlusion}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and rounds")
    parser.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(1)
    import pandas as pd

    built = _load_script("build_explain_models").build(MLP_CACHE)
    frame = pd.read_csv(ROOT / "fixtures" / "breast_cancer.csv")
    train = frame.drop(columns=["diagnosis"]).to_numpy(np.float64)
    test = pd.read_csv(ROOT / "fixtures" / "breast_cancer_test.csv").drop(columns=["diagnosis"]).to_numpy(np.float64)
    rows = 5 if args.quick else 20
    rounds = 1 if args.quick else args.rounds
    results: list[tuple[str, str, dict[str, float]]] = []
    mlp = session(built["onnx"])
    for label, r in measure(mlp_methods(test[:rows], train), mlp, train.astype(np.float32), 8192, rounds).items():
        results.append(("breast-cancer MLP", label, r))
    eff_path = CACHE / "efficientnet_lite0.onnx"
    skipped = ""
    if eff_path.exists():
        eff = session(eff_path)
        rng = np.random.default_rng(0)
        # A smooth synthetic image in the model's input range (the cost does not depend on the content).
        base = rng.normal(0, 1, (3, 7, 7)).repeat(32, axis=1).repeat(32, axis=2)
        image = (base + 0.1 * rng.normal(0, 1, (3, 224, 224))).astype(np.float32)
        pool = np.stack([image, image[:, ::-1], image[:, :, ::-1], -image])
        for label, r in measure(efficientnet_methods(image), eff, pool, 32, 1 if args.quick else 2).items():
            results.append(("EfficientNet-Lite0", label, r))
    else:
        skipped = (
            f"EfficientNet-Lite0 not measured: {eff_path.name} not built (scripts/build_models.py --only-efficientnet)"
        )
    lines = table(results)
    if skipped:
        lines.append(f"- {skipped}")
    print("\n".join(lines))
    if args.record:
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write("\n".join(header(rows, rounds) + [""] + lines) + "\n")
        print(f"appended to {RESULTS.relative_to(ROOT)}")
    failed = [
        (m, label)
        for m, label, r in results
        if label.startswith("evalsvc") and r["ratio"] > GOALS["mlp" if "MLP" in m else "efficientnet"]
    ]
    return 1 if failed else 0


def header(rows: int, rounds: int) -> list[str]:
    import captum
    import shap
    import torch

    load = os.getloadavg()
    return [
        f"## Explanation throughput — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
        f"{platform.system()} {platform.machine()}; load average at the end {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}",
        f"- Versions: python {platform.python_version()}, numpy {np.__version__}, onnxruntime {ort.__version__}, "
        f"shap {shap.__version__}, captum {captum.__version__}, torch {torch.__version__}",
        f"- Method: `benchmarks/explain_throughput.py`; ONNX Runtime CPU, 1 thread; {rows} breast-cancer rows; "
        f"median of {rounds} alternating rounds; floor = ONNX Runtime alone on the same number of real rows in "
        "batches of 8192 (MLP) or 32 (EfficientNet).",
    ]


def table(results: list[tuple[str, str, dict[str, float]]]) -> list[str]:
    lines = ["| model | method | model rows | wall s | wall ÷ floor | goal |", "|---|---|---:|---:|---:|---|"]
    for model, label, r in results:
        goal = GOALS["mlp" if "MLP" in model else "efficientnet"]
        verdict = (f"{'pass' if r['ratio'] <= goal else 'FAIL'} (≤ {goal}×)") if label.startswith("evalsvc") else ""
        lines.append(f"| {model} | {label} | {r['rows']:,} | {r['wall']:.3f} | {r['ratio']:.2f}× | {verdict} |")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
