from __future__ import annotations

from contextlib import ExitStack

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from evalsvc.core.exceptions import ApplicationError

from . import services
from .forms import DatasetUploadForm, ModelUploadForm
from .uploads import uploaded_file_path


@login_required
def model_upload(request: HttpRequest) -> HttpResponse:
    form = ModelUploadForm(request.POST or None, request.FILES or None, user=request.user)
    status = 200
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        data = form.cleaned_data
        try:
            with ExitStack() as stack:
                path = stack.enter_context(uploaded_file_path(upload))
                weights = stack.enter_context(uploaded_file_path(data["weights"])) if data.get("weights") else None
                tokenizer = (
                    stack.enter_context(uploaded_file_path(data["tokenizer"])) if data.get("tokenizer") else None
                )
                version = services.model_version_register(
                    user=request.user,
                    team=data["team"],
                    name=data["name"],
                    path=path,
                    filename=upload.name,
                    notes=data["notes"],
                    weights_path=weights,
                    tokenizer_path=tokenizer,
                    processing=data.get("processing"),
                )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            messages.success(request, f"Registered {version} (sha256 {version.sha256[:12]}…)")
            return redirect("model-version-detail", pk=version.pk)
    elif request.method == "POST":
        status = 400
    return render(request, "registry/model_upload.html", {"form": form}, status=status)


@login_required
def dataset_upload(request: HttpRequest) -> HttpResponse:
    form = DatasetUploadForm(request.POST or None, request.FILES or None, user=request.user)
    status = 200
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            with uploaded_file_path(upload) as path:
                version = services.dataset_version_register(
                    user=request.user,
                    team=form.cleaned_data["team"],
                    name=form.cleaned_data["name"],
                    path=path,
                    filename=upload.name,
                    label_column=form.cleaned_data["label_column"],
                    notes=form.cleaned_data["notes"],
                )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            messages.success(request, f"Registered {version} ({version.rows:,} rows)")
            return redirect("dataset-version-detail", pk=version.pk)
    elif request.method == "POST":
        status = 400
    return render(request, "registry/dataset_upload.html", {"form": form}, status=status)
