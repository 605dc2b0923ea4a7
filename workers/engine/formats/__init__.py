"""Model file formats the engine can inspect.

Each format module validates a file and returns a :class:`ModelInfo`; the
service calls :func:`inspect_model` and never a format module directly.
Format modules import their runtime library only when called, so listing
the formats needs none of them.
"""

from __future__ import annotations

from workers.engine.errors import InvalidArtifact
from workers.engine.types import ModelInfo

__all__ = ["MODEL_FORMATS", "REFUSED_FORMATS", "inspect_model"]

#: Formats :func:`inspect_model` accepts.
MODEL_FORMATS: tuple[str, ...] = ("onnx", "torchscript", "torch_export", "openvino", "tflite")
#: Formats it recognises but refuses, with the reason in the error (none at present).
REFUSED_FORMATS: tuple[str, ...] = ()


def inspect_model(path: str, fmt: str, *, weights_path: str | None = None) -> ModelInfo:
    """Validate a model file of the declared format and describe it.

    Parameters
    ----------
    path:
        Local path of the model file (the ``.xml`` for OpenVINO IR, the
        ``.pt2`` from ``torch.export.save`` for ``torch_export``).
    fmt:
        Declared format, one of :data:`MODEL_FORMATS`.
    weights_path:
        OpenVINO IR only: the ``.bin`` file holding the weights.

    Returns
    -------
    ModelInfo
        The model's signature and metadata.

    Raises
    ------
    InvalidArtifact
        For an unsupported or refused format or a file that is not a usable model.
    """
    if weights_path is not None and fmt != "openvino":
        raise InvalidArtifact(f"a separate weights file is only used with OpenVINO IR, not {fmt}")
    # Each branch imports its module here so a worker without one runtime
    # can still serve the other formats.
    if fmt == "onnx":
        from workers.engine.formats.onnx import inspect_onnx

        return inspect_onnx(path)
    if fmt == "torchscript":
        from workers.engine.formats.torchscript import inspect_torchscript

        return inspect_torchscript(path)
    if fmt == "torch_export":
        from workers.engine.formats.torch_export import inspect_torch_export

        return inspect_torch_export(path)
    if fmt == "openvino":
        from workers.engine.formats.openvino_ir import inspect_openvino

        return inspect_openvino(path, weights_path)
    if fmt == "tflite":
        from workers.engine.formats.tflite import inspect_tflite

        return inspect_tflite(path)
    raise InvalidArtifact(f"unsupported model format {fmt!r}; supported: {', '.join(MODEL_FORMATS)}")
