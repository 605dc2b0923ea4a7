#!/usr/bin/env bash
# GPU check for the inference backends, meant to finish in under 5 minutes on
# one NVIDIA GPU:
#   1. install the gpu extra (onnxruntime-gpu, tensorrt) when it is missing;
#   2. build the digits CNN (and EfficientNet-Lite0 when time allows);
#   3. run the GPU-marked engine tests: pytest -m gpu tests/engine;
#   4. compare TensorRT vs ONNX Runtime CUDA (and its TensorRT provider) vs
#      ONNX Runtime CPU: largest output difference and median latency.
# Results go to $OUT when it is set (else var/gpu_check/): gpu_check.log,
# pytest_gpu.txt, parity_latency.json and parity_latency.md.
#
# Environment: PYTHON (default .venv/bin/python, else python3),
# GPU_CHECK_SKIP_INSTALL=1 to never pip install, GPU_CHECK_EFFICIENTNET=0 to
# skip EfficientNet. Exit status: that of the GPU tests.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STARTED=$(date +%s)
OUT_DIR="${OUT:-var/gpu_check}"
mkdir -p "$OUT_DIR"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
LOG="$OUT_DIR/gpu_check.log"
: >"$LOG"

if [[ -n "${PYTHON:-}" ]]; then PY="$PYTHON"
elif [[ -x .venv/bin/python ]]; then PY=.venv/bin/python
else PY=python3
fi

say() { echo "[gpu_check +$(($(date +%s) - STARTED))s] $*" | tee -a "$LOG"; }

say "python: $("$PY" -c 'import sys; print(sys.version.split()[0])') ($PY)"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$LOG"
else
  say "nvidia-smi not found: the GPU tests will skip and say why"
fi

# ------------------------------------------------------------------ 1. install
have_gpu_stack() {
  "$PY" - <<'PY' >/dev/null 2>&1
import importlib.util, sys
import onnxruntime
ok = "CUDAExecutionProvider" in onnxruntime.get_available_providers() and importlib.util.find_spec("tensorrt")
sys.exit(0 if ok else 1)
PY
}
if have_gpu_stack; then
  say "onnxruntime-gpu and tensorrt already installed"
elif [[ "${GPU_CHECK_SKIP_INSTALL:-0}" == "1" ]]; then
  say "gpu extra missing and GPU_CHECK_SKIP_INSTALL=1: not installing"
else
  say "installing the gpu extra (onnxruntime-gpu replaces the CPU onnxruntime wheel; the lock does not pin these)"
  # Both wheels provide the `onnxruntime` package: the CPU one must go first.
  if timeout 150 "$PY" -m pip install --quiet -c requirements/lock.txt onnxruntime-gpu tensorrt >>"$LOG" 2>&1; then
    "$PY" -m pip uninstall --quiet -y onnxruntime >>"$LOG" 2>&1
    # Reinstall over the files the uninstall shared with the CPU wheel.
    timeout 90 "$PY" -m pip install --quiet --force-reinstall --no-deps onnxruntime-gpu >>"$LOG" 2>&1
    say "installed: $("$PY" -m pip list 2>/dev/null | grep -Ei '^(onnxruntime-gpu|tensorrt) ' | tr -s ' ' | paste -sd ';')"
  else
    say "pip install failed (offline?): see $LOG; the GPU tests will skip with their reason"
  fi
fi

# pip's CUDA, cuDNN and TensorRT libraries live in site-packages, off the loader's path.
EXTRA_LIBS="$("$PY" - <<'PY' 2>/dev/null
import glob, os, site
dirs = []
for root in site.getsitepackages():
    dirs += glob.glob(os.path.join(root, "nvidia", "*", "lib")) + glob.glob(os.path.join(root, "tensorrt_libs"))
print(":".join(d for d in dirs if os.path.isdir(d)))
PY
)"
if [[ -n "$EXTRA_LIBS" ]]; then export LD_LIBRARY_PATH="$EXTRA_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
export EVALSVC_ENGINE_CACHE="$WORK/engines"

"$PY" - <<'PY' 2>&1 | tee -a "$LOG"
import json
from workers.engine.inference.registry import probe_backends
for entry in probe_backends():
    print("probe", json.dumps(entry))
PY

# --------------------------------------------------------------- 2. build models
say "building the digits CNN (scripts/build_models.py)"
BUILD=(--out "$WORK/models")
if [[ "${GPU_CHECK_EFFICIENTNET:-1}" == "1" ]]; then BUILD+=(--efficientnet --cache "$WORK/cache"); fi
if ! timeout 120 "$PY" scripts/build_models.py "${BUILD[@]}" >>"$LOG" 2>&1; then
  say "model build failed or timed out (see $LOG); using the committed fixtures"
fi
if cmp -s "$WORK/models/digits_cnn.onnx" fixtures/digits_cnn.onnx; then
  say "rebuilt digits_cnn.onnx is byte-identical to the committed fixture"
