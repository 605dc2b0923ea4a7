from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from evalsvc.core.exceptions import ValidationFailed


@contextmanager
def uploaded_file_path(upload: UploadedFile | None) -> Iterator[str]:
    """The upload as a file on disk (where Django already spooled it, or a temporary copy)."""
    if upload is None:
        raise ValidationFailed("no file was uploaded: send the file as multipart field 'file'")
    if upload.size is not None and upload.size > settings.EVALSVC_MAX_UPLOAD_BYTES:
        limit = settings.EVALSVC_MAX_UPLOAD_BYTES // (1024 * 1024)
        raise ValidationFailed(f"the file is larger than the {limit} MiB upload limit")
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
