from __future__ import annotations

import pytest

from workers.catalog import BACKEND_NAMES
from workers.engine.errors import BackendUnavailable, EngineError
from workers.engine.inference import registry
from workers.engine.inference.registry import backend_names, get_backend_class


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


def test_catalog_lists_the_registered_backends():
    # The web side validates backend names against the import-light catalog.
    assert list(BACKEND_NAMES) == backend_names()


def test_catalog_lists_the_quantization_variants():
    from workers.catalog import QUANTIZE_VARIANTS
    from workers.engine.quantize import VARIANTS

    assert QUANTIZE_VARIANTS == VARIANTS


def test_registry_maps_names_to_import_strings_without_importing_runtimes():
    # Listing names must not import any runtime: the classes are loaded on first use.
    import subprocess
    import sys

    code = (
        "import sys; from workers.engine.inference import registry; registry.backend_names(); "
        "heavy = [m for m in ('onnxruntime', 'openvino', 'torch', 'tensorrt', 'ai_edge_litert') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    for target, hint in registry.BACKENDS.values():
        assert target.startswith("workers.engine.inference.") and ":" in target and hint
