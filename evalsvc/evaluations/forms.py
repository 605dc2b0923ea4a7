from __future__ import annotations

from typing import Any

from django import forms

from evalsvc.registry.selectors import dataset_versions_for_user, model_versions_for_user

from .kinds import all_kinds


def _kind_choices() -> list[tuple[str, str]]:
    return [(kind.name, kind.summary) for kind in all_kinds()]


class RunSubmitForm(forms.Form):
    # The registered kinds (settings.EVALSVC_JOB_KINDS), read when the form is built.
    kind = forms.ChoiceField(choices=_kind_choices, initial="evaluate", required=False)
    model_version = forms.ModelChoiceField(queryset=None)
    dataset_version = forms.ModelChoiceField(queryset=None)
    task = forms.ChoiceField(
        choices=[("", "infer from the model"), ("classification", "classification"), ("regression", "regression")],
        required=False,
    )
    label_column = forms.CharField(required=False, help_text="Leave empty to use the data set's label column.")
    batch_size = forms.IntegerField(min_value=1, max_value=65536, initial=256)
    backend = forms.CharField(initial="onnxruntime", required=False, help_text="Evaluation only: the engine to run on.")
    device = forms.ChoiceField(choices=[(d, d) for d in ("cpu", "cuda", "gpu", "auto")], initial="cpu", required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["kind"] = data.get("kind") or "evaluate"
        data["backend"] = data.get("backend") or "onnxruntime"
        data["device"] = data.get("device") or "cpu"
        return data

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model_version"].queryset = model_versions_for_user(user=user)
        self.fields["dataset_version"].queryset = dataset_versions_for_user(user=user)

    def params(self) -> dict[str, Any]:
        """The form's fields as params; each kind's schema keeps the ones it has and drops the rest."""
        data = self.cleaned_data
        params: dict[str, Any] = {
            "batch_size": data["batch_size"],
            "backend": data["backend"],
            "device": data["device"],
        }
        for optional in ("label_column", "task"):
            if data.get(optional):
                params[optional] = data[optional]
        return params
