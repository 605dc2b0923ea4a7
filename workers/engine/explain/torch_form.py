"""The differentiable form of a model version, for gradient methods.

* TorchScript and torch.export uploads are used directly (loaded as the
  torch backend loads them: nothing is unpickled).
* ONNX models are converted with onnx2torch. Every operator is looked up in
  onnx2torch's converters first, so a model it cannot convert is refused
  with the operators named (``ai.onnx.ml:LinearClassifier``); the converted
  module is then run on real rows beside ONNX Runtime and used only if its
  outputs agree (``rtol``/``atol``), the largest difference recorded.
* Other formats (OpenVINO IR, TFLite) have no differentiable form here.
"""

from __future__ import annotations

import contextlib
import sys
import types
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError, InvalidArtifact
from workers.engine.types import ModelSpec

__all__ = ["TorchForm", "load_torch_form", "onnx2torch_unsupported"]


@dataclass
class TorchForm:
    """A torch module mapping one float32 input tensor to one output tensor."""

    module: Any
    #: "torchscript", "torch_export" or "onnx2torch".
    source: str
    #: For a converted model: rows compared with ONNX Runtime, largest absolute and relative difference.
    check: dict[str, Any] = field(default_factory=dict)


def _onnx2torch() -> Any:
    """Import onnx2torch; its NMS/RoiAlign converters import torchvision at load time.

    A worker whose torchvision is missing or cannot load (a CUDA build beside
    a CPU torch) can still convert every other operator: a placeholder module
    stands in for torchvision while onnx2torch imports, and those two
    operators are then reported as unsupported.
    """
    if "onnx2torch" in sys.modules:
        return sys.modules["onnx2torch"]
    try:
        import torchvision  # noqa: F401
    except Exception:  # ImportError, or RuntimeError from a torchvision built for another torch
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        placeholder = types.ModuleType("torchvision")
        ops = types.ModuleType("torchvision.ops")
        ops.roi_align = None  # type: ignore[attr-defined]
        placeholder.ops = ops  # type: ignore[attr-defined]
        placeholder.__evalsvc_placeholder__ = True  # type: ignore[attr-defined]
        sys.modules["torchvision"] = placeholder
        sys.modules["torchvision.ops"] = ops
        try:
            import onnx2torch
        finally:
            del sys.modules["torchvision"], sys.modules["torchvision.ops"]
        onnx2torch.__evalsvc_without_torchvision__ = True
        return onnx2torch
    import onnx2torch

    return onnx2torch


def onnx2torch_unsupported(model: Any) -> list[str]:
    """``domain:Op`` (opset) of every operator in the ONNX model onnx2torch cannot convert, sorted."""
    from onnx import defs

    o2t = _onnx2torch()
    from onnx2torch.node_converters.registry import _CONVERTER_REGISTRY, OperationDescription

    without_tv = getattr(o2t, "__evalsvc_without_torchvision__", False)
    opsets = {(o.domain or defs.ONNX_DOMAIN): o.version for o in model.opset_import}
    missing: set[str] = set()
    for node in model.graph.node:
        domain = node.domain or defs.ONNX_DOMAIN
        version = opsets.get(domain, 1)
        with contextlib.suppress(Exception):  # an operator onnx has no schema for keeps its opset version
            version = defs.get_schema(node.op_type, domain=domain, max_inclusive_version=version).since_version
        shown = f"{'ai.onnx' if domain == defs.ONNX_DOMAIN else domain}:{node.op_type}"
        if OperationDescription(domain, node.op_type, version) not in _CONVERTER_REGISTRY:
            missing.add(f"{shown} (opset {version})")
        elif without_tv and node.op_type in ("NonMaxSuppression", "RoiAlign"):
            missing.add(f"{shown} (needs torchvision, not usable on this worker)")
    return sorted(missing)


def load_torch_form(
    spec: ModelSpec,
    *,
    check_rows: Array | None = None,
    onnx_predict: Any = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> TorchForm:
    """Load or build the differentiable form of ``spec``.

    Parameters
    ----------
    check_rows:
        Real model inputs (float32) to compare a converted ONNX model on; required for ONNX.
    onnx_predict:
        ``rows -> outputs`` through ONNX Runtime (the reference for the check).

    Raises
    ------
    EngineError
        (permanent) for a format without a differentiable form, an operator
        onnx2torch cannot convert (named), or a conversion whose outputs
        differ from ONNX Runtime's.
    """
    import torch

    if spec.format == "torchscript":
        from workers.engine.formats.torchscript import check_torchscript_archive

        check_torchscript_archive(spec.path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(spec.path, map_location="cpu")  # type: ignore[no-untyped-call]
        return TorchForm(module.eval(), "torchscript")
    if spec.format == "torch_export":
        from workers.engine.formats.torch_export import load_torch_export

        return TorchForm(load_torch_export(spec.path).module, "torch_export")
    if spec.format != "onnx":
        raise EngineError(
            f"gradient methods need a differentiable PyTorch form of the model; a {spec.format} model has none "
            "(upload TorchScript, torch.export or ONNX, or choose a perturbation method)"
        )
    import onnx

    model = onnx.load(spec.path)
    missing = onnx2torch_unsupported(model)
    if missing:
        raise EngineError(
            "this ONNX model cannot be converted to PyTorch for gradient methods: onnx2torch has no converter for "
            f"{', '.join(missing)}; choose a perturbation method (kernel_shap, occlusion, ...) instead"
        )
    if check_rows is None or onnx_predict is None or len(check_rows) == 0:
        raise EngineError("a converted ONNX model must be checked against ONNX Runtime on real rows before use")
    o2t = _onnx2torch()
    try:
        module = o2t.convert(model).eval()
    except Exception as exc:  # onnx2torch raises NotImplementedError, ValueError, RuntimeError...
        raise InvalidArtifact(f"onnx2torch could not convert the model: {exc}") from exc
    rows = np.ascontiguousarray(check_rows, dtype=np.float32)
    with torch.no_grad():
        ours = _first_tensor(module(torch.from_numpy(rows))).detach().numpy().astype(np.float64)
    ref = np.asarray(onnx_predict(rows), dtype=np.float64).reshape(ours.shape)
    diff = np.abs(ours - ref)
    rel = float((diff / np.maximum(np.abs(ref), 1e-12)).max())
    check = {"rows": len(rows), "max_abs_diff": float(diff.max()), "max_rel_diff": rel, "rtol": rtol, "atol": atol}
    if not np.allclose(ours, ref, rtol=rtol, atol=atol):
        raise EngineError(
            f"the PyTorch conversion of this ONNX model does not match ONNX Runtime on {len(rows)} real rows "
            f"(largest difference {diff.max():.3g}); gradient methods would explain a different model, "
            "choose a perturbation method"
        )
    return TorchForm(module, "onnx2torch", check)


def _first_tensor(out: Any) -> Any:
    if isinstance(out, list | tuple):
        return out[0]
    if isinstance(out, dict):
        return next(iter(out.values()))
    return out
