"""parse_processing_spec: each error names its JSON path; the canonical form round-trips; the schema agrees."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from workers.engine.errors import EngineError
from workers.engine.processing import (
    PROCESSING_SPEC_SCHEMA,
    ImageInput,
    InvalidSpec,
    OutputSpec,
    ProcessingSpec,
    TabularInput,
    TextInput,
    parse_processing_spec,
)

TABULAR: dict[str, Any] = {
    "input": {
        "kind": "tabular",
        "feature_columns": ["age", "income", "city"],
        "scaling": {"age": {"mean": 41.2, "std": 12.0}, "income": {"mean": 51000, "std": 23000}},
        "categories": {"city": ["Lyon", "Paris"]},
        "unknown_category": "ignore",
        "dtype": "float32",
        "input_name": "input",
    },
    "output": {"activation": "sigmoid", "labels": ["no", "yes"], "threshold": 0.3},
}
IMAGE: dict[str, Any] = {
    "version": 1,
    "input": {
        "kind": "image",
        "resize": 256,
        "center_crop": 224,
        "color": "rgb",
        "scale": 1 / 255,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "layout": "nchw",
        "dtype": "float32",
        "interpolation": "bilinear",
    },
    "output": {"activation": "softmax", "top_k": 5, "labels": {"0": "cat", "1": "dog", "2": "fox"}},
}
TEXT_DETECTION: dict[str, Any] = {
    "input": {
        "kind": "text",
        "text_column": "caption",
        "max_length": 64,
        "padding": "longest",
        "input_names": {"input_ids": "ids", "attention_mask": "mask", "token_type_ids": "types"},
    },
    "output": {
        "activation": "sigmoid",
        "labels": {"1": "person", "3": "car"},
        "detection": {
            "boxes_output": "boxes",
            "scores_output": "scores",
            "classes_output": "classes",
            "format": "cxcywh",
            "score_threshold": 0.25,
            "iou_threshold": 0.45,
            "max_detections": 50,
        },
    },
}
EXAMPLES = {"tabular": TABULAR, "image": IMAGE, "text+detection": TEXT_DETECTION}


# ----------------------------------------------------------------- good specs


@pytest.mark.parametrize("doc", EXAMPLES.values(), ids=EXAMPLES.keys())
def test_examples_parse_and_round_trip(doc: dict[str, Any]) -> None:
    spec = parse_processing_spec(doc)
    canonical = spec.to_dict()
    assert json.loads(json.dumps(canonical)) == canonical
    assert parse_processing_spec(canonical) == spec
    assert parse_processing_spec(json.loads(json.dumps(canonical))).to_dict() == canonical
    jsonschema.validate(doc, PROCESSING_SPEC_SCHEMA)
    jsonschema.validate(canonical, PROCESSING_SPEC_SCHEMA)


def test_parsed_values() -> None:
    tab = parse_processing_spec(TABULAR).input
    assert isinstance(tab, TabularInput)
    assert tab.scaling == (("age", 41.2, 12.0), ("income", 51000.0, 23000.0))
    assert tab.categories == (("city", ("Lyon", "Paris")),)
    assert tab.width == 4

    image = parse_processing_spec(IMAGE)
    assert isinstance(image.input, ImageInput)
    assert image.input.resize == 256 and image.input.resize_mode == "shorter_side"
    assert image.input.center_crop == (224, 224)
    assert image.output is not None and image.output.labels == ((0, "cat"), (1, "dog"), (2, "fox"))
    assert image.to_dict()["output"]["labels"] == ["cat", "dog", "fox"]  # dense maps become lists

    text = parse_processing_spec(TEXT_DETECTION)
    assert isinstance(text.input, TextInput)
    assert (text.input.input_ids_name, text.input.attention_mask_name, text.input.token_type_ids_name) == (
        "ids",
        "mask",
        "types",
    )
    assert text.output is not None and text.output.detection is not None
    assert text.to_dict()["output"]["labels"] == {"1": "person", "3": "car"}  # sparse maps stay objects


def test_defaults_are_written_out() -> None:
    spec = parse_processing_spec({"input": {"kind": "image"}, "output": {}})
    assert spec.to_dict() == {
        "version": 1,
        "input": {
            "kind": "image",
            "color": "rgb",
            "resize": None,
            "resize_mode": None,
            "interpolation": "bilinear",
            "center_crop": None,
            "scale": 1 / 255,
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
            "layout": "nchw",
            "dtype": "float32",
            "input_name": None,
        },
        "output": {
            "output_name": None,
            "activation": "none",
            "top_k": None,
            "labels": None,
            "threshold": None,
            "detection": None,
        },
    }
    text = parse_processing_spec({"input": {"kind": "text", "text_column": "t"}}).input
    assert text == TextInput(text_column="t")


def test_variants() -> None:
    gray = parse_processing_spec({"input": {"kind": "image", "color": "gray", "resize": [32, 48], "mean": [0.5]}})
    assert isinstance(gray.input, ImageInput)
    assert gray.input.resize == (32, 48) and gray.input.resize_mode == "exact" and gray.input.std == (1.0,)
    square = parse_processing_spec({"input": {"kind": "image", "resize": 64, "resize_mode": "exact"}}).input
    assert isinstance(square, ImageInput) and square.resize == (64, 64)
    raw = parse_processing_spec({"input": {"kind": "image", "dtype": "uint8", "layout": "nhwc"}}).input
    assert isinstance(raw, ImageInput) and raw.scale == 1.0
    listed = parse_processing_spec(
        {
            "input": {
                "kind": "tabular",
                "feature_columns": ["a", "c", "b"],
                "categories": {"c": [1, 2.0, 2.5, "x"]},
                "scaling": {"kind": "standard", "mean": [1, 2], "std": [3, 4]},
            }
        }
    ).input
    assert isinstance(listed, TabularInput)
    assert listed.categories == (("c", ("1", "2", "2.5", "x")),)  # compared as text, 2.0 is "2"
    assert listed.scaling == (("a", 1.0, 3.0), ("b", 2.0, 4.0))  # numeric columns in feature order
    # A column may be called "kind": its value is an object, not "standard".
    kind_col = parse_processing_spec(
        {"input": {"kind": "tabular", "feature_columns": ["kind"], "scaling": {"kind": {"mean": 0, "std": 2}}}}
    ).input
    assert isinstance(kind_col, TabularInput) and kind_col.scaling == (("kind", 0.0, 2.0),)
    assert parse_processing_spec({"output": {"activation": "none", "threshold": -2.5}}).output == OutputSpec(
        threshold=-2.5
    )


def test_invalid_spec_is_a_permanent_engine_error() -> None:
    with pytest.raises(EngineError) as err:
        parse_processing_spec({"input": {"kind": "image", "mean": [0.5, 0.5]}})
    assert isinstance(err.value, InvalidSpec) and err.value.permanent
    assert err.value.message == "input.mean: expected 3 numbers for 3 channels, got 2"


# ------------------------------------------------------------------ bad specs

TAB = {"kind": "tabular", "feature_columns": ["a", "b", "c"], "categories": {"c": ["x", "y"]}}
DET = {"boxes_output": "b", "scores_output": "s"}

BAD: list[tuple[Any, str]] = [
    ([1], "processing spec: expected an object, got a list of 1"),
    ({"foo": 1, "input": None}, "foo: unknown key (allowed here: version, input, output)"),
    ({"version": 2, "output": {}}, "version: unsupported spec version 2"),
    ({"version": "1", "output": {}}, "version: expected an integer, got '1'"),
    ({}, "processing spec: declares neither input nor output"),
    ({"input": "image"}, "input: expected an object, got 'image'"),
    ({"input": {}}, "input.kind: is required: one of 'tabular', 'image', 'text'"),
    ({"input": {"kind": "audio"}}, "input.kind: expected one of 'tabular', 'image', 'text', got 'audio'"),
    # tabular
    ({"input": {"kind": "tabular"}}, "input.feature_columns: is required"),
    ({"input": {**TAB, "colums": []}}, "input.colums: unknown key"),
    ({"input": {**TAB, "feature_columns": []}}, "input.feature_columns: expected at least 1 item, got 0"),
    ({"input": {**TAB, "feature_columns": "a"}}, "input.feature_columns: expected a list, got 'a'"),
    ({"input": {**TAB, "feature_columns": ["a", 3]}}, "input.feature_columns[1]: expected a string, got 3"),
    ({"input": {**TAB, "feature_columns": [" "]}}, "input.feature_columns[0]: must not be empty"),
    ({"input": {**TAB, "feature_columns": ["a", "b", "a"]}}, "input.feature_columns[2]: column 'a' is listed twice"),
    ({"input": {**TAB, "scaling": {"z": {"mean": 0, "std": 1}}}}, "input.scaling.z: is not one of the feature_columns"),
    ({"input": {**TAB, "scaling": {"a": {"mean": 0, "std": 0}}}}, "input.scaling.a.std: must be greater than 0, got 0"),
    ({"input": {**TAB, "scaling": {"a": {"std": 1}}}}, "input.scaling.a.mean: is required"),
    ({"input": {**TAB, "scaling": {"a": {"mean": 0, "std": 1, "min": 0}}}}, "input.scaling.a.min: unknown key"),
    ({"input": {**TAB, "scaling": {"a": {"mean": float("nan"), "std": 1}}}}, "input.scaling.a.mean: must be a finite"),
    ({"input": {**TAB, "scaling": {"a": {"mean": "0", "std": 1}}}}, "input.scaling.a.mean: expected a number, got '0'"),
    ({"input": {**TAB, "scaling": {"c": {"mean": 0, "std": 1}}}}, "input.scaling.c: a column with categories"),
    ({"input": {**TAB, "scaling": [1]}}, "input.scaling: expected an object, got a list of 1"),
    (
        {"input": {**TAB, "scaling": {"kind": "standard", "mean": [0, 1, 2], "std": [1, 1]}}},
        "input.scaling.mean: expected 2 numbers for 2 numeric feature columns, got 3",
    ),
    (
        {"input": {**TAB, "scaling": {"kind": "standard", "mean": [0, 1], "std": [1, -1]}}},
        "input.scaling.std[1]: must be greater than 0, got -1",
    ),
    ({"input": {**TAB, "scaling": {"kind": "minmax", "mean": [], "std": []}}}, "input.scaling.kind: expected one of"),
    ({"input": {**TAB, "categories": {"c": []}}}, "input.categories.c: expected at least 1 item, got 0"),
    ({"input": {**TAB, "categories": {"c": ["x", "x"]}}}, "input.categories.c[1]: category 'x' is listed twice"),
    ({"input": {**TAB, "categories": {"c": [1, "1"]}}}, "input.categories.c[1]: category '1' is listed twice"),
    ({"input": {**TAB, "categories": {"c": [True]}}}, "input.categories.c[0]: expected a number, got true"),
    ({"input": {**TAB, "categories": {"q": ["x"]}}}, "input.categories.q: is not one of the feature_columns"),
    ({"input": {**TAB, "categories": {"my col": ["x"]}}}, 'input.categories["my col"]: is not one of'),
    ({"input": {**TAB, "unknown_category": "skip"}}, "input.unknown_category: expected one of 'error', 'ignore'"),
    ({"input": {**TAB, "dtype": "int8"}}, "input.dtype: expected one of 'float32', 'float64', got 'int8'"),
    ({"input": {**TAB, "input_name": ""}}, "input.input_name: must not be empty"),
    # image
    ({"input": {"kind": "image", "mean": [0.5, 0.5]}}, "input.mean: expected 3 numbers for 3 channels, got 2"),
    ({"input": {"kind": "image", "color": "gray", "std": [1, 1, 1]}}, "input.std: expected 1 number for 1 channel"),
    ({"input": {"kind": "image", "std": [1, 0, 1]}}, "input.std[1]: must be greater than 0, got 0"),
    ({"input": {"kind": "image", "mean": "imagenet"}}, "input.mean: expected a list, got 'imagenet'"),
    ({"input": {"kind": "image", "color": "rgba"}}, "input.color: expected one of 'rgb', 'bgr', 'gray'"),
    ({"input": {"kind": "image", "resize": 0}}, "input.resize: must be at least 1, got 0"),
    ({"input": {"kind": "image", "resize": 100000}}, "input.resize: must be at most 16384"),
    ({"input": {"kind": "image", "resize": [224]}}, "input.resize: expected an integer or [height, width], got a list"),
    ({"input": {"kind": "image", "resize": [2, "x"]}}, "input.resize[1]: expected an integer, got 'x'"),
    (
        {"input": {"kind": "image", "resize": [224, 224], "resize_mode": "shorter_side"}},
        "input.resize: resize_mode 'shorter_side' takes one integer",
    ),
    ({"input": {"kind": "image", "resize": 2, "resize_mode": "fit"}}, "input.resize_mode: expected one of"),
    ({"input": {"kind": "image", "resize_mode": "exact"}}, "input.resize_mode: is set but resize is not"),
    ({"input": {"kind": "image", "center_crop": 1.5}}, "input.center_crop: expected an integer, got 1.5"),
    ({"input": {"kind": "image", "center_crop": [224, True]}}, "input.center_crop[1]: expected an integer, got true"),
    ({"input": {"kind": "image", "layout": "chw"}}, "input.layout: expected one of 'nchw', 'nhwc', got 'chw'"),
    ({"input": {"kind": "image", "interpolation": "lanczos"}}, "input.interpolation: expected one of"),
    ({"input": {"kind": "image", "dtype": "float16"}}, "input.dtype: expected one of"),
    ({"input": {"kind": "image", "dtype": "uint8", "mean": [1, 1, 1]}}, "input.dtype: uint8 input takes the pixels"),
    ({"input": {"kind": "image", "dtype": "uint8", "scale": 0.5}}, "input.dtype: uint8 input takes the pixels"),
    ({"input": {"kind": "image", "scale": 0}}, "input.scale: must be greater than 0, got 0"),
    ({"input": {"kind": "image", "scale": True}}, "input.scale: expected a number, got true"),
    ({"input": {"kind": "image", "crop": 224}}, "input.crop: unknown key"),
    # text
    ({"input": {"kind": "text"}}, "input.text_column: is required"),
    ({"input": {"kind": "text", "text_column": 3}}, "input.text_column: expected a string, got 3"),
    ({"input": {"kind": "text", "text_column": "t", "max_length": 0}}, "input.max_length: must be at least 1, got 0"),
    ({"input": {"kind": "text", "text_column": "t", "max_length": 10**6}}, "input.max_length: must be at most 65536"),
    ({"input": {"kind": "text", "text_column": "t", "padding": "left"}}, "input.padding: expected one of"),
    (
        {"input": {"kind": "text", "text_column": "t", "truncation": 1}},
        "input.truncation: expected true or false, got 1",
    ),
    ({"input": {"kind": "text", "text_column": "t", "dtype": "float32"}}, "input.dtype: expected one of 'int64'"),
    (
        {"input": {"kind": "text", "text_column": "t", "input_names": {"labels": "x"}}},
        "input.input_names.labels: unknown key",
    ),
    (
        {"input": {"kind": "text", "text_column": "t", "input_names": {"input_ids": None}}},
        "input.input_names.input_ids: expected a string, got null",
    ),
    (
        {"input": {"kind": "text", "text_column": "t", "input_names": {"input_ids": "x", "attention_mask": "x"}}},
        "input.input_names: two inputs have the same name",
    ),
    # output
    ({"output": []}, "output: expected an object, got a list of 0"),
    ({"output": {"activation": "relu"}}, "output.activation: expected one of 'none', 'softmax', 'sigmoid', got 'relu'"),
    ({"output": {"top_k": 0}}, "output.top_k: must be at least 1, got 0"),
    ({"output": {"top_k": 2.5}}, "output.top_k: expected an integer, got 2.5"),
    ({"output": {"labels": []}}, "output.labels: expected at least 1 item, got 0"),
    ({"output": {"labels": [0, 1]}}, "output.labels[0]: expected a string, got 0"),
    ({"output": {"labels": ["a", "b", "a"]}}, "output.labels: label 'a' is given to classes 0 and 2"),
    ({"output": {"labels": {"x": "a"}}}, "output.labels.x: keys must be class indices written as integers"),
    ({"output": {"labels": {"01": "a"}}}, 'output.labels["01"]: keys must be class indices'),
    ({"output": {"labels": {"-1": "a"}}}, 'output.labels["-1"]: keys must be class indices'),
    ({"output": {"labels": {"0": 5}}}, 'output.labels["0"]: expected a string, got 5'),
    ({"output": {"labels": {}}}, "output.labels: expected at least one label, got an empty object"),
    ({"output": {"labels": "cat,dog"}}, "output.labels: expected a list, got 'cat,dog'"),
    ({"output": {"activation": "softmax", "threshold": 1.5}}, "output.threshold: must be at most 1, got 1.5"),
    ({"output": {"activation": "sigmoid", "threshold": -0.1}}, "output.threshold: must be at least 0, got -0.1"),
    ({"output": {"threshold": "0.5"}}, "output.threshold: expected a number, got '0.5'"),
    ({"output": {"output_name": 0}}, "output.output_name: expected a string, got 0"),
    ({"output": {"detection": {"scores_output": "s"}}}, "output.detection.boxes_output: is required"),
    ({"output": {"detection": {**DET, "format": "yolo"}}}, "output.detection.format: expected one of 'xyxy'"),
    ({"output": {"detection": {**DET, "iou_threshold": 1.5}}}, "output.detection.iou_threshold: must be at most 1"),
    ({"output": {"detection": {**DET, "max_detections": 0}}}, "output.detection.max_detections: must be at least 1"),
    ({"output": {"detection": {**DET, "class_agnostic": "no"}}}, "output.detection.class_agnostic: expected true"),
    ({"output": {"detection": {**DET, "nms": True}}}, "output.detection.nms: unknown key"),
    ({"output": {"detection": {**DET, "classes_output": "b"}}}, "output.detection: boxes, scores and classes must be"),
    (
        {"output": {"activation": "sigmoid", "detection": {**DET, "score_threshold": 2}}},
        "output.detection.score_threshold: must be at most 1, got 2",
    ),
    ({"output": {"top_k": 3, "detection": DET}}, "output.top_k: does not apply to detection"),
    ({"output": {"threshold": 0.5, "detection": DET}}, "output.threshold: does not apply to detection"),
    ({"output": {"output_name": "b", "detection": DET}}, "output.output_name: does not apply to detection"),
    ({"output": {"detection": []}}, "output.detection: expected an object, got a list of 0"),
]


@pytest.mark.parametrize(("doc", "message"), BAD, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD)])
def test_invalid_specs_name_the_path(doc: Any, message: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        parse_processing_spec(doc)
    assert err.value.message.startswith(message), err.value.message


def test_schema_is_valid_and_rejects_unknown_keys() -> None:
    jsonschema.Draft202012Validator.check_schema(PROCESSING_SPEC_SCHEMA)
    validator = jsonschema.Draft202012Validator(PROCESSING_SPEC_SCHEMA)
    for path in (("foo",), ("input", "foo"), ("output", "foo"), ("output", "detection", "foo")):
        doc = copy.deepcopy(TEXT_DETECTION if path[-2:-1] == ("detection",) else IMAGE)
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = 1
        assert not validator.is_valid(doc), path
    assert not validator.is_valid({"input": {"kind": "image", "layout": "chw"}})
    assert not validator.is_valid({"output": {"labels": {"01": "x"}}})


def test_spec_is_immutable() -> None:
    spec = parse_processing_spec(IMAGE)
    with pytest.raises(AttributeError):
        spec.version = 2  # type: ignore[misc]
    assert isinstance(spec, ProcessingSpec) and hash(spec) == hash(parse_processing_spec(IMAGE))
