"""The processing spec: how raw data becomes model input and model output becomes predictions.

A spec is declared once with a model version, as JSON, and stored in its
canonical form (:meth:`ProcessingSpec.to_dict`, every default written out) so
that every backend and every later job applies exactly the same steps, even
after a default here changes. :func:`parse_processing_spec` validates
strictly: an unknown key, a wrong type or an out-of-range value raises
:class:`InvalidSpec` whose message starts with the JSON path at fault, e.g.
``input.mean: expected 3 numbers for 3 channels, got 2``.

Shape
-----
``{"version": 1, "input": <input> | null, "output": <output> | null}``

``input`` is one of three kinds.

Tabular -- columns in order, standard scaling, one-hot categories::

    {"kind": "tabular", "feature_columns": ["age", "income", "city"],
     "scaling": {"age": {"mean": 41.2, "std": 12.0}, "income": {"mean": 51000, "std": 23000}},
     "categories": {"city": ["Lyon", "Paris"]}, "unknown_category": "error",
     "dtype": "float32", "input_name": "input"}

``scaling`` may instead be ``{"kind": "standard", "mean": [...], "std": [...]}``
with one number per numeric feature column (those without categories), in
``feature_columns`` order, as a fitted scikit-learn ``StandardScaler`` holds
them (``mean_``, ``scale_``). A categorical column becomes one 0/1 column per
category, in the listed order, at its place among the feature columns; values
are compared as text: a CSV cell as written, a number from a typed column
(Parquet) without a trailing ``.0`` (``1.0`` is ``"1"``). Numbers listed as
categories become text the same way.
``unknown_category``: ``"error"`` (default) or ``"ignore"`` (all zeros, as
scikit-learn's ``OneHotEncoder(handle_unknown="ignore")``).

Image -- decode, color, resize, crop, scale, normalise, layout::

    {"kind": "image", "color": "rgb", "resize": 256, "resize_mode": "shorter_side",
     "interpolation": "bilinear", "center_crop": 224, "scale": 0.00392156862745098,
     "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
     "layout": "nchw", "dtype": "float32", "input_name": "pixel_values"}

``resize``: an integer (with ``resize_mode`` ``"shorter_side"``, the default
for an integer, as torchvision's ``Resize(256)``) or ``[height, width]``
(``"exact"``); ``center_crop``: an integer or ``[height, width]``. ``mean``
and ``std`` have one number per output channel, in output channel order (so
B, G, R for ``"bgr"``). Pixels become ``(pixel * scale - mean) / std``;
``scale`` defaults to 1/255 (torchvision's ``ToTensor``) and must be 1 with
no normalisation for ``"dtype": "uint8"``.

Text -- a ``tokenizer.json`` uploaded with the model::

    {"kind": "text", "text_column": "review", "max_length": 128, "padding": "max_length",
     "truncation": true, "add_special_tokens": true, "pad_token": null, "dtype": "int64",
     "input_names": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                     "token_type_ids": null}}

``output`` turns the model's raw output into scores and predictions::

    {"output_name": "logits", "activation": "softmax", "top_k": 5,
     "labels": ["cat", "dog"], "threshold": null, "detection": null}

``labels`` is a list (class index = position) or an object ``{"0": "cat",
"7": "dog"}``. ``threshold`` (binary models only) makes the positive class the
prediction when its score is ``>= threshold``. ``detection`` replaces
classification::

    {"boxes_output": "boxes", "scores_output": "scores", "classes_output": null,
     "format": "cxcywh", "score_threshold": 0.05, "iou_threshold": 0.5,
     "max_detections": 100, "class_agnostic": false}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workers.engine.processing._input_spec import ImageInput, InputSpec, TabularInput, TextInput, parse_input
from workers.engine.processing._json import InvalidSpec, fail, read_int, read_object
from workers.engine.processing._output_spec import DetectionSpec, OutputSpec, parse_output

__all__ = [
    "SPEC_VERSION",
    "DetectionSpec",
    "ImageInput",
    "InputSpec",
    "InvalidSpec",
    "OutputSpec",
    "ProcessingSpec",
    "TabularInput",
    "TextInput",
    "parse_processing_spec",
]

SPEC_VERSION = 1


@dataclass(frozen=True)
class ProcessingSpec:
    """Pre- and post-processing declared with a model version.

    Parameters
    ----------
    input:
        How to build the model's input from a data set, or ``None`` to feed
        the feature columns as they are.
    output:
        How to read the model's output, or ``None`` to take it as it is.
    version:
        Spec format version; only ``1`` exists.
    """

    input: InputSpec | None = None
    output: OutputSpec | None = None
    version: int = SPEC_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form, every default written out; :func:`parse_processing_spec` reads it back."""
        return {
            "version": self.version,
            "input": self.input.to_dict() if self.input is not None else None,
            "output": self.output.to_dict() if self.output is not None else None,
        }


def parse_processing_spec(data: Any) -> ProcessingSpec:
    """Validate a processing spec as decoded from JSON and return it as dataclasses.

    Raises
    ------
    InvalidSpec
        (permanent) naming the JSON path of the first problem found.
    """
    top = read_object(data, "", ("version", "input", "output"))
    version = read_int(top.get("version", SPEC_VERSION), "version")
    if version != SPEC_VERSION:
        raise fail("version", f"unsupported spec version {version}; this worker reads version {SPEC_VERSION}")
    raw_input, raw_output = top.get("input"), top.get("output")
    if raw_input is None and raw_output is None:
        raise fail("", "declares neither input nor output processing")
    spec_input = parse_input(raw_input, "input") if raw_input is not None else None
    output = parse_output(raw_output, "output") if raw_output is not None else None
    return ProcessingSpec(input=spec_input, output=output, version=version)
