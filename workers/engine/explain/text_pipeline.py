"""The ``explain`` job on a text column: one attribution per token, shown as highlighted text.

The model's declared text input (tokenizer, ``max_length``, padding, input
names) turns each row's text into token ids exactly as evaluation does; a
token left out of a coalition becomes the padding token while special
tokens and padding never count as features (:mod:`workers.engine.explain.text`).
KernelSHAP explains each row against its own all-padding baseline, so the
attributions plus the base value add up to the model's output. Global
importance is per distinct token: the summed |attribution| of its
occurrences, averaged over the sampled rows.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from workers.engine.arrays import Array
from workers.engine.datasets import iter_batches
from workers.engine.errors import EngineError
from workers.engine.explain.params import TEXT_METHODS, parse_method
from workers.engine.explain.selection import RowFilter, select_rows
from workers.engine.explain.text import token_attributions
from workers.engine.explain.trust import additivity_errors, flags, stability
from workers.engine.types import DatasetRef, ModelSpec, ProgressCallback

__all__ = ["MAX_TEXT_ROWS", "TEXT_METHODS", "run_text_explanation"]

#: Rows read at most from a text data set.
MAX_TEXT_ROWS = 20_000
#: Distinct tokens kept in the global importance.
TOP_TOKENS = 50


def _read(data: DatasetRef, columns: list[str]) -> pd.DataFrame:
    frames, n = [], 0
    for frame in iter_batches(data, 8192, columns=columns):
        frames.append(frame)
        n += len(frame)
        if n >= MAX_TEXT_ROWS:
            break
    if not frames:
        raise EngineError("the data set has no rows")
    return pd.concat(frames, ignore_index=True).iloc[:MAX_TEXT_ROWS]


def _output_name(backend: Any) -> str:
    floats = [o for o in backend.output_specs if "float" in (o.dtype or "") or "double" in (o.dtype or "")]
    preferred = [o for o in floats if o.shape is not None and len(o.shape) == 2] or floats
    if not preferred:
        raise EngineError("text explanations need a model with a floating-point output (scores per class)")
    return str(preferred[0].name)


def _choose(rows: dict[str, Any], n_rows: int, predicted: Array, truth: Array | None) -> Array:
    if "indices" in rows:
        rule = RowFilter("indices", indices=tuple(int(i) for i in rows["indices"]), limit=0)
    else:
        rule = RowFilter(rows.get("filter", ""), value=rows.get("value"), limit=int(rows.get("limit", 20)))
    if rule.kind == "column_value":
        raise EngineError("text explanations choose rows by index, prediction or misclassification")
    local = select_rows(rule, n_rows=n_rows, predicted=predicted, labels=truth, column=None)
    if len(local) == 0:
        raise EngineError(f"no row of the data set matches the row filter {rows}")
    return local


def _trust(per: dict[int, dict[str, Any]], runs: list[list[Array]], positions: list[Array]) -> dict[str, Any]:
    """Additivity over every explained row; stability (rank agreement across seeds) over each re-run row's tokens."""
    errors = np.concatenate(
        [
            additivity_errors(d["values"][None], np.array([d["base_value"]]), np.array([d["output"]]))
            for d in per.values()
        ]
    )
    rho = [stability([run[i][at][None] for run in runs]) for i, at in enumerate(positions) if len(at) > 1]
    scores: dict[str, float] = {"additivity_error": float(errors.max())}
    if rho:
        scores["stability"] = float(np.mean(rho))
    return {
        "scores": scores,
        "details": {
            "stability_seeds": "each row's seed and two others, on the first 5 explained rows",
            "not_computed": "infidelity and sensitivity are computed for tabular explanations",
        },
        "flags": flags(scores),
    }


