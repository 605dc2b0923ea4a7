"""What every app's REST endpoints share: pagination, validation, the team filter's documentation."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

TEAM_PARAM = OpenApiParameter("team", str, description="Only objects of this team (slug or id).")


def paginated(view: APIView, request: Request, queryset: Any, serializer_class: Any) -> Response:
    # The setting is an import string that DRF's settings object resolves to the class; its stub says str.
    paginator = api_settings.DEFAULT_PAGINATION_CLASS()  # type: ignore[operator,misc]
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


_PAGES: dict[type, type[serializers.Serializer]] = {}


def page_of(serializer_class: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of one page as ``paginated`` answers it: count, next, previous and results.

    For ``@extend_schema(responses=page_of(X))``: a client generated from the
    schema then reads the page object a list endpoint returns, not a bare array.
    """
    if serializer_class not in _PAGES:
        name = f"Paginated{serializer_class.__name__.removesuffix('Out')}List"
        _PAGES[serializer_class] = type(
            name,
            (serializers.Serializer,),
            {
                "count": serializers.IntegerField(help_text="Items over all pages."),
                "next": serializers.URLField(allow_null=True, help_text="The next page, or null."),
                "previous": serializers.URLField(allow_null=True, help_text="The previous page, or null."),
                "results": serializer_class(many=True),
                "__module__": __name__,
                "is_page": True,
            },
        )
    return _PAGES[serializer_class]
