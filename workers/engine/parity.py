"""Backend parity: does the accelerated engine give the validated model's answers?

The same input batches go through a reference target and each candidate
(backend × device × precision); per output we report the largest and mean
absolute and relative differences, and for classifier outputs how often the
predicted label agrees, with the rows that disagree most. A candidate that
cannot run records why, and the others still finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import BackendUnavailable, Cancelled, EngineError
from workers.engine.feed import fixed_rows, run_batch
from workers.engine.inference.registry import get_backend_class
from workers.engine.types import ModelSpec, ProgressCallback

#: Relative differences are taken against max(|reference|, REL_FLOOR) so that
#: outputs near zero do not turn rounding noise into huge ratios.
REL_FLOOR = 1e-6

Batches = Callable[[], Iterable[dict[str, Array]]]


@dataclass(frozen=True)
class Target:
    """Where to run: a backend, a device and a numeric precision."""

    backend: str
    device: str = "cpu"
    precision: str = "fp32"
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.backend}/{self.device}/{self.precision}"


@dataclass
class OutputDiff:
    name: str
    max_abs: float
    mean_abs: float
    max_rel: float
    mean_rel: float
    #: Share of rows whose predicted class (argmax, or the label itself) matches; None for non-class outputs.
    label_agreement: float | None
    disagreeing_rows: int | None


@dataclass
class CandidateResult:
    target: dict[str, Any]
    status: str  # "ok" | "unavailable" | "failed"
    error: str = ""
    backend: dict[str, Any] = field(default_factory=dict)
    outputs: list[OutputDiff] = field(default_factory=list)
    worst_rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class ParityResult:
    reference: dict[str, Any]
    reference_backend: dict[str, Any]
    rows: int
    candidates: list[CandidateResult]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _run(
    model: ModelSpec, target: Target, batches: Batches, on_batch: Callable[[int], None]
) -> tuple[dict[str, Array], dict[str, Any], float]:
    backend_cls = get_backend_class(target.backend)
    options = dict(target.options)
    if target.precision != "fp32":
        options["precision"] = target.precision
    started = time.perf_counter()
    collected: dict[str, list[Array]] = {}
    with backend_cls(model, device=target.device, options=options) as backend:
        described = backend.describe()
        fixed = fixed_rows(backend.input_specs)
        for batch in batches():
            outputs = run_batch(backend, batch, fixed)
            for name, value in outputs.items():
                collected.setdefault(name, []).append(np.asarray(value))
            on_batch(len(next(iter(batch.values()))))
    merged = {name: np.concatenate(parts, axis=0) for name, parts in collected.items()}
    return merged, described, time.perf_counter() - started


def _progress_counter(progress: ProgressCallback | None, total: int) -> tuple[Callable[[int], None], list[int]]:
    """Count rows over all passes; the caller may reset ``done[0]`` at each pass start."""
    done = [0]

    def on_batch(rows: int) -> None:
        done[0] += rows
        if progress is not None:
            progress(done[0], total)

    return on_batch, done


def _is_class_output(ref: Array) -> bool:
    if ref.dtype.kind in "iuUSOb" and ref.ndim == 1:
        return True
    return ref.dtype.kind == "f" and ref.ndim == 2 and ref.shape[1] >= 2


def _labels(values: Array) -> Array:
    if values.dtype.kind == "f" and values.ndim == 2:
        return np.asarray(values.argmax(axis=1))
    return values


def compare_outputs(name: str, ref: Array, cand: Array) -> tuple[OutputDiff, Array]:
    """Differences of one output; also returns each row's largest absolute difference."""
    if ref.shape != cand.shape:
        raise EngineError(f"output {name!r} has shape {cand.shape} here but {ref.shape} on the reference")
    agreement = disagreeing = None
    if _is_class_output(ref):
        same = _labels(ref) == _labels(cand)
        agreement = float(same.mean()) if same.size else 1.0
        disagreeing = int((~same).sum())
    if ref.dtype.kind not in "fiub":  # string labels: only agreement is meaningful
        per_row = (~(ref == cand)).astype(np.float64).reshape(len(ref), -1).max(axis=1)
        return OutputDiff(name, 0.0, 0.0, 0.0, 0.0, agreement, disagreeing), per_row
    a = ref.astype(np.float64)
    b = cand.astype(np.float64)
    absolute = np.abs(a - b)
    relative = absolute / np.maximum(np.abs(a), REL_FLOOR)
    rows = len(a)
    per_row = absolute.reshape(rows, -1).max(axis=1) if rows else absolute.reshape(0)
    diff = OutputDiff(
        name=name,
        max_abs=float(absolute.max()) if absolute.size else 0.0,
        mean_abs=float(absolute.mean()) if absolute.size else 0.0,
        max_rel=float(relative.max()) if relative.size else 0.0,
        mean_rel=float(relative.mean()) if relative.size else 0.0,
        label_agreement=agreement,
        disagreeing_rows=disagreeing,
    )
    return diff, per_row


