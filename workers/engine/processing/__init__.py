"""Pre- and post-processing declared with a model version and applied the same way by every job.

:mod:`~workers.engine.processing.spec` defines the JSON spec and its
validation; :mod:`~workers.engine.processing.tabular`,
:mod:`~workers.engine.processing.image` and
:mod:`~workers.engine.processing.text` build model inputs;
:mod:`~workers.engine.processing.post` reads model outputs.

The image and text modules import Pillow and tokenizers, so they are loaded
on first use of their names here: a web container can validate specs
without either library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from workers.engine.processing.schema import PROCESSING_SPEC_SCHEMA
from workers.engine.processing.spec import (
    SPEC_VERSION,
    DetectionSpec,
    ImageInput,
    InputSpec,
    InvalidSpec,
    OutputSpec,
    ProcessingSpec,
    TabularInput,
    TextInput,
    parse_processing_spec,
)

if TYPE_CHECKING:
    from workers.engine.processing.image import decode_image, prepare_images
    from workers.engine.processing.post import Detections, PostResult, TopK, apply_output
    from workers.engine.processing.tabular import prepare_tabular
    from workers.engine.processing.text import load_tokenizer, prepare_text

__all__ = [
    "PROCESSING_SPEC_SCHEMA",
    "SPEC_VERSION",
    "DetectionSpec",
    "Detections",
    "ImageInput",
    "InputSpec",
    "InvalidSpec",
    "OutputSpec",
    "PostResult",
    "ProcessingSpec",
    "TabularInput",
    "TextInput",
    "TopK",
    "apply_output",
    "decode_image",
    "load_tokenizer",
    "parse_processing_spec",
    "prepare_images",
    "prepare_tabular",
    "prepare_text",
]

_LAZY: dict[str, str] = {
    "decode_image": "image",
    "prepare_images": "image",
    "Detections": "post",
    "PostResult": "post",
    "TopK": "post",
    "apply_output": "post",
    "prepare_tabular": "tabular",
    "load_tokenizer": "text",
    "prepare_text": "text",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
