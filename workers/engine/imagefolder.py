"""Image data sets uploaded as a zip of class folders (torchvision's ImageFolder layout).

::

    cat/0001.png            or      pets/cat/0001.png
    cat/0002.jpg                    pets/cat/0002.jpg
    dog/0001.png                    pets/dog/0001.png

The folder name is the label. One top-level folder around the class folders
is allowed and skipped. Rows are ordered as torchvision's ``ImageFolder``
orders them: classes sorted by name, then files sorted by name.

Nothing is ever extracted to disk: images are read one at a time from the
archive into memory. Before any image is read, the central directory is
checked, and the whole upload is refused (``InvalidDataset``) for:

* unsafe names: absolute paths, drive letters, backslashes, ``.`` or ``..``
  components, empty components, control characters, names that are not
  UTF-8, or the same name twice;
* symbolic links, encrypted entries, unsupported compression methods;
* nested archives (``.zip``, ``.tar``, ``.gz``, ...);
* files that are not images by extension (all listed, up to ten). They are
  refused rather than skipped because a silently skipped file changes the
  row count and usually means the wrong folder was zipped;
* more entries, more bytes in one entry or in total, or a higher
  compression ratio than :class:`ZipLimits` allows (zip bombs);
* images at the top level or nested deeper than ``class/image``, class
  folders without images, and zips without images.

Operating-system clutter -- ``__MACOSX/``, names starting with a dot
(``.DS_Store``), ``Thumbs.db``, ``desktop.ini`` -- is skipped and counted.
Inspection also reads each image's header (not its pixels) to check it is an
image of a supported format within the pixel limit.
"""

from __future__ import annotations

import io
import re
import stat
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
from PIL import Image, UnidentifiedImageError

from workers.engine.errors import InvalidDataset
from workers.engine.processing.image import DEFAULT_MAX_PIXELS, IMAGE_FORMATS
from workers.engine.types import ColumnInfo, DatasetInfo, DatasetRef

__all__ = [
    "IMAGE_COLUMN",
    "IMAGE_EXTENSIONS",
    "LABEL_COLUMN",
    "ImageFile",
    "ZipLimits",
    "count_images",
    "inspect_image_zip",
    "iter_image_batches",
    "iter_image_files",
    "iter_image_names",
]

IMAGE_COLUMN = "image"
LABEL_COLUMN = "label"
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
_ARCHIVE_EXTENSIONS = frozenset({".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst", ".jar"})
_CLUTTER_NAMES = frozenset({"thumbs.db", "desktop.ini"})
# Stored, deflate, bzip2, LZMA: what the standard library can decompress.
_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_LISTED = 10


@dataclass(frozen=True)
class ZipLimits:
    """Bounds that keep a hostile or mistaken upload from exhausting the worker.

    Parameters
    ----------
    max_entries:
        Entries in the central directory, folders and clutter included.
    max_total_bytes:
        Sum of the declared uncompressed sizes.
    max_entry_bytes:
        Uncompressed size of one image.
    max_ratio:
        Highest uncompressed/compressed ratio for an entry above
        ``ratio_min_bytes`` and for the archive as a whole. Images are
        already compressed (ratios near 1); a bomb's ratio is in the
        hundreds or thousands.
    ratio_min_bytes:
        Entries smaller than this are not ratio-checked: a tiny blank BMP
        compresses well and harms nobody.
    max_pixels:
        Largest image, in pixels, checked from each header.
    """

    max_entries: int = 200_000
    max_total_bytes: int = 8 * 2**30
    max_entry_bytes: int = 64 * 2**20
    max_ratio: float = 200.0
    ratio_min_bytes: int = 2**20
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class ImageFile:
    """One image read from the archive: its name in the zip, its label and its encoded bytes."""

    name: str
    label: str
    data: bytes


@dataclass(frozen=True)
class _Entry:
    name: str
    label: str
    info: zipfile.ZipInfo


@dataclass(frozen=True)
class _Scan:
    entries: list[_Entry]
    classes: dict[str, int]
    top_level: str | None
    ignored: int


def inspect_image_zip(path: str, limits: ZipLimits | None = None) -> DatasetInfo:
    """Validate an ImageFolder zip and describe it.

    Returns
    -------
    DatasetInfo
        ``format="imagefolder"``, ``rows`` = number of images, columns
        ``image`` (the name in the zip) and ``label`` (the class folder), and
        ``extra``: ``classes`` (label -> image count, sorted by label),
        ``top_level_folder`` (or ``None``) and ``ignored_entries``.

    Raises
    ------
    InvalidDataset
        (permanent) for anything listed in the module docstring, or an entry
        whose header is not a supported image.
    """
    limits = limits or ZipLimits()
    with _open(path) as archive:
        scan = _scan(archive, limits)
        for entry in scan.entries:
            _check_header(archive, entry, limits)
    return DatasetInfo(
        format="imagefolder",
        rows=len(scan.entries),
        columns=(ColumnInfo(IMAGE_COLUMN, "string", 0), ColumnInfo(LABEL_COLUMN, "string", 0)),
        extra={"classes": scan.classes, "top_level_folder": scan.top_level, "ignored_entries": scan.ignored},
    )


