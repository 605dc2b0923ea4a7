"""The installed environment is whole: no package that half-imports and breaks its dependants."""

from __future__ import annotations

import importlib.util
import subprocess
import sys


def test_torchvision_is_either_whole_or_absent() -> None:
    # onnx2torch declares torchvision; PyPI's wheel is built against CUDA torch and cannot register its
    # operators beside the CPU build. `make install` removes it where it cannot load (see the Makefile).
    if importlib.util.find_spec("torchvision") is None:
        return
    done = subprocess.run([sys.executable, "-c", "import torchvision.ops"], capture_output=True, text=True)
    assert done.returncode == 0, f"torchvision is installed but does not load: {done.stderr[-400:]}"


def test_transformers_models_import() -> None:
    # shap's text explainers and alibi-detect import transformers' model classes; a broken optional
    # dependency of transformers turns that import into ModuleNotFoundError at the first explanation.
    code = "from transformers import PreTrainedModel; print(PreTrainedModel.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and "PreTrainedModel" in done.stdout, done.stderr[-400:]
