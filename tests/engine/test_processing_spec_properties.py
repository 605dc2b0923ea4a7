"""parse_processing_spec on generated documents (hypothesis).

Valid specs of every kind parse, and their canonical form reads back to the same spec; any other
JSON value, however odd, is refused with InvalidSpec (a permanent EngineError naming the path),
never with another exception, which the upload would turn into a 500.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.engine.processing import PROCESSING_SPEC_SCHEMA, InvalidSpec, ProcessingSpec, parse_processing_spec
from workers.engine.processing._input_spec import IMAGE_DTYPES, TABULAR_DTYPES, TEXT_DTYPES
from workers.engine.processing._output_spec import ACTIVATIONS, BOX_FORMATS

names = st.text(min_size=1, max_size=12).filter(lambda s: s.strip())
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.integers(-(10**6), 10**6)
positive = st.floats(min_value=1e-6, max_value=1e6) | st.integers(1, 10**6)
side = st.integers(1, 4096)
# Built once: jsonschema.validate() checks the schema itself on every call.
SCHEMA = jsonschema.validators.validator_for(PROCESSING_SPEC_SCHEMA)(PROCESSING_SPEC_SCHEMA)


def _maybe(key: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``{key: value}`` or ``{}``: an optional key, left out or given."""
    return st.one_of(st.just({}), values.map(lambda v: {key: v}))


def _merge(*parts: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.tuples(*parts).map(lambda ds: {k: v for d in ds for k, v in d.items()})


@st.composite
def tabular(draw: st.DrawFn) -> dict[str, Any]:
    columns = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    categorical = draw(st.lists(st.sampled_from(columns), unique=True, max_size=len(columns)))
    numeric = [c for c in columns if c not in categorical]
    doc: dict[str, Any] = {"kind": "tabular", "feature_columns": columns}
    if categorical:
        category = names | st.integers(-1000, 1000)  # numbers listed as categories become text
        doc["categories"] = {
            c: draw(st.lists(category, min_size=1, max_size=4, unique_by=str).filter(_distinct_texts))
            for c in categorical
        }
    if numeric and draw(st.booleans()):
        if draw(st.booleans()):
            scaled = draw(st.lists(st.sampled_from(numeric), unique=True, min_size=1))
            doc["scaling"] = {c: {"mean": draw(finite), "std": draw(positive)} for c in scaled}
        else:
            n = len(numeric)
            doc["scaling"] = {
                "kind": "standard",
                "mean": draw(st.lists(finite, min_size=n, max_size=n)),
                "std": draw(st.lists(positive, min_size=n, max_size=n)),
            }
    doc.update(
        draw(
            _merge(
                _maybe("unknown_category", st.sampled_from(["error", "ignore"])),
                _maybe("dtype", st.sampled_from(TABULAR_DTYPES)),
                _maybe("input_name", names),
            )
        )
    )
    return doc


def _distinct_texts(values: list[Any]) -> bool:
    return len({str(v) for v in values}) == len(values)


@st.composite
def image(draw: st.DrawFn) -> dict[str, Any]:
    color = draw(st.sampled_from(["rgb", "bgr", "gray"]))
    channels = 1 if color == "gray" else 3
    dtype = draw(st.sampled_from(IMAGE_DTYPES))
    doc: dict[str, Any] = {"kind": "image", "color": color, "dtype": dtype}
    resize = draw(st.one_of(st.none(), side, st.lists(side, min_size=2, max_size=2)))
    if resize is not None:
        doc["resize"] = resize
        modes = ["shorter_side", "exact"] if isinstance(resize, int) else ["exact"]
        doc.update(draw(_maybe("resize_mode", st.sampled_from(modes))))
    doc.update(
        draw(
            _merge(
                _maybe("center_crop", side | st.lists(side, min_size=2, max_size=2)),
                _maybe("interpolation", st.sampled_from(["bilinear", "nearest", "bicubic"])),
                _maybe("layout", st.sampled_from(["nchw", "nhwc"])),
                _maybe("input_name", names),
            )
        )
    )
    if dtype != "uint8":  # uint8 takes the pixels as they are
        doc.update(
            draw(
                _merge(
                    _maybe("scale", positive),
                    _maybe("mean", st.lists(finite, min_size=channels, max_size=channels)),
                    _maybe("std", st.lists(positive, min_size=channels, max_size=channels)),
                )
            )
        )
    return doc


@st.composite
def text(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"kind": "text", "text_column": draw(names)}
    doc.update(
        draw(
            _merge(
                _maybe("max_length", st.integers(1, 4096)),
                _maybe("padding", st.sampled_from(["max_length", "longest"])),
                _maybe("truncation", st.booleans()),
                _maybe("add_special_tokens", st.booleans()),
                _maybe("pad_token", st.none() | names),
                _maybe("dtype", st.sampled_from(TEXT_DTYPES)),
            )
        )
    )
    if draw(st.booleans()):
        ids, mask, types = draw(st.lists(names, min_size=3, max_size=3, unique=True))
        doc["input_names"] = {"input_ids": ids, "attention_mask": draw(st.none() | st.just(mask))}
        doc["input_names"].update(draw(_maybe("token_type_ids", st.none() | st.just(types))))
    return doc


@st.composite
def output(draw: st.DrawFn) -> dict[str, Any]:
    activation = draw(st.sampled_from(ACTIVATIONS))
    unit = st.floats(0.0, 1.0) if activation != "none" else finite
    doc: dict[str, Any] = {"activation": activation}
    labels = st.lists(names, min_size=1, max_size=6, unique=True)
    sparse = st.dictionaries(st.integers(0, 999).map(str), names, min_size=1, max_size=6).filter(
        lambda d: len(set(d.values())) == len(d)
    )
    doc.update(draw(_maybe("labels", labels | sparse)))
    if draw(st.booleans()):
        boxes, scores, classes = draw(st.lists(names, min_size=3, max_size=3, unique=True))
        detection = {"boxes_output": boxes, "scores_output": scores}
        detection.update(
            draw(
                _merge(
                    _maybe("classes_output", st.just(classes)),
                    _maybe("format", st.sampled_from(BOX_FORMATS)),
                    _maybe("score_threshold", unit),
                    _maybe("iou_threshold", st.floats(0.0, 1.0)),
                    _maybe("max_detections", st.integers(1, 10_000)),
                    _maybe("class_agnostic", st.booleans()),
                )
            )
        )
        doc["detection"] = detection
    else:
        doc.update(
            draw(
                _merge(
                    _maybe("output_name", names),
                    _maybe("top_k", st.integers(1, 1000)),
                    _maybe("threshold", unit),
                )
            )
        )
    return doc


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = draw(_maybe("version", st.just(1)))
    given_input = draw(st.none() | tabular() | image() | text())
    given_output = draw(st.none() | output()) if given_input is not None else draw(output())
    if given_input is not None or draw(st.booleans()):
        doc["input"] = given_input
    if given_output is not None or draw(st.booleans()):
        doc["output"] = given_output
    return doc


@given(doc=valid_specs())
def test_valid_specs_parse_and_their_canonical_form_round_trips(doc: dict[str, Any]) -> None:
    spec = parse_processing_spec(doc)
    canonical = spec.to_dict()
    assert json.loads(json.dumps(canonical)) == canonical  # plain JSON
    assert parse_processing_spec(canonical) == spec
    assert parse_processing_spec(json.loads(json.dumps(canonical))).to_dict() == canonical
    SCHEMA.validate(doc)
    SCHEMA.validate(canonical)


# ------------------------------------------------------------------ garbage

# Keys the parser knows, so that garbage reaches deep into it rather than stopping at the first level.
KEYS = sorted(
    {"version", "input", "output", "kind", "tabular", "image", "text", "feature_columns", "scaling", "categories"}
    | {"unknown_category", "dtype", "input_name", "mean", "std", "color", "resize", "resize_mode", "interpolation"}
    | {"center_crop", "scale", "layout", "text_column", "max_length", "padding", "truncation", "pad_token"}
    | {"add_special_tokens", "input_names", "input_ids", "attention_mask", "token_type_ids", "output_name"}
    | {"activation", "top_k", "labels", "threshold", "detection", "boxes_output", "scores_output", "standard"}
    | {"classes_output", "format", "score_threshold", "iou_threshold", "max_detections", "class_agnostic", "0", "1"}
)
long_digits = st.integers(4301, 4400).map(lambda n: "1" * n)  # past Python's int() limit for text
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**600),  # beyond any float, as JSON allows
    st.floats(),  # nan and ±inf too: Python's json module reads NaN and Infinity
    st.text(max_size=8),
    st.sampled_from(KEYS),
    long_digits,
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6) | long_digits, inner)
    ),
    max_leaves=25,
)


