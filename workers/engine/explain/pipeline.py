"""The ``explain`` job on a tabular data set: rows chosen, attributions in the user's columns, trust, budget.

One function, :func:`run_explanation`, takes plain values (the model file,
the data set, the processing spec, a :class:`ExplainRequest`) and returns the
result as a JSON-ready dict; a task stores it as is.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workers.engine.arrays import Array
from workers.engine.datasets import iter_batches
from workers.engine.errors import EngineError
from workers.engine.explain.budget import estimate_model_rows, model_rows_per_second, samples_for_time, sampling_error
from workers.engine.explain.drift import attribution_drift
from workers.engine.explain.faithfulness import assess
from workers.engine.explain.forward import Forward, forward_from_predict
from workers.engine.explain.methods import Attributions, Inputs, run_method
from workers.engine.explain.params import parse_method
from workers.engine.explain.selection import RowFilter, cohorts, global_importance, select_rows
from workers.engine.explain.tabular import TabularView, baseline_rows, tabular_view
from workers.engine.types import DatasetRef, ModelSpec, ProgressCallback

__all__ = ["BLOCK_ROWS", "ExplainRequest", "TabularExplanation", "block_seed", "run_explanation"]

#: Rows read from a data set at most (explanations are over samples of it).
MAX_READ_ROWS = 200_000
#: Rows explained per method call (the unit of progress and of seeding; a split job's parts are whole blocks).
BLOCK_ROWS = 16


@dataclass(frozen=True)
class ExplainRequest:
    method: str
    method_params: dict[str, Any] = field(default_factory=dict)
    #: {"indices": [...]} or {"filter": "misclassified" | "predicted_class" | "column_value", "value", "column"}.
    rows: dict[str, Any] = field(default_factory=lambda: {"indices": [0]})
    #: Rows of the data set explained for global importance (the first ones), 0 for none.
    global_rows: int = 50
    baseline: str = "mean"
    background_k: int = 10
    time_budget_s: float | None = None
    cohort_by: str | None = None
    feature_columns: tuple[str, ...] | None = None
    backend: str = "onnxruntime"
    device: str = "cpu"
    batch_size: int = 8192
    stability_seeds: int = 3
    #: Image data sets: side in pixels of the square patches of the original image that are the features.
    patch_size: int = 8
    #: Image data sets: SLIC superpixels of each original image as the features instead of patches (about this many).
    superpixels: int | None = None


def _read(data: DatasetRef, columns: list[str]) -> pd.DataFrame:
    frames, n = [], 0
    for frame in iter_batches(data, 8192, columns=columns):
        frames.append(frame)
        n += len(frame)
        if n >= MAX_READ_ROWS:
            break
    if not frames:
        raise EngineError("the data set has no rows")
    return pd.concat(frames, ignore_index=True).iloc[:MAX_READ_ROWS]


def _output(backend: Any) -> tuple[str, str]:
    inputs = backend.input_specs
    if len(inputs) != 1:
        raise EngineError("tabular explanations need a model with one input (rows × columns)")
    floats = [o for o in backend.output_specs if "float" in (o.dtype or "") or o.dtype in ("tensor(float)", "double")]
    if not floats:
        floats = list(backend.output_specs)
    preferred = [o for o in floats if o.shape is not None and len(o.shape) == 2] or floats
    return inputs[0].name, preferred[0].name


def run_explanation(
    model: ModelSpec,
    data: DatasetRef,
    request: ExplainRequest,
    *,
    processing: dict[str, Any] | None = None,
    reference: DatasetRef | None = None,
    class_labels: list[Any] | None = None,
    progress: ProgressCallback | None = None,
    tokenizer_path: str | None = None,
) -> dict[str, Any]:
    """The explanation: over patches of the images for a model with an image input spec, over the tokens for one
    with a text input spec, else over the columns."""
    if processing and (processing.get("input") or {}).get("kind") == "text":
        from workers.engine.explain.text_pipeline import run_text_explanation
        from workers.engine.processing import parse_processing_spec

        return run_text_explanation(
            model, data, request, spec=parse_processing_spec(processing).input, tokenizer_path=tokenizer_path,
            # The spec's label map names the classes of a model that does not name them itself.
            class_labels=class_labels or (processing.get("output") or {}).get("labels"), progress=progress,
        )  # fmt: skip
    image_spec = _image_input(processing)
    if image_spec is not None:
        from workers.engine.explain.image_pipeline import run_image_explanation

        return run_image_explanation(
            model, data, request, spec=image_spec, class_labels=class_labels, progress=progress
        )
    return _run_tabular(
        model, data, request, processing=processing, reference=reference, class_labels=class_labels, progress=progress
    )


def _run_tabular(
    model: ModelSpec,
    data: DatasetRef,
    request: ExplainRequest,
    *,
    processing: dict[str, Any] | None = None,
    reference: DatasetRef | None = None,
    class_labels: list[Any] | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    with TabularExplanation(
        model, data, request, processing=processing, reference=reference, class_labels=class_labels
    ) as explanation:
        return explanation.finish([explanation.explain(0, explanation.rows, progress=progress)])


def block_seed(seed: int, block: int) -> int:
    """The seed of the ``block``-th run of :data:`BLOCK_ROWS` explained rows: the job's seed for the first, then
    one derived from (seed, block), so the draws differ between blocks and do not depend on how the rows are
    split across workers."""
    if block == 0:
        return seed
    return int(np.random.SeedSequence([seed, block]).generate_state(1, dtype=np.uint32)[0])


class TabularExplanation:
    """An explanation of a tabular data set in three steps, so its rows can be split across workers.

    Opening it (a context manager: the backend stays loaded) reads the data,
    selects the rows to explain (:attr:`rows` of them, the chosen ones and the
    global sample), builds the background and, for a time budget, chooses the
    sample count. :meth:`explain` attributes positions ``start:stop`` of those
    rows, in blocks of :data:`BLOCK_ROWS` each seeded by :func:`block_seed`,
    and returns plain arrays; :meth:`finish` joins every range's arrays (in
    order) into the result, with the trust scores, drift and cohorts.

    Everything but the time-budget choice is a function of the request, so
    any process that opens the same request gets the same rows and
    background; :attr:`decided` is that choice, passed back as ``decided`` so
    every part of a split job uses the same sample count.
    """

    def __init__(
        self,
        model: ModelSpec,
        data: DatasetRef,
        request: ExplainRequest,
        *,
        processing: dict[str, Any] | None = None,
        reference: DatasetRef | None = None,
        class_labels: list[Any] | None = None,
        decided: dict[str, Any] | None = None,
    ) -> None:
        self.model, self.data, self.request = model, data, request
        self.processing, self.reference, self.class_labels = processing, reference, class_labels
        self._decided = decided
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> TabularExplanation:
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _open(self) -> None:
        from workers.engine.inference.registry import get_backend_class

        self.started = time.perf_counter()
        request, data, reference = self.request, self.data, self.reference
        info, params = parse_method(request.method, request.method_params)
        spec = None
        if self.processing and self.processing.get("input"):
            from workers.engine.processing import parse_processing_spec
            from workers.engine.processing.spec import TabularInput

            parsed = parse_processing_spec(self.processing).input
            if not isinstance(parsed, TabularInput):
                raise EngineError("explain jobs run on tabular data sets; this model's processing spec is not tabular")
            spec = parsed
        columns = list(request.feature_columns or [c for c in data.columns if c != data.label_column])
        view = tabular_view(spec, columns)
        label = [data.label_column] if data.label_column else []
        frame = _read(data, list(dict.fromkeys([*view.columns, *label])))
        z = view.encode(frame)
        backend_cls = get_backend_class(request.backend)
        backend = self._stack.enter_context(backend_cls(self.model, device=request.device))
        input_name, output_name = _output(backend)
        dtype = np.float64 if "double" in (backend.input_specs[0].dtype or "") else np.float32
        model_fwd = forward_from_predict(
            backend.predict, input_name=input_name, output_name=output_name, batch_size=request.batch_size, dtype=dtype
        )
        user_fwd = view.forward(model_fwd)
        outputs = user_fwd(z)
        predicted_idx = outputs.argmax(axis=1)
        labels = self.class_labels or list(range(outputs.shape[1]))
        predicted = np.array([labels[i] if i < len(labels) else i for i in predicted_idx], dtype=object)
        truth = frame[data.label_column].to_numpy() if data.label_column in frame else None
        rule = _rule(request.rows)
        local = select_rows(
            rule,
            n_rows=len(frame),
            predicted=predicted,
            labels=truth,
            column=frame[rule.column].to_numpy() if rule.column and rule.column in frame else None,
        )
        if len(local) == 0:
            raise EngineError(f"no row of the data set matches the row filter {request.rows}")
        sample = np.arange(min(request.global_rows, len(frame)))
        explained = np.union1d(local, sample).astype(np.int64)
        ref_z = view.encode(_read(reference, list(view.columns))) if reference is not None else z
        bg, bg_w = baseline_rows("kmeans", ref_z, view.categorical, k=request.background_k, seed=params.seed)
        base_row, _ = baseline_rows(request.baseline, ref_z, view.categorical)
        targets_all = predicted_idx if params.target is None else np.full(len(frame), params.target)
        budget: dict[str, Any] = {}
        if request.time_budget_s is not None:
            if request.method != "kernel_shap":
                raise EngineError("a time budget sets KernelSHAP's sample count; give nsamples for other methods")
            if self._decided is None:
                speed = model_rows_per_second(user_fwd, z[:256])
                # The trust scores explain again: 3 rows x 5 perturbations (sensitivity), 5 rows per extra seed.
                again = 3 * 5 + min(5, len(explained)) * (request.stability_seeds - 1)
                n = samples_for_time(
                    request.time_budget_s * 0.8, rows=len(explained) + again, features=z.shape[1],
                    background_rows=len(bg), rows_per_second=speed,
                )  # fmt: skip
                chosen: dict[str, Any] = {"time_budget_s": request.time_budget_s, "model_rows_per_second": speed}
                chosen["chosen_nsamples"] = n
                chosen["sampling_error"] = sampling_error(
                    user_fwd, z[explained[:1]], bg, nsamples=n, background_weights=bg_w
                )
                self._decided = {"budget": chosen}
            budget.update(self._decided["budget"])
            params = type(params)(**{**params.__dict__, "nsamples": int(budget["chosen_nsamples"])})
        gradient = info.kind == "gradient"
        torch_form = None
        if gradient:
            from workers.engine.explain.torch_form import load_torch_form

            torch_form = load_torch_form(
                self.model, check_rows=view.to_model(z[:64]), onnx_predict=lambda a: model_fwd(np.asarray(a))
            )
        self.x_all = view.to_model(z).astype(np.float64) if gradient else z
        self.base = view.to_model(base_row).astype(np.float64) if gradient else base_row
        self.background = view.to_model(bg).astype(np.float64) if gradient else bg
        self.groups = view.model_groups() if gradient and len(view.model_groups()) != len(view.columns) else None
        self.forward: Forward = model_fwd if gradient else user_fwd
        budget["estimated_model_rows"] = estimate_model_rows(
            request.method, params, rows=len(explained), features=len(view.columns), background_rows=len(bg)
        )
        self.info, self.params, self.view, self.frame, self.z = info, params, view, frame, z
        self.backend, self.output_name, self.user_fwd, self.model_fwd = backend, output_name, user_fwd, model_fwd
        self.labels, self.predicted, self.truth, self.local, self.sample = labels, predicted, truth, local, sample
        self.explained, self.ref_z, self.bg, self.bg_w, self.targets_all = explained, ref_z, bg, bg_w, targets_all
        self.gradient, self.torch_form, self.budget = gradient, torch_form, budget

    @property
    def rows(self) -> int:
        """How many rows the job explains (the chosen ones and the global sample)."""
        return len(self.explained)

    @property
    def decided(self) -> dict[str, Any]:
        """What was chosen when it opened and must be the same in every part of a split job (JSON-ready)."""
        return dict(self._decided or {})

    def explain(self, start: int, stop: int, *, progress: ProgressCallback | None = None) -> dict[str, Array]:
        """Attributions of the explained rows at positions ``start:stop``; ``start`` is a multiple of BLOCK_ROWS."""
        if start % BLOCK_ROWS or not 0 <= start <= stop <= self.rows:
            raise ValueError(f"rows {start}:{stop} are not a range of blocks of the {self.rows} explained rows")
        self.forward.reset()
        n = stop - start
        values = np.zeros((n, len(self.view.columns)))
        out_vals, base_vals = np.zeros(n), np.full(n, np.nan)
        deltas, steps = np.full(n, np.nan), np.zeros(n, dtype=np.int64)
        for first in range(start, stop, BLOCK_ROWS):
            rows = self.explained[first : min(first + BLOCK_ROWS, stop)]
            at = slice(first - start, first - start + len(rows))
            params = type(self.params)(
                **{**self.params.__dict__, "seed": block_seed(self.params.seed, first // BLOCK_ROWS)}
            )
            inputs = Inputs(
                self.x_all[rows], self.base, self.background, self.bg_w, self.groups, self.targets_all[rows]
            )
            a = run_method(self.info, params, inputs, forward=self.forward, torch_form=self.torch_form)
            values[at], out_vals[at] = a.values, a.outputs
            if a.base_values is not None:
                base_vals[at] = a.base_values
            if a.deltas is not None:
                deltas[at] = a.deltas
                steps[at] = a.steps if a.steps is not None else 0
            if progress is not None:
                progress(at.stop, n)
        stats = self.forward.stats
        return {
            "values": values, "outputs": out_vals, "base_values": base_vals, "deltas": deltas, "steps": steps,
            "model_rows": np.array(stats.rows), "model_calls": np.array(stats.calls),
            "model_seconds": np.array(stats.seconds),
        }  # fmt: skip

    def finish(self, parts: list[dict[str, Array]], *, seconds: float | None = None) -> dict[str, Any]:
        """The result from every range's arrays in row order; ``seconds``: the job's time, where it was split."""
        info, params, view, explained = self.info, self.params, self.view, self.explained
        gradient, forward, torch_form = self.gradient, self.forward, self.torch_form
        values = np.concatenate([p["values"] for p in parts]).reshape(-1, len(view.columns))
        out_vals = np.concatenate([p["outputs"] for p in parts])
        base_vals = np.concatenate([p["base_values"] for p in parts])
        all_deltas = np.concatenate([p["deltas"] for p in parts])
        all_steps = np.concatenate([p["steps"] for p in parts])
        if len(values) != len(explained):
            raise EngineError(f"the parts hold {len(values)} explained rows, not {len(explained)}", permanent=False)
        deltas = None if np.isnan(all_deltas).all() else all_deltas
        budget = dict(self.budget)
        budget.update(
            model_rows=int(sum(int(p["model_rows"]) for p in parts)),
            model_calls=int(sum(int(p["model_calls"]) for p in parts)),
            model_seconds=round(float(sum(float(p["model_seconds"]) for p in parts)), 4),
        )
        if gradient:
            # Gradient methods run the torch form, not the forward: count its passes from what ran.
            budget["model_rows"] = (
                int(all_steps.sum() + 2 * len(explained)) if deltas is not None else budget["estimated_model_rows"]
            )
            budget["model_rows_counted"] = "torch forward and backward passes, from the steps each row used"
        budget["explain_seconds"] = round(time.perf_counter() - self.started if seconds is None else seconds, 4)
        if len(parts) > 1:
            budget["parts"] = len(parts)
        merged = Attributions(
            values=values, outputs=out_vals, base_values=None if np.isnan(base_vals).all() else base_vals,
            deltas=deltas, steps=None if deltas is None else all_steps,
        )  # fmt: skip
        scale = _noise_scale(self.x_all, view, gradient)
        base, background, bg_w, groups, targets_all = (
            self.base,
            self.background,
            self.bg_w,
            self.groups,
            self.targets_all,
        )
        trust = assess(
            info, params, Inputs(self.x_all[explained], base, background, bg_w, groups, targets_all[explained]),
            merged, forward=forward, torch_form=torch_form, scale=scale,
            expand=(lambda v: v[:, view.model_groups()] / _group_sizes(view)) if gradient and groups is not None
            else (lambda v: v),
            baseline_output=forward(base)[0][targets_all[explained]] if deltas is not None else None,
            seeds=self.request.stability_seeds,
        )  # fmt: skip
        describe = self.backend.describe()
        drift_reference = None
        local, sample, labels, predicted, truth, z = (
            self.local,
            self.sample,
            self.labels,
            self.predicted,
            self.truth,
            self.z,
        )
        if self.reference is not None and len(sample) and not gradient:
            # The same method on as many reference rows: what drove the model on the reference data.
            ref_rows = self.ref_z[: len(sample)]
            ref_out = run_method(
                info, params,
                Inputs(ref_rows, base, background, bg_w, None, self.user_fwd(ref_rows).argmax(axis=1)),
                forward=self.user_fwd,
            )  # fmt: skip
            drift_reference = global_importance(ref_out.values)
        where = {int(r): k for k, r in enumerate(explained)}
        result: dict[str, Any] = {
            "method": info.name,
            "library": info.library,
            "method_title": info.title,
            "kind": info.kind,
            "params": params.__dict__,
            "seed": params.seed,
            "features": list(view.columns),
            "output": self.output_name,
            "classes": [str(c) for c in labels],
            "baseline": self.request.baseline,
            "background": {"kind": "kmeans", "rows": len(self.bg), "weights": [float(w) for w in bg_w]},
            #: Data set rows the job explained (the chosen ones and the global sample), as every kind counts rows.
            "rows": len(explained),
            "explained": [
                {
                    "row": int(r),
                    "target": str(labels[targets_all[r]]) if targets_all[r] < len(labels) else int(targets_all[r]),
                    "predicted": str(predicted[r]),
                    "label": None if truth is None else str(truth[r]),
                    "output": float(out_vals[where[int(r)]]),
                    "base_value": None if merged.base_values is None else float(merged.base_values[where[int(r)]]),
                    "values": [float(v) for v in values[where[int(r)]]],
                    "feature_values": [float(v) for v in z[r]],
                }
                for r in local
            ],
            "global": {
                "rows": len(sample),
                "importance": global_importance(values[[where[int(r)] for r in sample]]).tolist()
                if len(sample)
                else [],
                "values": values[[where[int(r)] for r in sample]].tolist(),
                "feature_values": z[sample].tolist(),
            },
            "trust": trust.to_dict(),
            "budget": budget,
            "backend": describe,
        }
        if self.request.cohort_by and len(sample):
            keys = _cohort_keys(self.request.cohort_by, self.frame, predicted, truth)[sample]
            groups_by = cohorts(values[[where[int(r)] for r in sample]], keys)
            result["cohorts"] = {"by": self.request.cohort_by, "groups": groups_by}
        if drift_reference is not None:
            result["attribution_drift"] = attribution_drift(
                drift_reference, result["global"]["importance"], list(view.columns)
            )
        return result


def _image_input(processing: dict[str, Any] | None) -> Any:
    """The model's image input spec, where it has one: the explanation is then over patches of the images."""
    if not processing or not processing.get("input") or processing["input"].get("kind") != "image":
        return None
    from workers.engine.processing import parse_processing_spec

    return parse_processing_spec(processing).input


def _rule(rows: dict[str, Any]) -> RowFilter:
    if "indices" in rows:
        return RowFilter("indices", indices=tuple(int(i) for i in rows["indices"]), limit=0)
    return RowFilter(
        rows.get("filter", ""), value=rows.get("value"), column=rows.get("column"), limit=int(rows.get("limit", 20))
    )


def _cohort_keys(by: str, frame: pd.DataFrame, predicted: Array, truth: Array | None) -> Array:
    if by == "label":
        if truth is None:
            raise EngineError("cohorts by label need the data set's label column")
        return np.asarray(truth).astype(str)
    if by == "prediction":
        return np.asarray(predicted).astype(str)
    if by not in frame:
        raise EngineError(f"cohorts by {by!r}: the data set has no such column")
    return np.asarray(frame[by].astype(str).to_numpy())


def _group_sizes(view: TabularView) -> Array:
    ids = view.model_groups()
    return np.bincount(ids)[ids].astype(np.float64)


def _noise_scale(x: Array, view: TabularView, gradient: bool) -> Array:
    sd = x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    if not gradient:
        sd[view.categorical] = 0.0  # a category code is not perturbed by noise
    return sd
