from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from evalsvc.core.forms import field_of
from evalsvc.core.users import AnyUser
from evalsvc.teams.models import WRITE_ROLES, Team


def writable_teams(user: AnyUser) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user, memberships__role__in=WRITE_ROLES).distinct()


class UploadForm(forms.Form):
    """What both upload forms ask: the team (one the user may write to), a name, the file, notes."""

    team = forms.ModelChoiceField(queryset=Team.objects.none(), to_field_name="slug")
    name = forms.CharField(max_length=200)
    file = forms.FileField(allow_empty_file=True)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, user: AnyUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        teams = writable_teams(user)
        team = field_of(self, "team", forms.ModelChoiceField)
        team.queryset = teams
        only = list(teams[:2])
        if len(only) == 1:  # nothing to choose: the one team is chosen already
            team.initial = only[0].slug
            team.empty_label = None


class OptionalJSONField(forms.JSONField):
    """A JSON field that shows an empty box, not the text ``null``, when there is no value."""

    def prepare_value(self, value: Any) -> Any:
        return "" if value is None else super().prepare_value(value)


class ModelUploadForm(UploadForm):
    file = forms.FileField(
        allow_empty_file=True,
        help_text="ONNX (.onnx), TorchScript (.pt), torch.export (.pt2), OpenVINO IR (.xml) or TFLite (.tflite).",
    )
    weights = forms.FileField(required=False, allow_empty_file=True, help_text="OpenVINO IR only: the .bin file.")
    tokenizer = forms.FileField(required=False, allow_empty_file=True, help_text="Text models: tokenizer.json.")
    processing = OptionalJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": '{"output": {"activation": "softmax"}}'}),
        help_text="Declared pre/post-processing (JSON), applied identically by every backend and job.",
    )


class DatasetUploadForm(UploadForm):
    file = forms.FileField(
        allow_empty_file=True, help_text="CSV (UTF-8, header row), Parquet, or a .zip of class folders of images."
    )
    label_column = forms.CharField(
        required=False,
        # The page offers a CSV's header names as soon as the file is chosen (label-columns, from its first line).
        widget=forms.TextInput(attrs={"list": "label-columns", "autocomplete": "off"}),
        help_text="The column holding the true labels or targets; a CSV's columns are offered once it is chosen.",
    )