fi

# --------------------------------------------------------------------- 3. tests
say "pytest -m gpu tests/engine"
EVALSVC_MODEL_CACHE="$WORK/cache" timeout 150 "$PY" -m pytest -p no:cacheprovider -m gpu tests/engine -q -rs \
  >"$OUT_DIR/pytest_gpu.txt" 2>&1
TESTS=$?
tail -n 15 "$OUT_DIR/pytest_gpu.txt" | tee -a "$LOG"
say "GPU tests exit status: $TESTS"

# ------------------------------------------------------- 4. parity and latency
say "parity and latency: TensorRT vs ONNX Runtime CUDA vs CPU"
# Whatever is left of the 5 minutes, less 15 s to finish: runs past it are recorded as skipped.
DEADLINE=$((STARTED + 285))
WORK="$WORK" OUT_DIR="$OUT_DIR" DEADLINE="$DEADLINE" timeout $((DEADLINE - $(date +%s) + 10)) "$PY" - <<'PY' 2>&1 | tee -a "$LOG"
import json, os, statistics, time
from pathlib import Path

import numpy as np

from workers.engine.inference.registry import get_backend_class
from workers.engine.errors import EngineError
from workers.engine.types import ModelSpec

work, out = Path(os.environ["WORK"]), Path(os.environ["OUT_DIR"])
deadline = float(os.environ["DEADLINE"])
ALL_RUNS = [
    ("onnxruntime", "cpu", {}),
    ("onnxruntime", "cuda", {}),
    ("onnxruntime", "cuda", {"provider": "tensorrt"}),
    ("onnxruntime", "cuda", {"provider": "tensorrt", "precision": "fp16"}),
    ("tensorrt", "cuda", {"precision": "fp32"}),
    ("tensorrt", "cuda", {"precision": "fp16"}),
]
models = {"digits CNN": (ModelSpec("fixtures/digits_cnn.onnx", "onnx", ""), (1, 64), (1, 8, 8), ALL_RUNS)}
effnet = work / "cache" / "efficientnet_lite0.onnx"
if effnet.exists():
    # Each TensorRT build of EfficientNet takes tens of seconds: the CPU baseline, CUDA and native FP32/FP16 only.
    models["EfficientNet-Lite0"] = (
        ModelSpec(str(effnet), "onnx", ""), (1, 32), (3, 224, 224), [ALL_RUNS[i] for i in (0, 1, 4, 5)]
    )
rows = []
rng = np.random.default_rng(0)
for model, (spec, batches, shape, runs) in models.items():
    reference = {}
    for backend, device, options in runs:
        label = f"{backend}/{device}" + (f"/{options['provider']}-ep" if "provider" in options else "")
        precision = options.get("precision", "fp32")
        if time.time() > deadline - 20:
            rows.append({"model": model, "run": label, "precision": precision, "error": "skipped: 5-minute budget"})
            continue
        try:
            started = time.perf_counter()
            with get_backend_class(backend)(spec, device=device, options=options) as runner:
                load_s = time.perf_counter() - started
                for batch in batches:
                    x = rng.random((batch, *shape), dtype=np.float32) if batch not in reference else reference[batch][0]
                    for _ in range(10):
                        got = runner.predict({"input": x})["logits"]
                    times = []
                    for _ in range(50):
                        t0 = time.perf_counter()
                        runner.predict({"input": x})
                        times.append(time.perf_counter() - t0)
                    if batch not in reference:
                        reference[batch] = (x, got)
                    diff = float(np.abs(got - reference[batch][1]).max())
                    agree = float((got.argmax(1) == reference[batch][1].argmax(1)).mean())
                    rows.append({
                        "model": model, "run": label, "precision": precision, "batch": batch,
                        "provider": runner.describe()["provider"], "load_s": round(load_s, 2),
                        "median_ms": round(statistics.median(times) * 1e3, 3),
                        "max_abs_diff_vs_cpu": diff, "argmax_agreement": agree,
                    })
        except EngineError as exc:
            rows.append({"model": model, "run": label, "precision": precision, "error": exc.message})

lines = ["| model | run | precision | batch | provider | median ms | max abs diff vs CPU | argmax agree |",
         "|---|---|---|---:|---|---:|---:|---:|"]
for r in rows:
    if "error" in r:
        lines.append(f"| {r['model']} | {r['run']} | {r['precision']} | | unavailable: {r['error']} | | | |")
    else:
        lines.append(f"| {r['model']} | {r['run']} | {r['precision']} | {r['batch']} | {r['provider']} | "
                     f"{r['median_ms']:.3f} | {r['max_abs_diff_vs_cpu']:.2e} | {r['argmax_agreement']:.3f} |")
(out / "parity_latency.json").write_text(json.dumps(rows, indent=2) + "\n")
(out / "parity_latency.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY

say "done in $(($(date +%s) - STARTED)) s; results in $OUT_DIR"
exit "$TESTS"
