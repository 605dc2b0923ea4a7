"""Inspection of TorchScript archives (torch.export programs: :mod:`workers.engine.formats.torch_export`).

What is and is not unpickled
----------------------------
A TorchScript archive (``torch.jit.save``) and a checkpoint (``torch.save``)
are both ZIP files holding a ``data.pkl``. Python's pickle can run arbitrary
code, so neither this module nor the backends ever call ``torch.load``.

* ``torch.jit.load`` reads ``data.pkl``/``constants.pkl`` with TorchScript's
  own C++ unpickler, which rebuilds only tensors, containers, primitive values
  and TorchScript classes; it resolves no Python globals, so a crafted archive
  cannot call into Python. The model's ``code/`` is TorchScript, compiled and
  run by the TorchScript interpreter, which can only call registered
  operators. (Untrusted models are still best run in an isolated worker.)
* A checkpoint is recognised by its ZIP entries alone (``data.pkl`` without
  ``constants.pkl`` or ``code/``) and refused before anything reads it.
* A torch.export program (``.pt2``) uploaded as TorchScript is named for what
  it is and refused here; the ``torch_export`` format loads it without
  ``torch.export.load``, which unpickles and evaluates parts of the archive
  (see :mod:`workers.engine.formats.torch_export`).
"""

from __future__ import annotations

import os
import warnings
import zipfile

from workers.engine.errors import InvalidArtifact
from workers.engine.types import ModelInfo

__all__ = [
    "CHECKPOINT_MESSAGE",
    "TORCH_EXPORT_AS_TORCHSCRIPT",
    "check_torchscript_archive",
    "inspect_torchscript",
]

CHECKPOINT_MESSAGE = (
    "this is a pickled PyTorch checkpoint, not TorchScript: export it with torch.jit.script/trace or torch.export"
)
TORCH_EXPORT_AS_TORCHSCRIPT = (
    "this is a torch.export program, not TorchScript: upload it with the torch_export format (a .pt2 file)"
)

_SNIFF = (
    (b"\x89PNG\r\n\x1a\n", "the file is a PNG image"),
    (b"\xff\xd8\xff", "the file is a JPEG image"),
    (b"\x1f\x8b", "the file is gzip-compressed"),
    (b"\x89HDF", "the file is an HDF5 file (a Keras .h5 model?)"),
    (b"<?xml", "the file is XML (an OpenVINO IR .xml?)"),
)
# The legacy (pre-1.6) torch.save format is a bare pickle stream: protocol 2+ opcode.
_PICKLE_HEADS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def check_torchscript_archive(path: str) -> None:
    """Refuse anything but a TorchScript archive, by its bytes and ZIP entries only.

    Nothing is unpickled or loaded: the ZIP central directory is all that is read.

    Raises
    ------
    InvalidArtifact
        For an empty file, a pickled checkpoint (zip or legacy), a
        torch.export program, another kind of file or a truncated archive.
    """
    size = os.path.getsize(path)
    if size == 0:
        raise InvalidArtifact("the file is empty")
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.startswith(_PICKLE_HEADS):
        raise InvalidArtifact(CHECKPOINT_MESSAGE)
    if not head.startswith(b"PK\x03\x04"):
        raise InvalidArtifact(f"not a TorchScript model: {_what(head)}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidArtifact(f"the TorchScript archive is truncated or corrupt: {exc}") from exc
    # torch writes every entry under one top folder named after the file;
    # only what sits directly inside it decides the kind of archive.
    entries = {_relative(n) for n in names}
    if "archive_format" in entries or any(e.startswith("models/") and e.endswith(".json") for e in entries):
        raise InvalidArtifact(TORCH_EXPORT_AS_TORCHSCRIPT)
    if "data.pkl" not in entries:
        raise InvalidArtifact("not a TorchScript model: a ZIP archive without the data.pkl a PyTorch file has")
    if "constants.pkl" not in entries and not any(e.startswith("code/") for e in entries):
        raise InvalidArtifact(CHECKPOINT_MESSAGE)
    if "constants.pkl" not in entries or not any(e.startswith("code/") for e in entries):
        raise InvalidArtifact("the TorchScript archive is incomplete: it lacks constants.pkl or the code/ folder")


def inspect_torchscript(path: str) -> ModelInfo:
    """Validate a TorchScript archive and describe what it records.

    Parameters
    ----------
    path:
        Local path of the uploaded ``.pt`` file.

    Returns
    -------
    ModelInfo
        Empty ``inputs`` and ``outputs`` with ``signature_known=False``:
        TorchScript keeps no input shapes or element types. ``notes`` holds
        the ``forward`` schema (argument names and TorchScript types).

    Raises
    ------
    InvalidArtifact
        See :func:`check_torchscript_archive`; also when TorchScript cannot
        load the archive or it has no ``forward`` method.
    """
    check_torchscript_archive(path)
    import torch  # imported late: the web side can list formats without torch

    try:
        with warnings.catch_warnings():
            # "torch.jit.load is deprecated": TorchScript is still the one format torch loads without pickle.
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(path, map_location="cpu")  # type: ignore[no-untyped-call]  # unannotated in torch
    except (RuntimeError, ValueError, OSError) as exc:
        raise InvalidArtifact(f"PyTorch cannot load the TorchScript model: {_first_line(exc, path)}") from exc
    try:
        schema = module.forward.schema
    except (AttributeError, RuntimeError) as exc:
        raise InvalidArtifact("the TorchScript model has no forward() method to run") from exc
    return ModelInfo(
        format="torchscript",
        inputs=(),
        outputs=(),
        producer_name="torch.jit",
        producer_version=_archive_version(path),
        signature_known=False,
        notes=(
            f"TorchScript records no input shapes or element types; forward: {forward_schema(schema)}",
            "inputs are given by the forward() argument names; their type is assumed to be float32",
        ),
    )


def forward_schema(schema: object) -> str:
    """``forward(Tensor input) -> Tensor`` from a TorchScript ``FunctionSchema``, without ``self``."""
    args = [a for a in schema.arguments if a.name != "self"]  # type: ignore[attr-defined]
    returns = ", ".join(str(r.type) for r in schema.returns)  # type: ignore[attr-defined]
    return f"forward({', '.join(f'{a.type} {a.name}' for a in args)}) -> {returns or 'None'}"


def _relative(name: str) -> str:
    parts = name.split("/", 1)
    return parts[1] if len(parts) == 2 else parts[0]


def _archive_version(path: str) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if _relative(name) in ("version", ".data/version"):
                    return f"archive v{archive.read(name).decode('ascii', 'replace').strip()}"
    except (zipfile.BadZipFile, OSError, KeyError):
        pass
    return ""


def _what(head: bytes) -> str:
    for magic, what in _SNIFF:
        if head.startswith(magic):
            return what
    if head[4:8] == b"TFL3":
        return "the file is a TFLite model"
    if len(head) >= 2 and head[0] == 0x08 and 1 <= head[1] <= 30:
        return "the file looks like an ONNX model"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "it is not a ZIP archive, as TorchScript files are"
    if text and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        return f"the file is text (starts with {head[:24]!r})"
    return "it is not a ZIP archive, as TorchScript files are"


def _first_line(exc: BaseException, path: str) -> str:
    text = str(exc).strip().replace(path, "<model>")
    line = text.splitlines()[0] if text else type(exc).__name__
    # PyTorch appends a paragraph of generic advice about corrupt checkpoints.
    return line.split(". This is an internal miniz error")[0]
