"""load_tokenizer and prepare_text with tiny WordPiece and BPE tokenizers built in code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

from workers.engine.errors import InvalidArtifact, InvalidDataset
from workers.engine.processing import TextInput, load_tokenizer, parse_processing_spec, prepare_text
from workers.engine.processing import text as text_module

VOCAB = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "world": 5, "##s": 6, "the": 7, "big": 8}


def _wordpiece(path: Path, *, pad: bool = True) -> Path:
    vocab = dict(VOCAB) if pad else {k: v - 1 for k, v in VOCAB.items() if k != "[PAD]"}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.save(str(path))
    return path


def _spec(**fields: object) -> TextInput:
    spec = parse_processing_spec({"input": {"kind": "text", "text_column": "t", **fields}}).input
    assert isinstance(spec, TextInput)
    return spec


@pytest.fixture()
def wordpiece(tmp_path: Path) -> Tokenizer:
    return load_tokenizer(_wordpiece(tmp_path / "tokenizer.json"))


def test_known_ids_mask_and_types(wordpiece: Tokenizer) -> None:
    spec = _spec(max_length=8, input_names={"input_ids": "ids", "attention_mask": "mask", "token_type_ids": "types"})
    out = prepare_text(["Hello worlds", "the BIG unknownword"], wordpiece, spec)
    assert list(out) == ["ids", "mask", "types"]
    np.testing.assert_array_equal(out["ids"], [[2, 4, 5, 6, 3, 0, 0, 0], [2, 7, 8, 1, 3, 0, 0, 0]])
    np.testing.assert_array_equal(out["mask"], [[1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0]])
    np.testing.assert_array_equal(out["types"], np.zeros((2, 8)))
    assert all(v.dtype == np.int64 for v in out.values())
    default = prepare_text(["hello"], wordpiece, _spec(max_length=4))
    assert list(default) == ["input_ids", "attention_mask"]  # token_type_ids only when named
    assert prepare_text(["hello"], wordpiece, _spec(max_length=4, dtype="int32"))["input_ids"].dtype == np.int32


def test_truncation_keeps_special_tokens(wordpiece: Tokenizer) -> None:
    out = prepare_text(["hello worlds the big"], wordpiece, _spec(max_length=4))
    np.testing.assert_array_equal(out["input_ids"], [[2, 4, 5, 3]])
    no_special = prepare_text(["hello worlds"], wordpiece, _spec(max_length=4, add_special_tokens=False))
    np.testing.assert_array_equal(no_special["input_ids"], [[4, 5, 6, 0]])


def test_padding_longest(wordpiece: Tokenizer) -> None:
    out = prepare_text(["hello", "hello worlds"], wordpiece, _spec(max_length=32, padding="longest"))
    np.testing.assert_array_equal(out["input_ids"], [[2, 4, 3, 0, 0], [2, 4, 5, 6, 3]])
    capped = prepare_text(["hello worlds the big"], wordpiece, _spec(max_length=5, padding="longest"))
    assert capped["input_ids"].shape == (1, 5)
    assert prepare_text([], wordpiece, _spec(max_length=5))["input_ids"].shape == (0, 5)


def test_rows_too_long_without_truncation(wordpiece: Tokenizer) -> None:
    spec = _spec(max_length=4, truncation=False)
    assert prepare_text(["hello world"], wordpiece, spec)["input_ids"].shape == (1, 4)
    with pytest.raises(InvalidDataset, match="data row 12 of text column 't' has 5 tokens, more than max_length 4"):
        prepare_text(["hello", "hello worlds"], wordpiece, spec, row_offset=10)


def test_values_that_are_not_text(wordpiece: Tokenizer) -> None:
    with pytest.raises(InvalidDataset, match="text column 't' holds a missing value in data row 3"):
        prepare_text(["a", "b", float("nan")], wordpiece, _spec())  # type: ignore[list-item]
    with pytest.raises(InvalidDataset, match="text column 't' holds 5, which is not text, in data row 1"):
        prepare_text([5], wordpiece, _spec())  # type: ignore[list-item]


def test_file_settings_are_overridden_then_restored(tmp_path: Path) -> None:
    path = _wordpiece(tmp_path / "tokenizer.json")
    tok = Tokenizer.from_file(str(path))
    tok.enable_truncation(2)
    tok.enable_padding(pad_id=0, pad_token="[PAD]", length=3)
    tok.save(str(path))
    loaded = load_tokenizer(path)
    before = (loaded.truncation, loaded.padding)
    out = prepare_text(["hello worlds"], loaded, _spec(max_length=6))
    np.testing.assert_array_equal(out["input_ids"], [[2, 4, 5, 6, 3, 0]])
    assert (loaded.truncation, loaded.padding) == before


def test_pad_token_resolution(tmp_path: Path) -> None:
    no_pad = load_tokenizer(_wordpiece(tmp_path / "a.json", pad=False))
    with pytest.raises(InvalidArtifact, match="defines no padding token.*set input.pad_token"):
        prepare_text(["hello"], no_pad, _spec())
    out = prepare_text(["hello"], no_pad, _spec(max_length=4, pad_token="[UNK]"))
    np.testing.assert_array_equal(out["input_ids"], [[1, 3, 2, 0]])  # [CLS] hello [SEP] [UNK]
    with pytest.raises(InvalidArtifact, match=r"input.pad_token '<pad>' is not in the tokenizer's vocabulary"):
        prepare_text(["hello"], no_pad, _spec(pad_token="<pad>"))


def test_bpe_tokenizer_matches_the_library(tmp_path: Path) -> None:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = ["the cat sat on the mat", "the dog sat on the log", "cats and dogs"] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=60, special_tokens=["<unk>", "<pad>"]))
    tok.save(str(tmp_path / "bpe.json"))
    loaded = load_tokenizer(tmp_path / "bpe.json")
    texts = ["the cat sat", "a dog on the log with cats", ""]
    out = prepare_text(texts, loaded, _spec(max_length=6))
    reference = Tokenizer.from_file(str(tmp_path / "bpe.json"))
    reference.enable_truncation(6)
    reference.enable_padding(pad_id=reference.token_to_id("<pad>"), pad_token="<pad>", length=6)
    expected = reference.encode_batch(texts)
    np.testing.assert_array_equal(out["input_ids"], [e.ids for e in expected])
    np.testing.assert_array_equal(out["attention_mask"], [e.attention_mask for e in expected])


def test_load_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArtifact, match="cannot read tokenizer.json"):
        load_tokenizer(tmp_path / "absent.json")
    cases = {
        b"\xff\xfe{}": "not UTF-8",
        b"{not json": "not valid JSON: Expecting property name enclosed in double quotes at line 1",
        json.dumps({"[PAD]": 0}).encode(): "has no 'model' object",
        json.dumps({"model": {"type": "Nonsense"}}).encode(): "the tokenizers library cannot load tokenizer.json",
    }
    for content, message in cases.items():
        path = tmp_path / "bad.json"
        path.write_bytes(content)
        with pytest.raises(InvalidArtifact, match=message) as err:
            load_tokenizer(path)
        assert err.value.permanent
    good = _wordpiece(tmp_path / "tokenizer.json")
    monkeypatch.setattr(text_module, "MAX_TOKENIZER_BYTES", 100)
    with pytest.raises(InvalidArtifact, match="more than the limit of 100"):
        load_tokenizer(good)
