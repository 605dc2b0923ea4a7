"""The interface every inference backend implements.

A backend wraps one runtime (ONNX Runtime today; OpenVINO, TensorRT or
PyTorch later) behind the same small surface, so the evaluation pipeline
never imports a runtime itself::

    with get_backend_class("onnxruntime")(spec, device="cpu") as backend:
        outputs = backend.predict({"input": batch})
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from workers.engine.errors import EngineError
from workers.engine.types import ModelSpec, TensorSpec

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
    Subclasses set :attr:`name` and :attr:`pip_hint`, implement
    :meth:`supports`, :meth:`load`, :meth:`predict`, :meth:`unload` and
    :meth:`describe`, and fill ``_inputs``/``_outputs`` in :meth:`load`.
    Using the backend as a context manager loads it on entry and unloads it
    on exit, also when the body raises.
    """

    #: Registry name, e.g. ``"onnxruntime"``.
    name: ClassVar[str] = ""
    #: How to install the runtime, quoted when it is missing.
    pip_hint: ClassVar[str] = ""
    #: Option keys :meth:`__init__` accepts.
    option_names: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, spec: ModelSpec, *, device: str = "cpu", options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        unknown = sorted(set(options) - self.option_names)
        if unknown:
            known = ", ".join(sorted(self.option_names)) or "none"
            raise EngineError(f"unknown {self.name} backend options: {', '.join(unknown)} (known: {known})")
        self.spec = spec
        self.device = device
        self.options = options
        self._inputs: tuple[TensorSpec, ...] | None = None
        self._outputs: tuple[TensorSpec, ...] | None = None

    @classmethod
    @abc.abstractmethod
    def supports(cls, spec: ModelSpec) -> bool:
        """Return whether this backend can run models of ``spec.format``."""

    @classmethod
    def probe(cls) -> dict[str, Any]:
        """Describe the runtime on this worker: ``{"version": str, "devices": [str, ...]}``."""
        return {"version": None, "devices": ["cpu"]}

    @abc.abstractmethod
    def load(self) -> None:
        """Load the model; raise :class:`InvalidArtifact` if the runtime cannot use it."""

    @abc.abstractmethod
    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch: input name -> array in, output name -> array out."""

    @abc.abstractmethod
    def unload(self) -> None:
        """Free the model; calling it twice or before :meth:`load` is harmless."""

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