def _worst_rows(ref: dict[str, Array], cand: dict[str, Array], per_row: Array, top_n: int) -> list[dict[str, Any]]:
    if not per_row.size:
        return []
    order = np.argsort(-per_row, kind="stable")[:top_n]
    class_outputs = [n for n, v in ref.items() if _is_class_output(v)]
    worst = []
    for index in order:
        entry: dict[str, Any] = {"row": int(index), "max_abs_diff": float(per_row[index])}
        for name in class_outputs[:1]:
            entry["reference_label"] = _labels(ref[name])[index].item()
            entry["candidate_label"] = _labels(cand[name])[index].item()
        worst.append(entry)
    return worst


def compare_backends(
    model: ModelSpec,
    batches: Batches,
    *,
    reference: Target,
    candidates: list[Target],
    total_rows: int,
    top_n: int = 10,
    progress: ProgressCallback | None = None,
    candidate_models: list[ModelSpec | None] | None = None,
) -> ParityResult:
    """Run the same batches on the reference and every candidate and compare outputs.

    Parameters
    ----------
    candidate_models:
        Per candidate, its own file of the same model (e.g. the TorchScript export
        of an ONNX network); ``None`` (or no list) runs the reference's file.
    batches:
        Called once per target; must yield the same input batches each time.
    total_rows:
        Rows per pass, for progress (reported over all passes).
    """
    on_batch, done = _progress_counter(progress, total_rows * (1 + len(candidates)))
    ref_outputs, ref_described, _ = _run(model, reference, batches, on_batch)
    rows = len(next(iter(ref_outputs.values()))) if ref_outputs else 0
    results = []
    for index, target in enumerate(candidates):
        done[0] = total_rows * (index + 1)
        own = candidate_models[index] if candidate_models else None
        results.append(_candidate(own or model, target, batches, ref_outputs, on_batch, top_n))
    return ParityResult(reference=asdict(reference), reference_backend=ref_described, rows=rows, candidates=results)


def compare_models(
    reference: ModelSpec,
    candidates: dict[str, ModelSpec],
    batches: Batches,
    *,
    target: Target,
    total_rows: int,
    top_n: int = 10,
    progress: ProgressCallback | None = None,
) -> ParityResult:
    """Like :func:`compare_backends`, but one target and several model files (e.g. quantized variants)."""
    on_batch, done = _progress_counter(progress, total_rows * (1 + len(candidates)))
    ref_outputs, ref_described, ref_seconds = _run(reference, target, batches, on_batch)
    rows = len(next(iter(ref_outputs.values()))) if ref_outputs else 0
    results = []
    for index, (name, model) in enumerate(candidates.items()):
        done[0] = total_rows * (index + 1)
        result = _candidate(model, target, batches, ref_outputs, on_batch, top_n)
        result.target = {**asdict(target), "model": name}
        results.append(result)
    reference_info = {**asdict(target), "model": "parent", "seconds": ref_seconds}
    return ParityResult(reference=reference_info, reference_backend=ref_described, rows=rows, candidates=results)


def _candidate(
    model: ModelSpec,
    target: Target,
    batches: Batches,
    ref_outputs: dict[str, Array],
    on_batch: Callable[[int], None],
    top_n: int,
) -> CandidateResult:
    result = CandidateResult(target=asdict(target), status="ok")
    try:
        outputs, result.backend, result.seconds = _run(model, target, batches, on_batch)
        outputs = _align_outputs(ref_outputs, outputs)
        missing = sorted(set(ref_outputs) - set(outputs))
        if missing:
            raise EngineError(f"outputs missing on {target.label}: {', '.join(missing)}")
        per_row_all = np.zeros(len(next(iter(ref_outputs.values()))))
        for name, ref in ref_outputs.items():
            diff, per_row = compare_outputs(name, ref, outputs[name])
            result.outputs.append(diff)
            per_row_all = np.maximum(per_row_all, per_row)
        result.worst_rows = _worst_rows(ref_outputs, outputs, per_row_all, top_n)
    except Cancelled:
        raise
    except EngineError as exc:
        result.status = "unavailable" if isinstance(exc, BackendUnavailable) else "failed"
        result.error = exc.message
    return result


def _align_outputs(ref: dict[str, Array], got: dict[str, Array]) -> dict[str, Array]:
    """Another format of the same model may name its outputs differently: pair them by position then."""
    if set(ref) <= set(got) or len(ref) != len(got):
        return got
    return dict(zip(ref, got.values(), strict=True))


def repeatable(factory: Callable[[], Iterator[dict[str, Array]]]) -> Batches:
    """Materialise batches once so every target sees identical arrays (and the file is read once)."""
    cache: list[dict[str, Array]] = []
    filled = [False]

    def batches() -> Iterable[dict[str, Array]]:
        if not filled[0]:
            for batch in factory():
                cache.append(batch)
                yield batch
            filled[0] = True
            return
        yield from cache

    return batches
