"""Content-addressed artifact storage on Django's default storage (disk or S3).

Keys derive from the SHA-256 alone, never from a user-supplied name, so no
upload can land outside the storage root and identical bytes are stored once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

CHUNK = 1024 * 1024


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def blob_key(sha256: str) -> str:
    return f"blobs/sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class _SpooledFile(File):
    """A temporary file that storage may move into place instead of copying (local disk)."""

    def temporary_file_path(self) -> str:
        return str(self.name)


def blob_store(*, path: str, sha256: str, move: bool = False) -> tuple[str, bool]:
    """Store the file at `path` under its content address; return (key, created).

    `move`: `path` is a temporary file the caller gives up; on local storage
    it is renamed into place rather than copied (a large upload takes no time).
    """
    key = blob_key(sha256)
    if default_storage.exists(key):
        return key, False
    with open(path, "rb") as handle:
        saved = default_storage.save(key, _SpooledFile(handle, name=path) if move else File(handle))
    if saved != key:  # a concurrent upload of the same bytes won the race
        default_storage.delete(saved)
        return key, False
    return key, True


def blob_delete(key: str) -> None:
    default_storage.delete(key)


def blob_open(key: str):
    return default_storage.open(key, "rb")


def blob_local_path(*, key: str, sha256: str) -> str:
    """A local file path with these bytes: the stored file itself, or a verified cached copy."""
    try:
        local = default_storage.path(key)
    except NotImplementedError:
        pass  # remote storage: fetch once into the cache
    else:
        if not os.path.isfile(local):
            raise FileNotFoundError(f"stored artifact {key} is missing from the storage root")
        return local
    cache_dir = Path(settings.ARTIFACT_CACHE_DIR)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / sha256
    if target.exists():
        return str(target)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".partial-")
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(key, "rb") as src:
            shutil.copyfileobj(src, out, CHUNK)
        digest, _ = hash_file(tmp)
        if digest != sha256:
            raise OSError(f"stored artifact {key} does not match its SHA-256")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(target)
