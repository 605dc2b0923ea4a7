"""Jobs that read data between inference calls open ONNX Runtime with its thread pools not spinning."""

from __future__ import annotations

import pytest

from workers.engine.errors import EngineError
from workers.engine.evaluate import evaluate
from workers.engine.evaluate.setup import feed_backend_options
from workers.engine.inference.registry import get_backend_class
from workers.engine.types import DatasetRef, ModelSpec


def _spinning(runner) -> tuple[str, str]:
    options = runner._session.get_session_options()
    return tuple(options.get_session_config_entry(f"session.{p}.allow_spinning") for p in ("intra_op", "inter_op"))


def test_the_option_reaches_the_session_and_is_checked(bc_spec: ModelSpec) -> None:
    backend = get_backend_class("onnxruntime")
    with backend(bc_spec, options={"allow_spinning": False}) as runner:
        assert _spinning(runner) == ("0", "0")
    with backend(bc_spec, options={"allow_spinning": True}) as runner:
        assert _spinning(runner) == ("1", "1")
    with (
        pytest.raises(EngineError, match="allow_spinning must be true or false"),
        backend(bc_spec, options={"allow_spinning": "no"}),
    ):
        pass


def test_evaluation_turns_spinning_off_for_onnxruntime_only(bc_spec: ModelSpec, bc_test_ref: DatasetRef) -> None:
    assert feed_backend_options("onnxruntime", None) == {"allow_spinning": False}
    assert feed_backend_options("onnxruntime", {"precision": "fp32"}) == {"allow_spinning": False, "precision": "fp32"}
    assert feed_backend_options("onnxruntime", {"allow_spinning": True}) == {"allow_spinning": True}
    assert feed_backend_options("openvino", None) is None
    # the same metrics either way
    quiet = evaluate(bc_spec, bc_test_ref, task="classification").to_dict()
    spinning = evaluate(bc_spec, bc_test_ref, task="classification", backend_options={"allow_spinning": True}).to_dict()
    for result in (quiet, spinning):
        result.pop("duration_s")
    assert quiet == spinning
