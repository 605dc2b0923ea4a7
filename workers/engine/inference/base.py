"""The interface every inference backend implements.

A backend wraps one runtime (ONNX Runtime, OpenVINO, TensorRT, PyTorch,
LiteRT) behind the same small surface, so the evaluation pipeline never
imports a runtime itself::

    with get_backend_class("onnxruntime")(spec, device="cpu", options={"precision": "fp32"}) as backend:
        outputs = backend.predict({"input": batch})

Every backend accepts the ``precision`` option (``"fp32"``, ``"fp16"``,
``"int8"`` where its engine offers it; ``"fp32"`` when unset) besides its own
tuning options, and :meth:`Backend.describe` reports what actually ran: the
execution provider or device plugin and the precision it computed in.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from workers.engine.errors import EngineError
from workers.engine.types import ModelSpec, TensorSpec

if TYPE_CHECKING:
    from workers.engine.arrays import Array

__all__ = ["Backend"]


class Backend(abc.ABC):
    """A loaded model that maps named input arrays to named output arrays.

    Parameters
    ----------
    spec:
        The model file to run.
    device:
        Where to run it: ``"cpu"``, or a backend-specific accelerator name.
    options:
        Backend-specific tuning options; unknown keys are an error so a typo
        never goes unnoticed.

    Notes
    -----
    Subclasses set :attr:`name`, :attr:`pip_hint`, :attr:`formats` and
    :attr:`option_names`, implement :meth:`probe`, :meth:`load`,
    :meth:`predict`, :meth:`unload` and :meth:`describe`, and fill
    ``_inputs``/``_outputs`` in :meth:`load`. :meth:`predict` is the hot path:
    it should hand the arrays to the runtime without copying and do any
    per-model work (names, ports, buffers) once, in :meth:`load`.
    Using the backend as a context manager loads it on entry and unloads it
    on exit, also when the body raises.
    """

    #: Registry name, e.g. ``"onnxruntime"``.
    name: ClassVar[str] = ""
    #: How to install the runtime, quoted when it is missing.
    pip_hint: ClassVar[str] = ""
    #: Option keys :meth:`__init__` accepts.
    option_names: ClassVar[frozenset[str]] = frozenset()
    #: Model formats (``ModelSpec.format`` values) the backend loads.
    formats: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: ModelSpec, *, device: str = "cpu", options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        unknown = sorted(set(options) - self.option_names)
        if unknown:
            known = ", ".join(sorted(self.option_names)) or "none"
            raise EngineError(f"unknown {self.name} backend options: {', '.join(unknown)} (known: {known})")
        if self.formats and spec.format not in self.formats:
            raise EngineError(
                f"the {self.name} backend cannot run {spec.format!r} models; it loads: {', '.join(self.formats)}"
            )
        self.spec = spec
        self.device = device
        self.options = options
        self._inputs: tuple[TensorSpec, ...] | None = None
        self._outputs: tuple[TensorSpec, ...] | None = None
        #: For an output that comes as one {class: score} map per row (ONNX-ML
        #: ZipMap), the class of each column of the array :meth:`predict`
        #: returns for it, filled by the first batch.
        self.output_keys: dict[str, tuple[Any, ...]] = {}

    @classmethod
    def supports(cls, spec: ModelSpec) -> bool:
        """Return whether this backend can run models of ``spec.format``."""
        return spec.format in cls.formats

    @classmethod
    def probe(cls) -> dict[str, Any]:
        """Describe the runtime on this worker.

        Returns
        -------
        dict
            ``{"version": str, "devices": [str, ...], "precisions": [str, ...],
            "formats": [str, ...]}``: the devices it can run on here (``"cpu"``,
            ``"cuda"``, ``"gpu"``, ``"auto"``) and the precisions over all of them.

        Raises
        ------
        BackendUnavailable
            With the precise reason (``"no CUDA device"``, ``"tensorrt is not
            installed"``) when the backend cannot run anything on this worker.

        Notes
        -----
        This default suits a pure-Python test double; real backends override it.
        """
        return {"version": None, "devices": ["cpu"], "precisions": ["fp32"], "formats": list(cls.formats)}

    @abc.abstractmethod
    def load(self) -> None:
        """Load the model; raise :class:`InvalidArtifact` if the runtime cannot use it."""

    @abc.abstractmethod
    def predict(self, inputs: dict[str, Array]) -> dict[str, Array]:
        """Run one batch: input name -> array in, output name -> array out."""

    def predict_batches(self, inputs: dict[str, Array], batch_size: int) -> dict[str, Array]:
        """Run many rows in batches of ``batch_size``; each output concatenated in row order.

        Equal to calling :meth:`predict` on every slice of ``batch_size`` rows
        and concatenating the outputs, which is what this default does. A
        backend may override it to keep the per-batch work (a dict and a call
        per batch, a list of outputs to concatenate) out of Python where its
        runtime allows: that work, not the runtime, is what batch 1 costs.
        """
        import numpy as np

        rows = len(next(iter(inputs.values())))
        parts = [
            self.predict({name: values[lo : lo + batch_size] for name, values in inputs.items()})
            for lo in range(0, rows, batch_size)
        ]
        if len(parts) == 1:
            return parts[0]
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    @abc.abstractmethod
    def unload(self) -> None:
        """Free the model; calling it twice or before :meth:`load` is harmless."""

    def runtime_latency_ns(self) -> int | None:
        """The runtime's own timing of the last :meth:`predict`, where it keeps one (OpenVINO does).

        Profiles report it beside the call latency: it is what the runtime's own
        benchmark tools print, without the Python binding around it.
        """
        return None

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """Return what ran the model, for the result record.

        Keys: ``backend``, ``version`` (library version), ``provider``,
        ``device``, ``precision``.
        """

    @property
    def loaded(self) -> bool:
        """Whether :meth:`load` has run and :meth:`unload` has not."""
        return self._inputs is not None

    @property
    def input_specs(self) -> tuple[TensorSpec, ...]:
        """The model's inputs as the runtime sees them (only after :meth:`load`)."""
        if self._inputs is None:
            raise EngineError(f"{self.name} backend: input_specs read before load()", permanent=False)
        return self._inputs

    @property
    def output_specs(self) -> tuple[TensorSpec, ...]:
        """The model's outputs as the runtime sees them (only after :meth:`load`)."""
        if self._outputs is None:
            raise EngineError(f"{self.name} backend: output_specs read before load()", permanent=False)
        return self._outputs

    def __enter__(self) -> Backend:
        self.load()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.unload()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.path!r} device={self.device!r} loaded={self.loaded}>"
