from __future__ import annotations

import pytest

from workers.backends.registry import backend_names, get_backend_class
from workers.engine.errors import BackendUnavailable, EngineError


def test_every_registered_backend_resolves_or_says_why():
    for name in backend_names():
        try:
            cls = get_backend_class(name)
        except BackendUnavailable as exc:
            assert exc.reason and name in exc.message
        else:
            assert cls.name == name


def test_unknown_backend_names_the_known_ones():
    with pytest.raises(EngineError) as info:
        get_backend_class("no-such-engine")
    assert "onnxruntime" in info.value.message
