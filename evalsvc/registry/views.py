from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evalsvc.core.exceptions import ApplicationError, NotFound
from evalsvc.core.users import signed_in_user

from . import services
from .curation import registered_model_update
from .forms import DatasetUploadForm, ModelUploadForm, UploadForm
from .models import ArtifactStatus
from .processing import model_version_processing_set as processing_set
from .selectors import model_version_get
from .uploads import upload_digest, uploaded_file_path


def _upload_page(
    request: HttpRequest,
    form_class: type[UploadForm],
    template: str,
    register: Callable[[dict[str, Any], ExitStack], Any],
    done: Callable[[Any], tuple[str, str]],
) -> HttpResponse:
    """The form round trip both upload pages share: validate, register, show the service's error or redirect."""
    form = form_class(request.POST or None, request.FILES or None, user=signed_in_user(request))
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            with ExitStack() as stack:
                version = register(form.cleaned_data, stack)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            message, url_name = done(version)
            messages.success(request, message)
            return redirect(url_name, pk=version.pk)
    elif request.method == "POST":
        status = 400
    return render(request, template, {"form": form}, status=status)


def _validating(version: Any) -> str:
    if version.status != ArtifactStatus.VALIDATING:
        return ""
    return f"Stored {version} (sha256 {version.sha256[:12]}…); a worker is validating the file: this page shows the result."


def _optional_file(stack: ExitStack, upload: Any) -> str | None:
    return stack.enter_context(uploaded_file_path(upload)) if upload else None


@login_required
def model_upload(request: HttpRequest) -> HttpResponse:
    def register(data: dict[str, Any], stack: ExitStack) -> Any:
        return services.model_version_register(
            user=signed_in_user(request),
            team=data["team"],
            name=data["name"],
            path=stack.enter_context(uploaded_file_path(data["file"])),
            filename=data["file"].name,
            notes=data["notes"],
            weights_path=_optional_file(stack, data.get("weights")),
            tokenizer_path=_optional_file(stack, data.get("tokenizer")),
            processing=data.get("processing"),
            sha256=upload_digest(data["file"]),
            defer_large=True,
        )

    return _upload_page(
        request,
        ModelUploadForm,
        "registry/model_upload.html",
        register,
        lambda v: (_validating(v) or f"Registered {v} (sha256 {v.sha256[:12]}…)", "model-version-detail"),
    )


@login_required
def dataset_upload(request: HttpRequest) -> HttpResponse:
    def register(data: dict[str, Any], stack: ExitStack) -> Any:
        return services.dataset_version_register(
            user=signed_in_user(request),
            team=data["team"],
            name=data["name"],
            path=stack.enter_context(uploaded_file_path(data["file"])),
            filename=data["file"].name,
            label_column=data["label_column"],
            notes=data["notes"],
            sha256=upload_digest(data["file"]),
            defer_large=True,
        )

    return _upload_page(
        request,
        DatasetUploadForm,
        "registry/dataset_upload.html",
        register,
        lambda v: (_validating(v) or f"Registered {v} ({v.rows:,} rows)", "dataset-version-detail"),
    )


@login_required
@require_POST
def model_version_processing(request: HttpRequest, pk: str) -> HttpResponse:
    """The processing spec form on a model version's page."""
    text = (request.POST.get("processing") or "").strip()
    try:
        processing = json.loads(text) if text else None
    except json.JSONDecodeError as exc:
        messages.error(request, f"the processing spec is not valid JSON: {exc.msg} (line {exc.lineno})")
        return redirect("model-version-detail", pk=pk)
    try:
        processing_set(user=signed_in_user(request), version_id=pk, processing=processing)
    except NotFound:
        raise
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Processing spec saved." if processing else "Processing spec cleared.")
    return redirect("model-version-detail", pk=pk)


@login_required
@require_POST
def model_version_describe(request: HttpRequest, pk: str) -> HttpResponse:
    """Intended use and known limitations, edited on a model version's page (they belong to the model)."""
    version = model_version_get(user=signed_in_user(request), pk=pk)
    try:
        registered_model_update(
            user=signed_in_user(request),
            model_id=version.registered_model_id,
            intended_use=request.POST.get("intended_use", ""),
            limitations=request.POST.get("limitations", ""),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Intended use and limitations of {version.registered_model.name} saved.")
    return redirect("model-version-detail", pk=pk)