def count_images(path: str, limits: ZipLimits | None = None) -> int:
    """Number of images, from the archive's directory alone (no image is read)."""
    with _open(path) as archive:
        return len(_scan(archive, limits or ZipLimits()).entries)


def iter_image_files(ref: DatasetRef, batch_size: int, limits: ZipLimits | None = None) -> Iterator[list[ImageFile]]:
    """Yield the images in data set order, ``batch_size`` at a time, re-checking the archive first."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    limits = limits or ZipLimits()
    with _open(ref.path) as archive:
        entries = _scan(archive, limits).entries
        for start in range(0, len(entries), batch_size):
            yield [ImageFile(e.name, e.label, _read(archive, e, limits)) for e in entries[start : start + batch_size]]


def iter_image_batches(
    ref: DatasetRef, batch_size: int, limits: ZipLimits | None = None
) -> Iterator[tuple[list[bytes], list[str]]]:
    """Yield ``(encoded images, labels)`` in data set order, ``batch_size`` at a time."""
    for batch in iter_image_files(ref, batch_size, limits):
        yield [f.data for f in batch], [f.label for f in batch]


def iter_image_names(
    ref: DatasetRef, batch_size: int, columns: list[str] | None = None, limits: ZipLimits | None = None
) -> Iterator[pd.DataFrame]:
    """Yield the ``image`` (name in the zip) and ``label`` columns as DataFrames, reading no image data."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    wanted = columns if columns is not None else [IMAGE_COLUMN, LABEL_COLUMN]
    with _open(ref.path) as archive:
        entries = _scan(archive, limits or ZipLimits()).entries
    for start in range(0, len(entries), batch_size):
        chunk = entries[start : start + batch_size]
        frame = pd.DataFrame({IMAGE_COLUMN: [e.name for e in chunk], LABEL_COLUMN: [e.label for e in chunk]})
        yield frame[wanted]


def _open(path: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise InvalidDataset("the file is not a zip archive (or it is damaged)") from exc
    except UnicodeDecodeError as exc:
        raise InvalidDataset("the zip holds an entry name marked as UTF-8 that is not valid UTF-8") from exc
    except (OSError, EOFError, ValueError) as exc:
        raise InvalidDataset(f"cannot read the zip archive: {exc}") from exc


def _name(info: zipfile.ZipInfo) -> str:
    if info.flag_bits & _UTF8_FLAG or info.filename.isascii():
        return info.filename
    # Many tools write UTF-8 names without setting the flag; zipfile then
    # decodes them as cp437. Undo that, and refuse what is not UTF-8.
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError) as exc:
        raise InvalidDataset(f"the zip entry {info.filename!r} has a name that is not UTF-8") from exc


def _check_name(name: str) -> None:
    parts = name.rstrip("/").split("/")
    if (
        name.startswith("/")
        or _DRIVE.match(name)
        or _UNSAFE_CHARS.search(name)
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise InvalidDataset(
            f"the zip entry {name!r} has an unsafe name (absolute, a drive letter, a backslash, '.' or '..' "
            "components, or control characters); zip the class folders again with a standard tool"
        )


def _is_clutter(parts: list[str]) -> bool:
    return parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts) or parts[-1].lower() in _CLUTTER_NAMES


def _scan(archive: zipfile.ZipFile, limits: ZipLimits) -> _Scan:
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise InvalidDataset(f"the zip has {len(infos):,} entries, more than the limit of {limits.max_entries:,}")
    files: list[tuple[list[str], zipfile.ZipInfo]] = []
    folders: list[list[str]] = []
    seen: set[str] = set()
    not_images: list[str] = []
    ignored = total = compressed = 0
    for info in infos:
        name = _name(info)
        _check_name(name)
        if name in seen:
            raise InvalidDataset(f"the zip holds {name!r} twice")
        seen.add(name)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InvalidDataset(f"the zip entry {name!r} is a symbolic link; links are not allowed")
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise InvalidDataset(f"the zip entry {name!r} is encrypted; upload an unencrypted zip")
        parts = name.rstrip("/").split("/")
        if info.is_dir():
            if not _is_clutter(parts):
                folders.append(parts)
            continue
        if _is_clutter(parts):
            ignored += 1
            continue
        ext = _extension(parts[-1])
        if ext in _ARCHIVE_EXTENSIONS:
            raise InvalidDataset(f"the zip entry {name!r} is an archive; nested archives are not allowed")
        if ext not in IMAGE_EXTENSIONS:
            not_images.append(name)
            continue
        if info.compress_type not in _METHODS:
            raise InvalidDataset(
                f"the zip entry {name!r} uses an unsupported compression method ({info.compress_type})"
            )
        _check_size(name, info, limits)
        total += info.file_size
        compressed += info.compress_size
        if total > limits.max_total_bytes:
            raise InvalidDataset(
                f"the images add up to more than {limits.max_total_bytes:,} bytes uncompressed, the limit"
            )
        files.append((parts, info))
    if not_images:
        shown = ", ".join(repr(n) for n in not_images[:_LISTED])
        more = f" and {len(not_images) - _LISTED} more" if len(not_images) > _LISTED else ""
        raise InvalidDataset(
            f"the zip holds {len(not_images)} file{'s' if len(not_images) != 1 else ''} that are not images "
            f"({shown}{more}); images must end in {', '.join(sorted(IMAGE_EXTENSIONS))}: remove the others"
        )
    if total > limits.ratio_min_bytes and total > limits.max_ratio * max(compressed, 1):
        raise InvalidDataset(f"the zip expands {total / max(compressed, 1):.0f} times, more than a zip of images can")
    return _layout(files, folders, ignored)


