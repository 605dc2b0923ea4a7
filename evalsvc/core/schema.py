"""The OpenAPI schema documents the error answers too, not only the happy path.

Every operation lists the 4xx answers the API gives (with the body they carry:
``detail`` says what is wrong; a validation error names the fields), so a
client generated from the schema can read them.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser


class ErrorOut(serializers.Serializer):
    detail = serializers.CharField(
        required=False, help_text="What is wrong, in words. A validation error names each field instead."
    )


ERRORS = {
    "400": "The request cannot be done as asked: `detail` (or each field) says why.",
    "401": "Not signed in: send `Authorization: Token …` or a session cookie.",
    "403": "Signed in, but your role does not allow this.",
    "404": "No such object, or it belongs to a team you are not in.",
    "429": "Too many requests: wait `Retry-After` seconds.",
}
#: What a change can meet besides: a state that does not allow it (in use, approved, finished), a body it cannot read.
WRITE_ERRORS = {
    "409": "The object's state does not allow this (e.g. it is in use, approved or finished): `detail` says why.",
    "415": "The body's media type is not one this operation reads.",
}


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        errors = dict(ERRORS) if self.method in ("GET", "HEAD") else {**ERRORS, **WRITE_ERRORS}
        parsers = self.view.get_parsers()
        if self.method in ("POST", "PUT", "PATCH") and parsers and all(isinstance(p, MultiPartParser) for p in parsers):
            # An upload endpoint (takes multipart only).
            errors["413"] = (
                "The upload is larger than the limit (`limit_bytes`, all files of the request together): it was "
                "cut off while it arrived and nothing was stored."
            )
        for code, description in errors.items():
            if code not in responses:
                error = OpenApiResponse(ErrorOut, description=description)
                responses[code] = self._get_response_for_code(error, code, direction=direction)
        return responses

    def get_operation_id(self) -> str:
        # A page of a list is still a list operation: "runs_list", as for a bare array.
        operation_id = super().get_operation_id()
        if self.method == "GET" and getattr(self.get_response_serializers(), "is_page", False):
            operation_id = operation_id.removesuffix("_retrieve") + "_list"
        return operation_id
