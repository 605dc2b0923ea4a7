from __future__ import annotations

from typing import Any

from django import forms

from evalsvc.registry.selectors import dataset_versions_for_user, model_versions_for_user


class RunSubmitForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[
            ("evaluate", "Evaluation: metrics on a labelled data set"),
            ("parity", "Backend parity: the same inputs on every engine and device"),
            ("quantize", "Quantization: FP16 and INT8 variants, compared with the parent"),
        ],
        initial="evaluate",
        required=False,
    )
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
        data = self.cleaned_data
        params: dict[str, Any] = {"batch_size": data["batch_size"]}
        if data.get("label_column"):
            params["label_column"] = data["label_column"]
        if data["kind"] == "evaluate":
            params.update(backend=data["backend"], device=data["device"])
            if data.get("task"):
                params["task"] = data["task"]
        return params
