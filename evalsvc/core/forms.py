"""What the browser forms share."""

from __future__ import annotations

from typing import TypeVar

from django import forms

__all__ = ["field_of"]

F = TypeVar("F", bound=forms.Field)


def field_of(form: forms.BaseForm, name: str, kind: type[F]) -> F:
    """A form's field ``name``, as the field class it is declared with (to set its choices or queryset)."""
    field = form.fields[name]
    if not isinstance(field, kind):
        raise TypeError(f"{type(form).__name__}.{name} is a {type(field).__name__}, not a {kind.__name__}")
    return field
