"""Text input: a ``tokenizer.json`` uploaded with the model, applied with the tokenizers library.

The spec, not the tokenizer file, decides truncation and padding: whatever
the file configures is overridden for the call (and restored afterwards), so
the same text gives the same ids in every job. Truncation keeps the special
tokens the tokenizer's post-processor adds (``[CLS] ... [SEP]``) within
``max_length``; padding is on the right.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from workers.engine.arrays import Array
from workers.engine.errors import InvalidArtifact, InvalidDataset
from workers.engine.processing.spec import TextInput
from workers.engine.tabular import first_line

__all__ = ["MAX_TOKENIZER_BYTES", "load_tokenizer", "pad_token_id", "prepare_text"]

#: Largest tokenizer.json accepted; real ones are a few MB.
MAX_TOKENIZER_BYTES = 64 * 2**20
#: Tried in order when neither the spec nor the file names a padding token.
_COMMON_PAD_TOKENS = ("[PAD]", "<pad>", "<|pad|>", "<PAD>")


def load_tokenizer(path: str | os.PathLike[str]) -> Tokenizer:
    """Load and check a ``tokenizer.json`` (the format the tokenizers library writes).

    Raises
    ------
    InvalidArtifact
        (permanent) for a missing, oversized, non-UTF-8 or non-JSON file, or
        one the tokenizers library cannot build a tokenizer from.
    """
    try:
        size = os.path.getsize(path)
        if size > MAX_TOKENIZER_BYTES:
            raise InvalidArtifact(f"tokenizer.json is {size:,} bytes, more than the limit of {MAX_TOKENIZER_BYTES:,}")
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise InvalidArtifact(f"cannot read tokenizer.json: {exc.strerror or type(exc).__name__}") from exc
    try:
        text = raw.decode("utf-8")
        doc = json.loads(text)
    except UnicodeDecodeError as exc:
        raise InvalidArtifact("tokenizer.json is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise InvalidArtifact(f"tokenizer.json is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict):
        raise InvalidArtifact(
            "tokenizer.json has no 'model' object; upload the tokenizer.json file written by the tokenizers "
            "library (tokenizer.save(...) or a Hugging Face model's tokenizer.json), not vocab.txt or a config"
        )
    try:
        tokenizer = Tokenizer.from_str(text)
    except Exception as exc:  # the Rust side raises plain Exception with its message
        raise InvalidArtifact(f"the tokenizers library cannot load tokenizer.json: {first_line(exc)}") from exc
    if tokenizer.get_vocab_size() == 0:
        raise InvalidArtifact("tokenizer.json has an empty vocabulary")
    return tokenizer


def pad_token_id(tokenizer: Tokenizer, spec: TextInput) -> tuple[str, int]:
    """The padding token and its id: the spec's, else the file's padding setting, else a usual name.

    Raises
    ------
    InvalidArtifact
        When the spec's pad token is not in the vocabulary, or none is found.
    """
    if spec.pad_token is not None:
        found = tokenizer.token_to_id(spec.pad_token)
        if found is None:
            raise InvalidArtifact(f"input.pad_token {spec.pad_token!r} is not in the tokenizer's vocabulary")
        return spec.pad_token, found
    configured = tokenizer.padding
    if configured and configured.get("pad_token") is not None:
        return str(configured["pad_token"]), int(configured["pad_id"])
    for token in _COMMON_PAD_TOKENS:
        found = tokenizer.token_to_id(token)
        if found is not None:
            return token, found
    raise InvalidArtifact(
        "the tokenizer defines no padding token and has none of "
        f"{', '.join(_COMMON_PAD_TOKENS)}; set input.pad_token in the processing spec"
    )


def prepare_text(texts: list[str], tokenizer: Tokenizer, spec: TextInput, *, row_offset: int = 0) -> dict[str, Array]:
    """Tokenize a batch of texts into the model's named inputs.

    Parameters
    ----------
    texts:
        One string per row.
    tokenizer:
        From :func:`load_tokenizer`; its own truncation and padding settings
        are ignored for this call and left as they were.
    spec:
        ``max_length``, ``padding`` (``"max_length"``: every row that long;
        ``"longest"``: the batch's longest row), ``truncation``,
        ``add_special_tokens``, dtype and input names.
    row_offset:
        Rows before this batch, so messages give the data row number.

    Returns
    -------
    dict
        ``input_ids``, and ``attention_mask``/``token_type_ids`` when the spec
        names them, each ``(rows, length)`` in ``spec.dtype``, under the
        model's input names.

    Raises
    ------
    InvalidDataset
        For a value that is not text, or (with truncation off) a row with
        more tokens than ``max_length``.
    """
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            what = "a missing value" if text is None or text != text else f"{text!r}, which is not text,"
            raise InvalidDataset(f"text column {spec.text_column!r} holds {what} in data row {row_offset + i + 1}")
    pad_token, pad_id = pad_token_id(tokenizer, spec)
    length = spec.max_length if spec.padding == "max_length" else None
    with _configured(tokenizer, spec.max_length if spec.truncation else None, pad_token, pad_id, length):
        encodings = tokenizer.encode_batch(texts, add_special_tokens=spec.add_special_tokens) if texts else []
    width = max((len(e.ids) for e in encodings), default=length or 0)
    if width > spec.max_length:
        row = next(i for i, e in enumerate(encodings) if len(e.ids) > spec.max_length)
        raise InvalidDataset(
            f"data row {row_offset + row + 1} of text column {spec.text_column!r} has {len(encodings[row].ids)} "
            f"tokens, more than max_length {spec.max_length}, and truncation is off in the processing spec"
        )
    dtype = np.dtype(spec.dtype)
    result = {spec.input_ids_name: _matrix([e.ids for e in encodings], width, dtype)}
    if spec.attention_mask_name is not None:
        result[spec.attention_mask_name] = _matrix([e.attention_mask for e in encodings], width, dtype)
    if spec.token_type_ids_name is not None:
        result[spec.token_type_ids_name] = _matrix([e.type_ids for e in encodings], width, dtype)
    return result


def _matrix(rows: list[list[int]], width: int, dtype: np.dtype[Any]) -> Array:
    out = np.zeros((len(rows), width), dtype=dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


@contextmanager
def _configured(
    tokenizer: Tokenizer, truncate_to: int | None, pad_token: str, pad_id: int, length: int | None
) -> Iterator[None]:
    saved_truncation, saved_padding = tokenizer.truncation, tokenizer.padding
    try:
        if truncate_to is None:
            tokenizer.no_truncation()
        else:
            tokenizer.enable_truncation(truncate_to, strategy="longest_first", direction="right")
        tokenizer.enable_padding(direction="right", pad_id=pad_id, pad_type_id=0, pad_token=pad_token, length=length)
        yield
    finally:
        if saved_truncation is None:
            tokenizer.no_truncation()
        else:
            tokenizer.enable_truncation(**saved_truncation)
        if saved_padding is None:
            tokenizer.no_padding()
        else:
            tokenizer.enable_padding(**saved_padding)
