"""Build the review-sentiment text model the text explanation tests use: a tokenizer and a bag-of-words ONNX model.

A logistic regression (scikit-learn) trained on word counts of short product
reviews generated here from fixed word lists with a fixed seed, exported as
ONNX that takes ``input_ids`` and ``attention_mask`` as a BERT-style model
does: each token's row of a table (the word's coefficient, halved, for the
two classes), masked by the attention mask and summed; the leading
``[CLS]`` token's row carries the intercept. The tokenizer (``tokenizer.json``,
word level, lower-cased, ``[CLS]`` added in front) and a CSV of reviews are
written beside it; deterministic, written on demand and never committed::

    python scripts/build_text_model.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

OPSET = 17
MAX_LENGTH = 16
POSITIVE = ["great", "excellent", "lovely", "sturdy", "fast", "perfect", "happy", "recommend", "works", "bright"]
NEGATIVE = ["broken", "awful", "slow", "cheap", "noisy", "refund", "disappointed", "poor", "late", "flimsy"]
NEUTRAL = ["the", "a", "it", "this", "was", "is", "and", "very", "item", "box", "lamp", "phone", "chair", "arrived"]
PROCESSING = {
    "input": {
        "kind": "text",
        "text_column": "review",
        "max_length": MAX_LENGTH,
        "padding": "max_length",
        "add_special_tokens": True,
        "pad_token": "[PAD]",
    },
    "output": {"activation": "softmax", "labels": ["negative", "positive"]},
}


def reviews(n: int = 400, seed: int = 0, neutral: list[str] = NEUTRAL) -> pd.DataFrame:
    """Short reviews: a few neutral words with one to three sentiment words, most of them of the review's side."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        positive = bool(rng.random() < 0.5)
        own, other = (POSITIVE, NEGATIVE) if positive else (NEGATIVE, POSITIVE)
        words = list(rng.choice(neutral, size=int(rng.integers(3, 7))))
        words += list(rng.choice(own, size=int(rng.integers(1, 4))))
        if rng.random() < 0.3:
            words.append(str(rng.choice(other)))
        rng.shuffle(words)
        rows.append({"review": " ".join(words[: MAX_LENGTH - 1]), "sentiment": "positive" if positive else "negative"})
    return pd.DataFrame(rows)


def build(out: Path, *, extra_words: tuple[str, ...] = ()) -> dict[str, Any]:
    """Write ``sentiment.onnx``, ``tokenizer.json`` and ``reviews.csv`` into ``out``; returns their paths and more.

    ``extra_words``: more neutral words (any characters but white space), e.g. markup that a page must show as text.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    out.mkdir(parents=True, exist_ok=True)
    neutral = [*NEUTRAL, *(w.lower() for w in extra_words)]
    frame = reviews(neutral=neutral)
    words = sorted(set(POSITIVE + NEGATIVE + neutral))
    vectorizer = CountVectorizer(vocabulary=words, token_pattern=r"\S+", lowercase=True)
    counts = vectorizer.transform(frame["review"])
    y = (frame["sentiment"] == "positive").to_numpy().astype(int)
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(counts, y)

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.add_special_tokens(["[PAD]", "[UNK]", "[CLS]"])
    tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A", special_tokens=[("[CLS]", 2)])
    tokenizer.save(str(out / "tokenizer.json"))

    table = np.zeros((len(vocab), 2))
    coef = clf.coef_[0]
    for i, w in enumerate(words):
        table[vocab[w]] = [-coef[i] / 2, coef[i] / 2]
    table[vocab["[CLS]"]] = [-clf.intercept_[0] / 2, clf.intercept_[0] / 2]
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["vectors"]),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.DOUBLE),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["vectors", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["logits"], keepdims=0),
    ]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, [None, None]) for n in ("input_ids", "attention_mask")
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.DOUBLE, [None, 2])]
    weights = {"table": table, "axis1": np.array([1], np.int64), "axis2": np.array([2], np.int64)}
    graph = helper.make_graph(
        nodes, "review_sentiment", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in weights.items()]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(out / "sentiment.onnx"))
    frame.to_csv(out / "reviews.csv", index=False)
    return {
        "onnx": out / "sentiment.onnx",
        "tokenizer": out / "tokenizer.json",
        "csv": out / "reviews.csv",
        "processing": PROCESSING,
        "classifier": clf,
        "vectorizer": vectorizer,
        "table": table,
        "vocab": vocab,
    }


if __name__ == "__main__":
    built = build(Path(sys.argv[1] if len(sys.argv) > 1 else "var/cache/text_model"))
    print(*(f"{k}: {v}" for k, v in built.items() if k in ("onnx", "tokenizer", "csv")), sep="\n")
