"""The browser's form for a new monitor; the service checks everything the API checks."""

from __future__ import annotations

from typing import Any

from django import forms

from evalsvc.core.forms import field_of
from evalsvc.core.users import AnyUser
from evalsvc.registry.models import DatasetVersion, ModelVersion
from evalsvc.registry.selectors import dataset_versions_for_user, model_versions_for_user


class MonitorForm(forms.Form):
    name = forms.CharField(max_length=200)
    model_version = forms.ModelChoiceField(queryset=ModelVersion.objects.none())
    reference_dataset = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.none(), help_text="Production rows are compared with it."
    )
    schedule = forms.CharField(initial="0 * * * *", help_text="Cron: minute hour day-of-month month day-of-week.")
    window_hours = forms.IntegerField(min_value=1, max_value=24 * 366, initial=24)
    alpha = forms.FloatField(min_value=1e-6, max_value=0.5, initial=0.05)
    correction = forms.ChoiceField(choices=[("bonferroni", "Bonferroni"), ("fdr", "FDR (Benjamini–Hochberg)"),
                                            ("none", "none")])  # fmt: skip
    row_id_column = forms.CharField(
        required=False, max_length=200, help_text="A column every batch carries naming its rows, for labels sent later."
    )
    attribution_drift = forms.BooleanField(
        required=False, initial=True, help_text="Compare global KernelSHAP importance with the reference's (nDCG)."
    )
    attribution_threshold = forms.FloatField(
        required=False, min_value=0.0, max_value=1.0, initial=0.9, help_text="Attribution drift below this nDCG."
    )
    webhook_url = forms.CharField(required=False, max_length=500)
    email_to = forms.CharField(required=False, help_text="Comma-separated addresses.")

    def __init__(self, *args: Any, user: AnyUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field_of(self, "model_version", forms.ModelChoiceField).queryset = model_versions_for_user(user=user)
        field_of(self, "reference_dataset", forms.ModelChoiceField).queryset = dataset_versions_for_user(user=user)

    def clean_email_to(self) -> list[str]:
        addresses = [a.strip() for a in (self.cleaned_data.get("email_to") or "").split(",") if a.strip()]
        validate = forms.EmailField().clean
        return [validate(a) for a in addresses]

    def data_for_service(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            "name": d["name"],
            "model_version": d["model_version"].pk,
            "reference_dataset": d["reference_dataset"].pk,
            "schedule": d["schedule"],
            "window_hours": d["window_hours"],
            "detectors": {
                "alpha": d["alpha"],
                "correction": d["correction"],
                "attribution_drift": bool(d.get("attribution_drift")),
                **(
                    {"attribution_threshold": d["attribution_threshold"]}
                    if d.get("attribution_threshold") is not None
                    else {}
                ),
            },  # fmt: skip
            "row_id_column": d.get("row_id_column") or "",
            "webhook_url": d["webhook_url"],
            "email_to": d["email_to"],
        }