def _parses_or_is_refused(doc: Any) -> None:
    try:
        spec = parse_processing_spec(doc)
    except InvalidSpec as exc:
        assert exc.permanent and exc.message
    else:
        assert isinstance(spec, ProcessingSpec)
        assert parse_processing_spec(spec.to_dict()) == spec


@given(doc=json_values)
def test_any_json_value_is_parsed_or_refused_with_invalid_spec(doc: Any) -> None:
    _parses_or_is_refused(doc)


@given(data=st.data(), base=valid_specs())
def test_a_valid_spec_with_one_value_replaced_is_parsed_or_refused(data: st.DataObject, base: dict[str, Any]) -> None:
    """Garbage where the parser looks hardest: one value anywhere in a valid spec swapped for any JSON value."""
    paths = list(_paths(base))
    path = data.draw(st.sampled_from(paths))
    doc = json.loads(json.dumps(base))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = data.draw(json_values)
    _parses_or_is_refused(doc)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Any:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield (*prefix, key)
        yield from _paths(item, (*prefix, key))


@pytest.mark.parametrize(
    "doc",
    [
        {"input": {"kind": "image", "scale": 10**400}},
        {"output": {"threshold": -(10**400)}},
        {"input": {"kind": "tabular", "feature_columns": ["a"], "categories": {"a": [10**400]}}},
        {"output": {"labels": {"1" * 5000: "x"}}},
    ],
    ids=["huge scale", "huge threshold", "huge category", "class index past int()'s limit"],
)
def test_numbers_json_holds_but_a_float_cannot_are_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpec):
        parse_processing_spec(doc)
