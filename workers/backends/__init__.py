"""Inference backends: one class per runtime, looked up by name in the registry."""

from __future__ import annotations

from workers.backends.base import Backend
from workers.backends.registry import backend_names, get_backend_class, probe_backends

__all__ = ["Backend", "backend_names", "get_backend_class", "probe_backends"]
