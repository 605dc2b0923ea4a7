from __future__ import annotations

from typing import Any

from django import forms

from evalsvc.evaluations.models import RunStatus
from evalsvc.evaluations.selectors import runs_for_user
from evalsvc.registry.selectors import model_versions_for_user


class RunChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, run: Any) -> str:
        on = f" on {run.dataset_version}" if run.dataset_version else ""
        return f"{run.kind} {str(run.pk)[:8]}{on} · finished {run.finished_at:%Y-%m-%d %H:%M}"


class ReportBuilderForm(forms.Form):
    model_version = forms.ModelChoiceField(queryset=None)
    runs = RunChoiceField(queryset=None, widget=forms.CheckboxSelectMultiple, required=False, label="Jobs to include")
    title = forms.CharField(max_length=300, required=False, help_text="Default: “Model audit report: <model> v<n>”.")

    def __init__(self, *args: Any, user: Any, model_version: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model_version"].queryset = model_versions_for_user(user=user)
        runs = runs_for_user(user=user, status=RunStatus.SUCCEEDED)
        self.fields["runs"].queryset = runs.filter(model_version=model_version) if model_version else runs.none()


class VerifyForm(forms.Form):
    file = forms.FileField(allow_empty_file=True, help_text="A PDF report to check against what evalsvc issued.")
