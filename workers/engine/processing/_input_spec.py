"""The ``input`` part of a processing spec; see :mod:`workers.engine.processing.spec` for the JSON shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from workers.engine.processing._json import (
    child,
    describe,
    fail,
    read_bool,
    read_choice,
    read_int,
    read_list,
    read_number,
    read_object,
    read_str,
    unique,
)

__all__ = ["ImageInput", "InputSpec", "TabularInput", "TextInput", "parse_input"]

TABULAR_DTYPES = ("float32", "float64")
IMAGE_DTYPES = ("float32", "float64", "uint8")
TEXT_DTYPES = ("int64", "int32")
MAX_IMAGE_SIDE = 16384
MAX_TEXT_LENGTH = 65536


@dataclass(frozen=True)
class TabularInput:
    """Columns in order, standard scaling and one-hot categories (see :mod:`workers.engine.processing.spec`).

    ``scaling`` maps column -> (mean, std); ``categories`` maps column -> its
    categories as text, in one-hot order. Both are tuples of pairs so the spec
    stays immutable.
    """

    kind: ClassVar[str] = "tabular"
    feature_columns: tuple[str, ...]
    scaling: tuple[tuple[str, float, float], ...] = ()
    categories: tuple[tuple[str, tuple[str, ...]], ...] = ()
    unknown_category: str = "error"
    dtype: str = "float32"
    input_name: str | None = None

    @property
    def width(self) -> int:
        """Columns of the model input: one per numeric column, one per category."""
        cats = dict(self.categories)
        return sum(len(cats[c]) if c in cats else 1 for c in self.feature_columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "feature_columns": list(self.feature_columns),
            "scaling": {c: {"mean": m, "std": s} for c, m, s in self.scaling},
            "categories": {c: list(v) for c, v in self.categories},
            "unknown_category": self.unknown_category,
            "dtype": self.dtype,
            "input_name": self.input_name,
        }


@dataclass(frozen=True)
class ImageInput:
    """Decode, color, resize, crop, scale, normalise, lay out (see :mod:`workers.engine.processing.spec`).

    ``resize`` is an ``int`` (shorter side) for ``resize_mode == "shorter_side"``
    and ``(height, width)`` for ``"exact"``; ``center_crop`` is ``(height, width)``.
    """

    kind: ClassVar[str] = "image"
    color: str = "rgb"
    resize: int | tuple[int, int] | None = None
    resize_mode: str | None = None
    interpolation: str = "bilinear"
    center_crop: tuple[int, int] | None = None
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    layout: str = "nchw"
    dtype: str = "float32"
    input_name: str | None = None

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "color": self.color,
            "resize": list(self.resize) if isinstance(self.resize, tuple) else self.resize,
            "resize_mode": self.resize_mode,
            "interpolation": self.interpolation,
            "center_crop": list(self.center_crop) if self.center_crop else None,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "layout": self.layout,
            "dtype": self.dtype,
            "input_name": self.input_name,
        }


@dataclass(frozen=True)
class TextInput:
    """Tokenize a text column with the model's ``tokenizer.json`` (see :mod:`workers.engine.processing.spec`).

    ``attention_mask_name`` and ``token_type_ids_name`` are ``None`` when the
    model does not take that input.
    """

    kind: ClassVar[str] = "text"
    text_column: str
    max_length: int = 128
    padding: str = "max_length"
    truncation: bool = True
    add_special_tokens: bool = True
    pad_token: str | None = None
    dtype: str = "int64"
    input_ids_name: str = "input_ids"
    attention_mask_name: str | None = "attention_mask"
    token_type_ids_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text_column": self.text_column,
            "max_length": self.max_length,
            "padding": self.padding,
            "truncation": self.truncation,
            "add_special_tokens": self.add_special_tokens,
            "pad_token": self.pad_token,
            "dtype": self.dtype,
            "input_names": {
                "input_ids": self.input_ids_name,
                "attention_mask": self.attention_mask_name,
                "token_type_ids": self.token_type_ids_name,
            },
        }


InputSpec = TabularInput | ImageInput | TextInput


def parse_input(value: Any, path: str) -> InputSpec:
    if not isinstance(value, dict):
        raise fail(path, f"expected an object, got {describe(value)}")
    if "kind" not in value:
        raise fail(child(path, "kind"), f"is required: one of {', '.join(repr(k) for k in _KINDS)}")
    kind = read_choice(value["kind"], child(path, "kind"), _KINDS)
    if kind == "tabular":
        return _parse_tabular(value, path)
    if kind == "image":
        return _parse_image(value, path)
    return _parse_text(value, path)


_KINDS = ("tabular", "image", "text")


def _or_empty(value: Any) -> Any:
    return {} if value is None else value


def _name(value: Any, path: str) -> str | None:
    return None if value is None else read_str(value, path)


def _parse_tabular(value: Any, path: str) -> TabularInput:
    keys = ("kind", "feature_columns", "scaling", "categories", "unknown_category", "dtype", "input_name")
    obj = read_object(value, path, keys, ("feature_columns",))
    cols_path = child(path, "feature_columns")
    columns = unique(
        [
            read_str(c, child(cols_path, i))
            for i, c in enumerate(read_list(obj["feature_columns"], cols_path, min_items=1))
        ],
        cols_path,
        "column",
    )
    categories = _parse_categories(_or_empty(obj.get("categories")), child(path, "categories"), columns)
    numeric = [c for c in columns if c not in dict(categories)]
    scaling = _parse_scaling(_or_empty(obj.get("scaling")), child(path, "scaling"), columns, numeric)
    return TabularInput(
        feature_columns=columns,
        scaling=scaling,
        categories=categories,
        unknown_category=read_choice(
            obj.get("unknown_category", "error"), child(path, "unknown_category"), ("error", "ignore")
        ),
        dtype=read_choice(obj.get("dtype", "float32"), child(path, "dtype"), TABULAR_DTYPES),
        input_name=_name(obj.get("input_name"), child(path, "input_name")),
    )


def _parse_categories(value: Any, path: str, columns: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    obj = _by_column(value, path, columns)
    result = []
    for column in columns:  # feature order, whatever order the JSON had
        if column not in obj:
            continue
        cpath = child(path, column)
        texts = [_category_text(v, child(cpath, i)) for i, v in enumerate(read_list(obj[column], cpath, min_items=1))]
        result.append((column, unique(texts, cpath, "category")))
    return tuple(result)


def _by_column(value: Any, path: str, columns: tuple[str, ...]) -> dict[str, Any]:
    obj = read_object(value, path, None)
    for key in obj:
        if key not in columns:
            raise fail(child(path, key), "is not one of the feature_columns")
    return obj


def _category_text(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    number = read_number(value, path)  # same text as labels.coerce_labels gives a data value
    return str(int(number)) if number.is_integer() and isinstance(value, float) else str(value)


def _parse_scaling(
    value: Any, path: str, columns: tuple[str, ...], numeric: list[str]
) -> tuple[tuple[str, float, float], ...]:
    if isinstance(value, dict) and isinstance(value.get("kind"), str):
        obj = read_object(value, path, ("kind", "mean", "std"), ("kind", "mean", "std"))
        read_choice(obj["kind"], child(path, "kind"), ("standard",))
        means = _numbers(obj["mean"], child(path, "mean"), len(numeric), "numeric feature columns")
        stds = _numbers(obj["std"], child(path, "std"), len(numeric), "numeric feature columns", positive=True)
        return tuple(zip(numeric, means, stds, strict=True))
    obj = _by_column(value, path, columns)
    result = []
    for column in columns:
        if column not in obj:
            continue
        cpath = child(path, column)
        if column not in numeric:
            raise fail(cpath, "a column with categories is one-hot encoded and cannot also be scaled")
        pair = read_object(obj[column], cpath, ("mean", "std"), ("mean", "std"))
        mean = read_number(pair["mean"], child(cpath, "mean"))
        std = read_number(pair["std"], child(cpath, "std"), positive=True)
        result.append((column, mean, std))
    return tuple(result)


def _numbers(value: Any, path: str, count: int, what: str, *, positive: bool = False) -> tuple[float, ...]:
    items = read_list(value, path)
    if len(items) != count:
        raise fail(path, f"expected {count} number{'s' if count != 1 else ''} for {count} {what}, got {len(items)}")
    return tuple(read_number(v, child(path, i), positive=positive) for i, v in enumerate(items))


def _size(value: Any, path: str) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        items = read_list(value, path)
        if len(items) != 2:
            raise fail(path, f"expected an integer or [height, width], got a list of {len(items)}")
        h, w = (read_int(v, child(path, i), 1, MAX_IMAGE_SIDE) for i, v in enumerate(items))
        return h, w
    side = read_int(value, path, 1, MAX_IMAGE_SIDE)
    return side, side


def _parse_image(value: Any, path: str) -> ImageInput:
    keys = ("kind", "color", "resize", "resize_mode", "interpolation", "center_crop", "scale", "mean", "std")
    obj = read_object(value, path, keys + ("layout", "dtype", "input_name"))
    color = read_choice(obj.get("color", "rgb"), child(path, "color"), ("rgb", "bgr", "gray"))
    channels = 1 if color == "gray" else 3
    resize: int | tuple[int, int] | None = None
    mode = obj.get("resize_mode")
    if obj.get("resize") is not None:
        rpath = child(path, "resize")
        is_int = not isinstance(obj["resize"], (list, tuple))
        mode = read_choice(mode or ("shorter_side" if is_int else "exact"), child(path, "resize_mode"), _MODES)
        size = _size(obj["resize"], rpath)
        if mode == "shorter_side" and not is_int:
            raise fail(rpath, "resize_mode 'shorter_side' takes one integer, the length of the shorter side")
        resize = size[0] if mode == "shorter_side" else size
    elif mode is not None:
        raise fail(child(path, "resize_mode"), "is set but resize is not")
    crop = _size(obj["center_crop"], child(path, "center_crop")) if obj.get("center_crop") is not None else None
    dtype = read_choice(obj.get("dtype", "float32"), child(path, "dtype"), IMAGE_DTYPES)
    raw = dtype == "uint8"
    scale = read_number(obj.get("scale", 1.0 if raw else 1 / 255), child(path, "scale"), positive=True)
    what = f"channel{'s' if channels != 1 else ''}"
    mean = _numbers(obj.get("mean", [0.0] * channels), child(path, "mean"), channels, what)
    std = _numbers(obj.get("std", [1.0] * channels), child(path, "std"), channels, what, positive=True)
    if raw and (scale != 1.0 or any(mean) or any(s != 1.0 for s in std)):
        raise fail(child(path, "dtype"), "uint8 input takes the pixels as they are: leave out scale, mean and std")
    return ImageInput(
        color=color,
        resize=resize,
        resize_mode=mode if resize is not None else None,
        interpolation=read_choice(obj.get("interpolation", "bilinear"), child(path, "interpolation"), _INTERP),
        center_crop=crop,
        scale=scale,
        mean=mean,
        std=std,
        layout=read_choice(obj.get("layout", "nchw"), child(path, "layout"), ("nchw", "nhwc")),
        dtype=dtype,
        input_name=_name(obj.get("input_name"), child(path, "input_name")),
    )


_MODES = ("shorter_side", "exact")
_INTERP = ("bilinear", "nearest", "bicubic")


def _parse_text(value: Any, path: str) -> TextInput:
    keys = ("kind", "text_column", "max_length", "padding", "truncation", "add_special_tokens", "pad_token")
    obj = read_object(value, path, keys + ("dtype", "input_names"), ("text_column",))
    npath = child(path, "input_names")
    names = read_object(_or_empty(obj.get("input_names")), npath, ("input_ids", "attention_mask", "token_type_ids"))
    ids_name = read_str(names.get("input_ids", "input_ids"), child(npath, "input_ids"))
    mask_name = _name(names.get("attention_mask", "attention_mask"), child(npath, "attention_mask"))
    types_name = _name(names.get("token_type_ids"), child(npath, "token_type_ids"))
    given = [n for n in (ids_name, mask_name, types_name) if n is not None]
    if len(set(given)) != len(given):
        raise fail(npath, "two inputs have the same name")
    return TextInput(
        text_column=read_str(obj["text_column"], child(path, "text_column")),
        max_length=read_int(obj.get("max_length", 128), child(path, "max_length"), 1, MAX_TEXT_LENGTH),
        padding=read_choice(obj.get("padding", "max_length"), child(path, "padding"), ("max_length", "longest")),
        truncation=read_bool(obj.get("truncation", True), child(path, "truncation")),
        add_special_tokens=read_bool(obj.get("add_special_tokens", True), child(path, "add_special_tokens")),
        pad_token=_name(obj.get("pad_token"), child(path, "pad_token")),
        dtype=read_choice(obj.get("dtype", "int64"), child(path, "dtype"), TEXT_DTYPES),
        input_ids_name=ids_name,
        attention_mask_name=mask_name,
        token_type_ids_name=types_name,
    )
