"""Inference backends: one class per runtime, looked up by name in the registry."""

from __future__ import annotations

from workers.engine.inference.base import Backend
from workers.engine.inference.registry import backend_names, get_backend_class, probe_backends

__all__ = ["Backend", "backend_names", "get_backend_class", "probe_backends"]
