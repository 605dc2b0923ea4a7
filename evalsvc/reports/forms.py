from __future__ import annotations

from typing import Any

from django import forms

from evalsvc.core.forms import field_of
from evalsvc.core.users import AnyUser
from evalsvc.evaluations.models import EvaluationRun, RunStatus
from evalsvc.evaluations.selectors import runs_for_user
from evalsvc.monitoring.models import Monitor
from evalsvc.monitoring.selectors import monitors_for_user
from evalsvc.registry.models import ModelVersion
from evalsvc.registry.selectors import model_versions_for_user


class RunChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, run: Any) -> str:
        on = f" on {run.dataset_version}" if run.dataset_version else ""
        return f"{run.kind} {str(run.pk)[:8]}{on} · finished {run.finished_at:%Y-%m-%d %H:%M}"


class ReportBuilderForm(forms.Form):
    model_version = forms.ModelChoiceField(queryset=ModelVersion.objects.none())
    runs = RunChoiceField(
        queryset=EvaluationRun.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Jobs to include",
    )
    title = forms.CharField(max_length=300, required=False, help_text="Default: “Model audit report: <model> v<n>”.")
    monitor = forms.ModelChoiceField(
        queryset=Monitor.objects.none(), required=False, label="Monitor's history to include (optional)"
    )
    monitor_start = forms.DateTimeField(required=False, label="From", help_text="YYYY-MM-DD or YYYY-MM-DD HH:MM, UTC.")
    monitor_end = forms.DateTimeField(required=False, label="Until (before)")

    def __init__(self, *args: Any, user: AnyUser, model_version: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field_of(self, "model_version", forms.ModelChoiceField).queryset = model_versions_for_user(user=user)
        runs = runs_for_user(user=user, status=RunStatus.SUCCEEDED)
        field_of(self, "runs", RunChoiceField).queryset = (
            runs.filter(model_version=model_version) if model_version else runs.none()
        )
        monitors = monitors_for_user(user=user)
        field_of(self, "monitor", forms.ModelChoiceField).queryset = (
            monitors.filter(model_version=model_version) if model_version else monitors.none()
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("monitor") and not (data.get("monitor_start") and data.get("monitor_end")):
            raise forms.ValidationError("give the period of the monitor's history: from and until")
        return data

    def monitors_for_service(self) -> list[dict[str, Any]] | None:
        d = self.cleaned_data
        if not d.get("monitor"):
            return None
        return [{"monitor": str(d["monitor"].pk), "start": d["monitor_start"], "end": d["monitor_end"]}]


class VerifyForm(forms.Form):
    file = forms.FileField(allow_empty_file=True, help_text="A PDF report to check against what evalsvc issued.")
