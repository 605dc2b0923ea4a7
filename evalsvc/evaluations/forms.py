from __future__ import annotations

from typing import Any

from django import forms

from evalsvc.core.forms import field_of
from evalsvc.fleet.selectors import offers
from evalsvc.registry.models import DatasetVersion, ModelVersion
from evalsvc.registry.selectors import dataset_versions_for_user, model_versions_for_user

from .kinds import all_kinds


def _kind_choices() -> list[tuple[str, str]]:
    return [(kind.name, kind.summary) for kind in all_kinds()]


class RunSubmitForm(forms.Form):
    # The registered kinds (settings.EVALSVC_JOB_KINDS), read when the form is built.
    kind = forms.ChoiceField(choices=_kind_choices, initial="evaluate", required=False)
    model_version = forms.ModelChoiceField(queryset=ModelVersion.objects.none())
    dataset_version = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.none(),
        required=False,
        help_text="A latency profile without one times synthetic inputs.",
    )
    task = forms.ChoiceField(
        choices=[("", "infer from the model"), ("classification", "classification"), ("regression", "regression")],
        required=False,
    )
    label_column = forms.CharField(required=False, help_text="Leave empty to use the data set's label column.")
    batch_size = forms.IntegerField(min_value=1, max_value=65536, initial=256)
    batch_sizes = forms.CharField(
        required=False, initial="1, 8, 32", help_text="Latency profile only: batch sizes to time, comma-separated."
    )
    slice_columns = forms.CharField(
        required=False,
        help_text="Evaluation only: columns to report metrics per slice of, comma-separated (numbers in quartiles).",
    )
    # What the running workers offer, read when the form is built: nothing to type, nothing absent to pick.
    backend = forms.ChoiceField(choices=(), required=False, help_text="Evaluation and profile: the engine to run on.")
    device = forms.ChoiceField(choices=(), required=False)

    def clean_batch_sizes(self) -> list[int]:
        text = (self.cleaned_data.get("batch_sizes") or "").replace(" ", "")
        try:
            sizes = [int(part) for part in text.split(",") if part]
        except ValueError:
            raise forms.ValidationError("batch sizes are whole numbers separated by commas, e.g. 1, 8, 32") from None
        if any(size < 1 for size in sizes):
            raise forms.ValidationError("batch sizes are at least 1")
        return sizes

    def clean_slice_columns(self) -> list[str]:
        return [part.strip() for part in (self.cleaned_data.get("slice_columns") or "").split(",") if part.strip()]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        data["kind"] = data.get("kind") or "evaluate"
        data["backend"] = data.get("backend") or "onnxruntime"
        data["device"] = data.get("device") or "cpu"
        return data

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field_of(self, "model_version", forms.ModelChoiceField).queryset = model_versions_for_user(user=user)
        field_of(self, "dataset_version", forms.ModelChoiceField).queryset = dataset_versions_for_user(user=user)
        offered = offers()
        backends = sorted({o.backend for o in offered}) or ["onnxruntime"]
        devices = sorted({o.device for o in offered}) or ["cpu"]
        backend, device = field_of(self, "backend", forms.ChoiceField), field_of(self, "device", forms.ChoiceField)
        backend.choices = [(b, b) for b in backends]
        backend.initial = "onnxruntime" if "onnxruntime" in backends else backends[0]
        device.choices = [(d, d) for d in devices]
        device.initial = "cpu" if "cpu" in devices else devices[0]

    def params(self) -> dict[str, Any]:
        """The form's fields as params; each kind's schema keeps the ones it has and drops the rest."""
        data = self.cleaned_data
        params: dict[str, Any] = {
            # Grid-shaped kinds (a latency profile) read these; the others drop them.
            "backends": [data["backend"]],
            "devices": [data["device"]],
            "batch_sizes": data.get("batch_sizes") or [data["batch_size"]],
            "batch_size": data["batch_size"],
            "backend": data["backend"],
            "device": data["device"],
        }
        for optional in ("label_column", "task", "slice_columns"):
            if data.get(optional):
                params[optional] = data[optional]
        return params
