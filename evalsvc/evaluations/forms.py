"""The job form: the fields every job has, then each registered kind's own, read from its params schema.

A kind lists the params it offers in the browser (``JobKind.form``); each becomes
a form field shaped by the kind's serializer field of that name (number bounds,
choices, default, help). A field several kinds offer is one field. The page
shows the chosen kind's fields only (``data-kinds``), and ``params()`` sends
only those, so every other param keeps its default.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from rest_framework import serializers

from evalsvc.core.forms import field_of
from evalsvc.core.users import AnyUser
from evalsvc.fleet.selectors import offers
from evalsvc.registry.models import DatasetVersion, ModelVersion
from evalsvc.registry.selectors import dataset_versions_for_user, model_versions_for_user

from .kinds import FormField, JobKind, all_kinds

#: Form fields for what live workers offer: one select each, whichever kind's param it fills.
OFFERED = {"backend": "backend", "device": "device"}


def _kind_choices() -> list[tuple[str, str]]:
    return [(kind.name, kind.summary) for kind in all_kinds()]


class RunSubmitForm(forms.Form):
    # The registered kinds (settings.EVALSVC_JOB_KINDS), read when the form is built.
    kind = forms.ChoiceField(choices=_kind_choices, initial="evaluate", required=False)
    model_version = forms.ModelChoiceField(queryset=ModelVersion.objects.none())
    dataset_version = forms.ModelChoiceField(queryset=DatasetVersion.objects.none(), required=False)

    def __init__(self, *args: Any, user: AnyUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field_of(self, "model_version", forms.ModelChoiceField).queryset = model_versions_for_user(user=user)
        datasets = dataset_versions_for_user(user=user)
        field_of(self, "dataset_version", forms.ModelChoiceField).queryset = datasets
        #: Each data set version's columns, for the page to offer only the chosen one's.
        self.dataset_columns = {str(d.pk): d.column_names for d in datasets}
        columns = sorted({c for names in self.dataset_columns.values() for c in names})
        offered = offers()
        self.offered = {
            "backend": sorted({o.backend for o in offered}) or ["onnxruntime"],
            "device": sorted({o.device for o in offered}) or ["cpu"],
        }
        self.kinds = {kind.name: kind for kind in all_kinds()}
        #: form field name → the kinds that offer it
        self.offered_by: dict[str, list[str]] = {}
        for kind in self.kinds.values():
            for spec in kind.form:
                name = OFFERED.get(spec.choose, spec.name)
                if name not in self.fields:
                    self.fields[name] = _form_field(kind, spec, columns=columns, offered=self.offered, user=user)
                self.offered_by.setdefault(name, []).append(kind.name)
        for name, kinds in self.offered_by.items():
            self.fields[name].widget.attrs["data-kinds"] = " ".join(kinds)
            self._defaults_per_kind(name, kinds)
        self.fields["dataset_version"].help_text = "Kinds that need none: " + (
            ", ".join(k.label.lower() for k in self.kinds.values() if not k.needs_dataset) or "none"
        )

    def _defaults_per_kind(self, name: str, kinds: list[str]) -> None:
        """A field several kinds offer with different defaults starts empty and names each kind's default."""
        defaults: dict[str, Any] = {}
        for kind_name in kinds:
            kind = self.kinds[kind_name]
            spec = next(f for f in kind.form if OFFERED.get(f.choose, f.name) == name)
            if spec.choose in OFFERED:
                return  # what the workers offer: the same choice for every kind
            default = _declared(kind, spec).default
            defaults[kind.label.lower()] = None if default is serializers.empty else default
        if len({repr(d) for d in defaults.values()}) < 2:
            return
        field = self.fields[name]
        field.initial = None
        said = ", ".join(f"{d} for {label}" for label, d in defaults.items() if d is not None)
        field.help_text = " ".join(p for p in (str(field.help_text or ""), f"Empty: {said}.") if p)

    def chosen_kind(self) -> JobKind:
        return self.kinds[self.cleaned_data.get("kind") or "evaluate"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["kind"] = data.get("kind") or "evaluate"
        kind = self.kinds.get(data["kind"])
        if kind is None:
            return data
        for spec in kind.form:
            name = OFFERED.get(spec.choose, spec.name)
            declared = _declared(kind, spec)
            if declared.required and _empty(data.get(name)) and name not in self.errors:
                self.add_error(name, f"{kind.label} needs this.")
        return data

    def params(self) -> dict[str, Any]:
        """The chosen kind's fields as its params; a field left empty is left out (the kind's default applies)."""
        kind = self.chosen_kind()
        params: dict[str, Any] = {}
        for spec in kind.form:
            value = self.cleaned_data.get(OFFERED.get(spec.choose, spec.name))
            if _empty(value):
                continue
            if isinstance(value, DatasetVersion):
                value = str(value.pk)
            if isinstance(_declared(kind, spec), serializers.ListField) and not isinstance(value, list):
                value = [value]
            params[spec.name] = value
        return params


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _declared(kind: JobKind, spec: FormField) -> serializers.Field:
    if kind.params is None:
        raise TypeError(f"job kind {kind.name!r} offers form fields but names no params serializer")
    return kind.params().fields[spec.name]


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _form_field(
    kind: JobKind, spec: FormField, *, columns: list[str], offered: dict[str, list[str]], user: AnyUser
) -> forms.Field:
    declared = _declared(kind, spec)
    help_text = str(declared.help_text or "")
    common: dict[str, Any] = {"required": False, "label": _label(spec.name), "help_text": help_text}
    if spec.choose in OFFERED:
        values = offered[spec.choose]
        preferred = {"backend": "onnxruntime", "device": "cpu"}[spec.choose]
        return forms.ChoiceField(
            choices=[(v, v) for v in values],
            initial=preferred if preferred in values else values[0],
            **common | {"label": _label(spec.choose), "help_text": "What the running workers offer."},
        )
    # The page keeps only the chosen data set's columns among these options (data-columns).
    if spec.choose == "column":
        hint = help_text or "Default: the data set's label column."
        return forms.ChoiceField(
            choices=[("", "(default)")] + _pairs(columns),
            widget=forms.Select(attrs={"data-columns": ""}),
            **common | {"help_text": hint},
        )
    if spec.choose == "columns":
        return forms.MultipleChoiceField(
            choices=_pairs(columns), widget=forms.SelectMultiple(attrs={"data-columns": ""}), **common
        )
    if spec.choose == "dataset":
        return forms.ModelChoiceField(queryset=dataset_versions_for_user(user=user), **common)
    return _typed_field(declared, spec, common)


def _pairs(values: Iterable[Any]) -> list[tuple[str, str]]:
    return [(str(v), str(v)) for v in values]


def _typed_field(declared: serializers.Field, spec: FormField, common: dict[str, Any]) -> forms.Field:
    default = None if declared.default is serializers.empty else declared.default
    default = default() if callable(default) else default
    if spec.choices:
        return forms.ChoiceField(choices=[("", "(choose)")] + _pairs(spec.choices), **common)
    if isinstance(declared, serializers.BooleanField):
        return forms.BooleanField(initial=bool(default), **common)
    if isinstance(declared, serializers.ChoiceField):
        blank = f"(default: {default})" if default is not None else "(default)"
        return forms.ChoiceField(choices=[("", blank)] + _pairs(declared.choices), initial=default, **common)
    if isinstance(declared, serializers.IntegerField):
        return forms.IntegerField(min_value=declared.min_value, max_value=declared.max_value, initial=default, **common)
    if isinstance(declared, serializers.FloatField):
        return forms.FloatField(min_value=declared.min_value, max_value=declared.max_value, initial=default, **common)
    if isinstance(declared, serializers.ListField) and isinstance(declared.child, serializers.ChoiceField):
        return forms.MultipleChoiceField(choices=_pairs(declared.child.choices), initial=default, **common)
    if isinstance(declared, serializers.ListField) and isinstance(declared.child, serializers.IntegerField):
        initial = ", ".join(str(v) for v in default) if default else ""
        return NumberListField(initial=initial, **common | {"help_text": common["help_text"] or "Comma-separated."})
    return forms.CharField(initial=default, **common)


class NumberListField(forms.CharField):
    """Whole numbers separated by commas, e.g. ``1, 8, 32``."""

    def to_python(self, value: Any) -> list[int]:  # type: ignore[override]
        text = (super().to_python(value) or "").replace(" ", "")
        try:
            numbers = [int(part) for part in text.split(",") if part]
        except ValueError:
            raise forms.ValidationError("whole numbers separated by commas, e.g. 1, 8, 32") from None
        if any(n < 1 for n in numbers):
            raise forms.ValidationError("each number is at least 1")
        return numbers