def _extension(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot > 0 else ""


def _check_size(name: str, info: zipfile.ZipInfo, limits: ZipLimits) -> None:
    if info.file_size > limits.max_entry_bytes:
        raise InvalidDataset(
            f"the zip entry {name!r} is {info.file_size:,} bytes uncompressed, more than the limit of "
            f"{limits.max_entry_bytes:,} for one image"
        )
    if info.file_size > limits.ratio_min_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        ratio = info.file_size / max(info.compress_size, 1)
        raise InvalidDataset(
            f"the zip entry {name!r} expands {ratio:.0f} times ({info.compress_size:,} to {info.file_size:,} bytes), "
            f"more than the limit of {limits.max_ratio:g}; images barely compress, so this looks like a zip bomb"
        )


def _layout(files: list[tuple[list[str], zipfile.ZipInfo]], folders: list[list[str]], ignored: int) -> _Scan:
    if not files:
        raise InvalidDataset("the zip holds no images; it must hold one folder of images per class")
    top = files[0][0][0]
    wrapped = all(len(p) >= 3 and p[0] == top for p, _ in files)
    skip = 1 if wrapped else 0
    entries: list[_Entry] = []
    for parts, info in files:
        rest = parts[skip:]
        shown = "/".join(parts)
        if len(rest) == 1:
            raise InvalidDataset(
                f"the image {shown!r} is not inside a class folder; put every image in its class's folder"
            )
        if len(rest) > 2:
            raise InvalidDataset(
                f"the image {shown!r} is nested deeper than class/image; a class folder must hold its images directly"
            )
        entries.append(_Entry(shown, rest[0], info))
    entries.sort(key=lambda e: (e.label, e.name))
    counts = Counter(e.label for e in entries)
    empty = sorted({p[skip] for p in folders if len(p) == skip + 1 and (not wrapped or p[0] == top)} - set(counts))
    if empty:
        raise InvalidDataset(f"class folders without images: {', '.join(repr(c) for c in empty[:_LISTED])}")
    return _Scan(entries, dict(sorted(counts.items())), top if wrapped else None, ignored)


def _check_header(archive: zipfile.ZipFile, entry: _Entry, limits: ZipLimits) -> None:
    try:
        with archive.open(entry.info) as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's own size warning; the limit below is ours
            # The whole file: a TIFF may keep its header at the end.
            with Image.open(io.BytesIO(handle.read(limits.max_entry_bytes + 1)), formats=IMAGE_FORMATS) as im:
                width, height = im.size
    except UnidentifiedImageError as exc:
        raise InvalidDataset(
            f"{entry.name!r} is not an image in a supported format ({', '.join(IMAGE_FORMATS)})"
        ) from exc
    except Image.DecompressionBombError as exc:
        raise InvalidDataset(f"{entry.name!r} has more pixels than allowed") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, SyntaxError, ValueError, NotImplementedError) as exc:
        raise InvalidDataset(f"cannot read {entry.name!r} from the zip: {exc}") from exc
    if width * height > limits.max_pixels:
        raise InvalidDataset(f"{entry.name!r} is {width}x{height} pixels, more than the limit of {limits.max_pixels:,}")


def _read(archive: zipfile.ZipFile, entry: _Entry, limits: ZipLimits) -> bytes:
    try:
        with archive.open(entry.info) as handle:
            data = handle.read(limits.max_entry_bytes + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        # A CRC mismatch or a stream shorter than declared: the file is damaged.
        raise InvalidDataset(f"cannot read {entry.name!r} from the zip: {exc}") from exc
    if len(data) > limits.max_entry_bytes:
        raise InvalidDataset(f"{entry.name!r} is larger than its declared size allows")
    return data
