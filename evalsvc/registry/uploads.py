"""Uploads as they arrive: the size limit, hashing and spooling while the body streams in.

An upload never sits whole in memory: :class:`LimitedHashingUploadHandler`
writes each file to a temporary file in chunks, hashes it (SHA-256) on the
way and stops reading the body the moment a request's files pass
``EVALSVC_MAX_UPLOAD_BYTES``. :class:`UploadLimitMiddleware` answers such a
request with a 413 naming the limit, before any view or service sees it;
nothing is stored.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from evalsvc.core.exceptions import TooLarge, ValidationFailed

#: Room for the form's other fields and the multipart framing beside the files.
FORM_OVERHEAD_BYTES = 4 * 1024 * 1024


class UploadTooLarge(TooLarge):
    """A request's files pass the upload limit; raised while the body is still arriving."""


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):,.0f} MiB"


def upload_too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"the upload is larger than the {_mib(limit)} limit ({limit:,} bytes for all files of one request); "
        "nothing was stored",
        extra={"limit_bytes": limit},
    )


class LimitedHashingUploadHandler(TemporaryFileUploadHandler):
    """Spool each file to disk, hash it as it arrives, and stop past the limit.

    The SHA-256 and size land on the uploaded file as ``sha256`` and
    ``size``, so registration never reads the bytes again to identify them.
    """

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = int(settings.EVALSVC_MAX_UPLOAD_BYTES)
        self.received = 0  # file bytes of this request so far, all files together
        self.digest: Any = None

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: str | None = None
    ) -> None:
        if content_length > self.limit + FORM_OVERHEAD_BYTES:
            raise upload_too_large(self.limit)  # said by the header: read nothing

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.digest = hashlib.sha256()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.file.close()  # the temporary file is removed with it
            raise upload_too_large(self.limit)
        self.digest.update(raw_data)
        self.file.write(raw_data)

    def file_complete(self, file_size: int) -> Any:
        upload = super().file_complete(file_size)
        setattr(upload, "sha256", self.digest.hexdigest())  # noqa: B010 - not a field of UploadedFile
        return upload


class UploadLimitMiddleware:
    """Every multipart request goes through :class:`LimitedHashingUploadHandler`; too large is a 413.

    API requests are parsed by the API view after authentication, whose
    exception handler turns :class:`UploadTooLarge` into the JSON answer.
    Pages are parsed here (the CSRF check would read the form first), so the
    413 page comes before any view. Listed after the authentication middleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("POST", "PUT", "PATCH") and request.content_type == "multipart/form-data":
            request.upload_handlers = [LimitedHashingUploadHandler(request)]
            api = request.path.startswith("/api/")
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            limit = int(settings.EVALSVC_MAX_UPLOAD_BYTES)
            try:
                if length > limit + FORM_OVERHEAD_BYTES:
                    raise upload_too_large(limit)
                if not api:
                    request.POST  # noqa: B018 - parse now, inside this try
            except UploadTooLarge as exc:
                return too_large_response(request, exc)
        return self.get_response(request)


def too_large_response(request: HttpRequest, exc: UploadTooLarge) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": exc.message, **exc.extra}, status=413)
    return render(request, "413.html", {"message": exc.message}, status=413)


def upload_digest(upload: UploadedFile | None) -> str | None:
    """The SHA-256 the upload handler computed while the file arrived, if it did."""
    return getattr(upload, "sha256", None)


@contextmanager
def uploaded_file_path(upload: UploadedFile | None) -> Iterator[str]:
    """The upload as a file on disk (where Django already spooled it, or a temporary copy)."""
    if upload is None:
        raise ValidationFailed("no file was uploaded: send the file as multipart field 'file'")
    if upload.size is not None and upload.size > settings.EVALSVC_MAX_UPLOAD_BYTES:
        raise upload_too_large(settings.EVALSVC_MAX_UPLOAD_BYTES)
    if hasattr(upload, "temporary_file_path"):
        yield upload.temporary_file_path()
        return
    os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=settings.FILE_UPLOAD_TEMP_DIR, prefix="upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            upload.seek(0)
            shutil.copyfileobj(upload, out)
        yield tmp
    finally:
        os.unlink(tmp)


def clean_filename(name: str | None) -> str:
    """Keep only the base name, for display: storage keys never use it."""
    base = os.path.basename((name or "").replace("\\", "/"))
    return "".join(ch for ch in base if ch.isprintable())[:255]
