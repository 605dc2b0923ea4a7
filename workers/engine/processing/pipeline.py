"""Running a processing spec inside a job: rows in, model inputs built, outputs read back.

The input feed (:mod:`workers.engine.feed`) builds model inputs with
:class:`InputBuilder`, and the job pipelines read outputs with
:class:`OutputReader`, so every job builds inputs and reads outputs the same
way, whichever backend runs the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.labels import coerce_labels
from workers.engine.processing.post import PostResult, apply_output, sigmoid
from workers.engine.processing.spec import ImageInput, InputSpec, OutputSpec, TabularInput, TextInput
from workers.engine.tabular import list_names
from workers.engine.types import DatasetRef, TensorSpec

__all__ = [
    "InputBuilder",
    "OutputReader",
    "check_data_format",
    "input_columns",
    "regression_output",
]


def input_columns(spec: InputSpec) -> list[str]:
    """The data set columns the spec reads: feature columns, the text column, or ``image``."""
    if isinstance(spec, TabularInput):
        return list(spec.feature_columns)
    if isinstance(spec, TextInput):
        return [spec.text_column]
    return ["image"]


def check_data_format(spec: InputSpec | None, data: DatasetRef) -> None:
    """Image specs go with ImageFolder zips and nothing else does."""
    image_data = data.format == "imagefolder"
    if spec is None and image_data:
        raise EngineError("an image data set needs the model's processing spec to say how to prepare the images")
    if spec is not None and isinstance(spec, ImageInput) != image_data:
        raise EngineError(
            "an image processing spec needs an image data set (a zip of class folders) and an image data set needs "
            f"an image processing spec; this data set is {data.format} and the spec's input is {spec.kind}"
        )


class InputBuilder:
    """Builds the model's named inputs from a batch of rows with the spec's input part.

    Parameters
    ----------
    spec:
        The input part of the processing spec.
    inputs:
        The model's inputs as its backend or its file describes them; empty
        when the format records no signature (names then come from the spec,
        ``"input"`` by default).
    tokenizer_path:
        The model's ``tokenizer.json``, required for a text spec.
    """

    def __init__(self, spec: InputSpec, inputs: tuple[TensorSpec, ...], tokenizer_path: str | None = None) -> None:
        self.spec = spec
        self.tokenizer: Any = None
        known = {s.name: s for s in inputs}
        if isinstance(spec, TextInput):
            if tokenizer_path is None:
                raise EngineError("the processing spec tokenizes text but the model version has no tokenizer.json")
            from workers.engine.processing.text import load_tokenizer

            self.tokenizer = load_tokenizer(tokenizer_path)
            names = [n for n in (spec.input_ids_name, spec.attention_mask_name, spec.token_type_ids_name) if n]
            self.rename: dict[str, str] = {n: n for n in names}
        else:
            target = _single_input(known, spec.input_name) if known else spec.input_name or "input"
            self.rename = {spec.input_name or "input": target}
            if target in known:
                _check_tensor(spec, known[target])
        missing = [n for n in self.rename.values() if n not in known]
        unfed = [n for n in known if n not in self.rename.values()]
        if known and (missing or unfed):
            raise EngineError(
                f"the processing spec feeds {list_names(sorted(self.rename.values()))} but the model takes "
                f"{list_names(list(known))}"
            )
        first = known[next(iter(self.rename.values()))].shape if known else None
        self.fixed_rows = first[0] if first and isinstance(first[0], int) else None

    def build(self, frame: pd.DataFrame, offset: int) -> dict[str, Array]:
        """This batch's inputs under the model's names; messages count data rows from ``offset + 1``."""
        return {self.rename[k]: v for k, v in self._prepare(frame, offset).items()}

    def _prepare(self, frame: pd.DataFrame, offset: int) -> dict[str, Array]:
        spec = self.spec
        if isinstance(spec, TabularInput):
            from workers.engine.processing.tabular import prepare_tabular

            return prepare_tabular(frame, spec, row_offset=offset)
        if isinstance(spec, ImageInput):
            from workers.engine.processing.image import decode_image, prepare_images

            files = frame["image"].tolist()
            images = [decode_image(f.data, name=f"image {f.name!r}") for f in files]
            return {spec.input_name or "input": prepare_images(images, spec)}
        from workers.engine.processing.text import prepare_text

        return prepare_text(frame[spec.text_column].tolist(), self.tokenizer, spec, row_offset=offset)


def _check_tensor(spec: TabularInput | ImageInput, tensor: TensorSpec) -> None:
    if tensor.dtype != spec.dtype:
        raise EngineError(
            f"the model input {tensor.name!r} takes {tensor.dtype} but the processing spec makes {spec.dtype}; "
            "set input.dtype to match"
        )
    rank = 2 if isinstance(spec, TabularInput) else 4
    if tensor.shape is not None and len(tensor.shape) != rank:
        raise EngineError(
            f"the model input {tensor.name!r} has shape {list(tensor.shape)} but the processing spec makes "
            f"{rank}-D input"
        )
    if isinstance(spec, TabularInput) and tensor.shape is not None:
        width = tensor.shape[1]
        if isinstance(width, int) and width != spec.width:
            raise EngineError(
                f"the model input {tensor.name!r} takes {width} columns but the processing spec makes "
                f"{spec.width} (numeric columns plus one per category)"
            )


def _single_input(inputs: dict[str, TensorSpec], name: str | None) -> str:
    if name is not None:
        if name not in inputs:
            raise EngineError(
                f"the processing spec feeds input {name!r} but the model takes {list_names(list(inputs))}"
            )
        return name
    if len(inputs) != 1:
        raise EngineError(
            f"the model takes several inputs ({list_names(list(inputs))}); set input.input_name in the processing spec"
        )
    return next(iter(inputs))


class OutputReader:
    """Applies the spec's output part to each batch and keeps what classification scoring needs.

    After :meth:`read`, :attr:`output_specs` describes the post-processed
    outputs (``label``, ``probabilities``) the way a backend describes its
    own, so :class:`workers.engine.classifier.ClassifierHead` can read them.
    """

    def __init__(self, spec: OutputSpec) -> None:
        if spec.detection is not None:
            raise EngineError(
                "this job scores classification and regression; object-detection outputs cannot be scored by it"
            )
        self.spec = spec
        self.class_labels: list[Any] | None = None
        self.output_specs: tuple[TensorSpec, ...] = ()
        self._top_hits = 0
        self._top_rows = 0

    def read(self, outputs: dict[str, Array], truth: Array | None = None) -> dict[str, Array]:
        """Post-process one batch; returns ``{"label": ..., "probabilities": ...}``."""
        post = apply_output(outputs, self.spec)
        assert post.scores is not None and post.classes is not None
        count = post.scores.shape[1]
        if self.class_labels is None:
            self.class_labels = list(post.class_labels) if post.class_labels is not None else list(range(count))
            label_type = "string" if post.labels is not None else "int64"
            self.output_specs = (
                TensorSpec("label", label_type, (None,)),
                TensorSpec("probabilities", "float64", (None, count)),
            )
        elif len(self.class_labels) != count:
            raise EngineError(f"the model's output changed from {len(self.class_labels)} to {count} classes")
        if truth is not None and post.top_k is not None:
            self._count_top_k(post, truth)
        labels = post.labels if post.labels is not None else post.classes
        return {"label": labels, "probabilities": post.scores}

    def top_k_metrics(self) -> dict[str, float]:
        """``top_<k>_accuracy`` over the rows read, when the spec asks for top-k."""
        if self.spec.top_k is None or self._top_rows == 0:
            return {}
        return {f"top_{self.spec.top_k}_accuracy": self._top_hits / self._top_rows}

    def top_k_counts(self) -> tuple[int, int]:
        """Rows whose true label was among the top k, and rows counted."""
        return self._top_hits, self._top_rows

    def _count_top_k(self, post: PostResult, truth: Array) -> None:
        assert post.top_k is not None
        if post.top_k.labels is not None:
            best, kind = post.top_k.labels, "str"
        else:
            best, kind = post.top_k.indices, "int"
        y = coerce_labels(truth, kind, "the label column")
        self._top_hits += int((best == y[:, None]).any(axis=1).sum())
        self._top_rows += len(y)


def regression_output(outputs: dict[str, Array], spec: OutputSpec, default_name: str) -> Array:
    """The regression values of one batch: the spec's output (or ``default_name``) after its activation."""
    if spec.detection is not None or spec.labels is not None or spec.top_k is not None or spec.threshold is not None:
        raise EngineError("a regression model's processing spec may only set output_name and a sigmoid activation")
    if spec.activation == "softmax":
        raise EngineError("softmax makes class probabilities, not regression values")
    name = spec.output_name or default_name
    if name not in outputs:
        raise EngineError(f"the model has no output {name!r}; its outputs are: {', '.join(outputs)}")
    values = np.asarray(outputs[name], dtype=np.float64)
    return sigmoid(values) if spec.activation == "sigmoid" else values
