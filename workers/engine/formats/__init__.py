"""Model file formats the engine can inspect.

Each format module validates a file and returns a :class:`ModelInfo`; the
service calls :func:`inspect_model` and never a format module directly.
"""

from __future__ import annotations

from workers.engine.errors import InvalidArtifact
from workers.engine.types import ModelInfo

__all__ = ["MODEL_FORMATS", "inspect_model"]

#: Formats :func:`inspect_model` accepts.
MODEL_FORMATS: tuple[str, ...] = ("onnx",)


def inspect_model(path: str, fmt: str) -> ModelInfo:
    """Validate a model file of the declared format and describe it.

    Parameters
    ----------
    path:
        Local path of the model file.
    fmt:
        Declared format, one of :data:`MODEL_FORMATS`.

    Returns
    -------
    ModelInfo
        The model's signature and metadata.

    Raises
    ------
    InvalidArtifact
        For an unsupported format or a file that is not a usable model.
    """
    if fmt == "onnx":
        # Imported here so a worker without onnx can still serve other formats.
        from workers.engine.formats.onnx import inspect_onnx

        return inspect_onnx(path)
    raise InvalidArtifact(f"unsupported model format {fmt!r}; supported: {', '.join(MODEL_FORMATS)}")