def run_text_explanation(
    model: ModelSpec,
    data: DatasetRef,
    request: Any,
    *,
    spec: Any,
    tokenizer_path: str | None,
    class_labels: list[Any] | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    from workers.engine.inference.registry import get_backend_class
    from workers.engine.processing.text import load_tokenizer, pad_token_id, prepare_text

    started = time.perf_counter()
    info, params = parse_method(request.method, request.method_params)
    if info.name not in TEXT_METHODS:
        raise EngineError(f"text explanations run {', '.join(TEXT_METHODS)} over tokens; not {info.name}")
    if tokenizer_path is None:
        raise EngineError("this text model has no tokenizer.json: register it with the model version")
    tokenizer = load_tokenizer(tokenizer_path)
    column = spec.text_column
    if column not in data.columns:
        raise EngineError(f"the data set has no text column {column!r}, which the model's processing spec reads")
    frame = _read(data, list(dict.fromkeys([column, *([data.label_column] if data.label_column else [])])))
    texts = frame[column].tolist()
    encoded = prepare_text(texts, tokenizer, spec)
    ids = encoded[spec.input_ids_name]
    mask = encoded[spec.attention_mask_name] if spec.attention_mask_name else np.ones_like(ids)
    _, pad_id = pad_token_id(tokenizer, spec)
    special_ids = [int(i) for i, t in tokenizer.get_added_tokens_decoder().items() if t.special]
    special = np.isin(ids, [*special_ids, pad_id])
    backend_cls = get_backend_class(request.backend)
    with backend_cls(model, device=request.device) as backend:
        output_name = _output_name(backend)
        stats = {"rows": 0, "calls": 0, "seconds": 0.0}

        def predict(batch_ids: Array, batch_mask: Array) -> Array:
            feed = {spec.input_ids_name: batch_ids.astype(spec.dtype)}
            if spec.attention_mask_name:
                feed[spec.attention_mask_name] = batch_mask.astype(spec.dtype)
            if spec.token_type_ids_name:
                feed[spec.token_type_ids_name] = np.zeros_like(batch_ids, dtype=spec.dtype)
            t0 = time.perf_counter()
            out = np.asarray(backend.predict(feed)[output_name], dtype=np.float64)
            stats["rows"] += len(batch_ids)
            stats["calls"] += 1
            stats["seconds"] += time.perf_counter() - t0
            return out.reshape(len(batch_ids), -1)

        step = max(1, int(request.batch_size))
        outputs = np.concatenate([predict(ids[i : i + step], mask[i : i + step]) for i in range(0, len(ids), step)])
        predicted_idx = outputs.argmax(axis=1)
        labels = class_labels or list(range(outputs.shape[1]))
        predicted = np.array([str(labels[i]) if i < len(labels) else str(i) for i in predicted_idx], dtype=object)
        truth = frame[data.label_column].astype(str).to_numpy() if data.label_column in frame else None
        local = _choose(request.rows, len(frame), predicted, truth)
        sample = np.arange(min(request.global_rows, len(frame)))
        explained = np.union1d(local, sample).astype(np.int64)
        targets = predicted_idx if params.target is None else np.full(len(frame), params.target)
        if int(targets.max()) >= outputs.shape[1]:
            raise EngineError(f"target {params.target} is not an output of this model ({outputs.shape[1]} outputs)")
        nsamples = getattr(params, "nsamples", 512)
        stats.update(rows=0, calls=0, seconds=0.0)
        per: dict[int, dict[str, Any]] = {}
        for k, r in enumerate(explained):
            (one,) = token_attributions(
                predict, ids[r : r + 1], mask[r : r + 1], special[r : r + 1], baseline_id=pad_id,
                targets=targets[r : r + 1], nsamples=nsamples, seed=params.seed + int(r), batch_size=step,
            )  # fmt: skip
            per[int(r)] = one
            if progress is not None:
                progress(k + 1, len(explained))
        model_rows, model_calls, model_seconds = stats["rows"], stats["calls"], stats["seconds"]
        # Stability: the first rows again with two other seeds, ranked over their tokens.
        again = [int(r) for r in explained[:5]]
        runs: list[list[Array]] = [[per[r]["values"] for r in again]]
        for s in (1, 2):
            runs.append(
                [
                    token_attributions(
                        predict, ids[r : r + 1], mask[r : r + 1], special[r : r + 1], baseline_id=pad_id,
                        targets=targets[r : r + 1], nsamples=nsamples, seed=params.seed + int(r) + 7919 * s,
                        batch_size=step,
                    )[0]["values"]
                    for r in again
                ]
            )  # fmt: skip
        describe = backend.describe()

    def positions(r: int) -> Array:
        return np.flatnonzero(~special[r] & (mask[r] != 0))

    trust = _trust(per, runs, [positions(r) for r in again])
    importance: dict[str, float] = {}
    for r in sample:
        for p in positions(int(r)):
            token = tokenizer.id_to_token(int(ids[r, p])) or str(int(ids[r, p]))
            importance[token] = importance.get(token, 0.0) + abs(float(per[int(r)]["values"][p]))
    ranked = sorted(importance.items(), key=lambda kv: -kv[1])[:TOP_TOKENS]

    def row(r: int) -> dict[str, Any]:
        at = positions(r)
        return {
            "row": r,
            "text": texts[r],
            "target": str(labels[targets[r]]) if targets[r] < len(labels) else int(targets[r]),
            "predicted": str(predicted[r]),
            "label": None if truth is None else str(truth[r]),
            "output": per[r]["output"],
            "base_value": per[r]["base_value"],
            "features": [tokenizer.id_to_token(int(ids[r, p])) or str(int(ids[r, p])) for p in at],
            "values": [float(per[r]["values"][p]) for p in at],
            "feature_values": [int(p) for p in at],
        }

    return {
        "modality": "text",
        "method": info.name,
        "library": info.library,
        "method_title": info.title,
        "kind": info.kind,
        "params": params.__dict__,
        "seed": params.seed,
        "features": [t for t, _ in ranked],
        "output": output_name,
        "classes": [str(c) for c in labels],
        "baseline": "pad",
        "background": {"kind": "pad", "rows": 1, "weights": [1.0]},
        "rows": len(explained),
        "explained": [row(int(r)) for r in local],
        "global": {
            "rows": len(sample),
            "importance": [v / max(1, len(sample)) for _, v in ranked],
            "values": [],
            "feature_values": [],
        },
        "trust": trust,
        "budget": {
            "model_rows": int(model_rows),
            "model_calls": int(model_calls),
            "model_seconds": round(float(model_seconds), 4),
            "explain_seconds": round(time.perf_counter() - started, 4),
        },
        "backend": describe,
    }
