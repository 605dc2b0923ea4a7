"""Frozen values that cross the boundary between the service and the engine.

No ORM rows, requests or settings ever reach the engine: the service turns
its rows into these dataclasses and stores what comes back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from workers.engine.arrays import Array

Dim = int | str | None
Task = Literal["classification", "regression"]

#: Called after each batch with (rows done, rows in total). It may raise
#: :class:`workers.engine.errors.Cancelled` to stop the pipeline.
ProgressCallback = Callable[[int, int], None]


class Runner(Protocol):
    """What the input feed needs of a loaded model: its input specs and one call.

    Every :class:`workers.engine.inference.base.Backend` is a runner; the feed
    and the processing steps depend on this protocol, not on the backends, so
    the data layer sits beside inference rather than above it.
    """

    @property
    def input_specs(self) -> tuple[TensorSpec, ...]: ...

    def predict(self, inputs: dict[str, Array]) -> dict[str, Array]: ...


@dataclass(frozen=True)
class TensorSpec:
    """One named model input or output: element type and shape (symbolic dims as str/None)."""

    name: str
    dtype: str
    shape: tuple[Dim, ...] | None


@dataclass(frozen=True)
class ModelInfo:
    """What registration learns from a model file."""

    format: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    opset: dict[str, int] = field(default_factory=dict)
    ir_version: int | None = None
    producer_name: str = ""
    producer_version: str = ""
    #: Class labels declared by an ONNX-ML classifier node, in probability-column order.
    class_labels: tuple[int | str, ...] | None = None
    #: Feature column names the exporter wrote into the file (ONNX ``metadata_props``
    #: ``feature_names``: a JSON list or comma-separated), in model input order.
    feature_names: tuple[str, ...] | None = None
    #: Whether ``inputs``/``outputs`` are the model's full signature. False for
    #: formats that record none (TorchScript): the tuples are then empty and
    #: ``notes`` says what is known.
    signature_known: bool = True
    #: Plain-language remarks about the file for the uploader, e.g. the
    #: TorchScript ``forward`` schema.
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    #: One of "int64", "float64", "bool", "string".
    dtype: str
    missing: int


@dataclass(frozen=True)
class DatasetInfo:
    """What registration learns from a data set file, read as a stream."""

    format: str
    rows: int
    columns: tuple[ColumnInfo, ...]
    #: Format-specific facts, JSON-ready: for "imagefolder", ``classes``
    #: (label -> image count), ``top_level_folder`` and ``ignored_entries``.
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelSpec:
    """A model file on local disk, identified by its SHA-256.

    ``format`` is one of "onnx", "torchscript", "torch_export", "openvino",
    "tflite". OpenVINO IR keeps its weights beside the graph: ``path`` is the
    ``.xml`` and ``weights_path`` the ``.bin``.
    """

    path: str
    format: str
    sha256: str
    weights_path: str | None = None


@dataclass(frozen=True)
class DatasetRef:
    """A data set file on local disk with the schema recorded at registration."""

    path: str
    format: str
    sha256: str
    columns: tuple[str, ...]
    label_column: str | None = None
    rows: int | None = None
