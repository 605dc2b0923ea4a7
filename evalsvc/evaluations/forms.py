from __future__ import annotations

from typing import Any

from django import forms

from evalsvc.registry.selectors import dataset_versions_for_user, model_versions_for_user


class RunSubmitForm(forms.Form):
    model_version = forms.ModelChoiceField(queryset=None)
    dataset_version = forms.ModelChoiceField(queryset=None)
    task = forms.ChoiceField(
        choices=[("", "infer from the model"), ("classification", "classification"), ("regression", "regression")],
        required=False,
    )
    label_column = forms.CharField(required=False, help_text="Leave empty to use the data set's label column.")
    batch_size = forms.IntegerField(min_value=1, max_value=65536, initial=256)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model_version"].queryset = model_versions_for_user(user=user)
        self.fields["dataset_version"].queryset = dataset_versions_for_user(user=user)

    def params(self) -> dict[str, Any]:
        data = self.cleaned_data
        params: dict[str, Any] = {"batch_size": data["batch_size"]}
        if data.get("task"):
            params["task"] = data["task"]
        if data.get("label_column"):
            params["label_column"] = data["label_column"]
        return params
