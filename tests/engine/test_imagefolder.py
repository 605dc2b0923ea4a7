"""ImageFolder zips: layout, order, and every way an upload is refused before anything is read or extracted."""

from __future__ import annotations

import io
import stat
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.engine.datasets import count_rows, inspect_dataset, iter_batches
from workers.engine.errors import InvalidDataset
from workers.engine.imagefolder import ZipLimits, inspect_image_zip, iter_image_batches
from workers.engine.types import DatasetRef

Entries = list[tuple[str | zipfile.ZipInfo, bytes]]


def _png(value: int = 0, size: tuple[int, int] = (4, 3)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full(size, value, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _zip(path: Path, entries: Entries, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", compression) as archive:
        warnings.simplefilter("ignore")  # duplicate names, on purpose
        for name, data in entries:
            archive.writestr(name, data)
    return path


def _ref(path: Path) -> DatasetRef:
    return DatasetRef(str(path), "imagefolder", "", ("image", "label"), "label")


def _patch(path: Path, *, flags: int = 0, method: int | None = None, old: bytes = b"", new: bytes = b"") -> Path:
    """Set general-purpose flag bits or the method in every local and central header; replace name bytes."""
    data = bytearray(path.read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        while at >= 0:
            (bits,) = struct.unpack_from("<H", data, at + flag_at)
            struct.pack_into("<H", data, at + flag_at, bits | flags)
            if method is not None:
                struct.pack_into("<H", data, at + flag_at + 2, method)
            at = data.find(signature, at + 4)
    if old:
        data = bytearray(bytes(data).replace(old, new))
    path.write_bytes(bytes(data))
    return path


# --------------------------------------------------------------- good zips


def test_layout_order_and_clutter(tmp_path: Path) -> None:
    images = {"b/2.png": _png(2), "a/10.png": _png(10), "a/09.jpg": _jpeg(), "b/1.PNG": _png(1)}
    clutter = {"__MACOSX/a/._09.jpg": b"x", "a/.DS_Store": b"x", "b/Thumbs.db": b"x"}
    path = _zip(tmp_path / "set.zip", [("a/", b""), *images.items(), *clutter.items()])
    info = inspect_image_zip(str(path))
    assert info.format == "imagefolder" and info.rows == 4
    assert [(c.name, c.dtype, c.missing) for c in info.columns] == [("image", "string", 0), ("label", "string", 0)]
    assert info.extra == {"classes": {"a": 2, "b": 2}, "top_level_folder": None, "ignored_entries": 3}
    assert info.to_dict()["extra"]["classes"] == {"a": 2, "b": 2}

    # torchvision's order: classes sorted, then files sorted.
    batches = list(iter_image_batches(_ref(path), 3))
    assert [len(b[0]) for b in batches] == [3, 1]
    data = [d for b in batches for d in b[0]]
    labels = [label for b in batches for label in b[1]]
    assert labels == ["a", "a", "b", "b"]
    assert data == [images["a/09.jpg"], images["a/10.png"], images["b/1.PNG"], images["b/2.png"]]

    # The generic data set API sees names and labels, no pixels.
    assert inspect_dataset(str(path), "imagefolder").rows == 4
    frames = list(iter_batches(_ref(path), 2))
    assert frames[0].to_dict("list") == {"image": ["a/09.jpg", "a/10.png"], "label": ["a", "a"]}
    assert list(iter_batches(_ref(path), 10, ["label"]))[0].columns.tolist() == ["label"]
    assert count_rows(_ref(path)) == 4


def test_one_top_level_folder_is_skipped(tmp_path: Path) -> None:
    path = _zip(tmp_path / "w.zip", [("pets/", b""), ("pets/cat/1.png", _png()), ("pets/dog/1.png", _png())])
    info = inspect_image_zip(str(path))
    assert info.extra["classes"] == {"cat": 1, "dog": 1} and info.extra["top_level_folder"] == "pets"
    assert next(iter_batches(_ref(path), 5))["image"].tolist() == ["pets/cat/1.png", "pets/dog/1.png"]


def test_utf8_names_without_the_flag(tmp_path: Path) -> None:
    # Info-ZIP on Linux writes UTF-8 names without setting the UTF-8 flag.
    path = _zip(tmp_path / "u.zip", [("cafXX/1.png", _png()), ("b/1.png", _png())])
    path = _patch(path, old=b"XX", new="é".encode())
    assert inspect_image_zip(str(path)).extra["classes"] == {"b": 1, "café": 1}


# ------------------------------------------------------------ refused zips

UNSAFE = [
    "../evil.png",
    "a/../../evil.png",
    "/etc/a/x.png",
    "C:/a/x.png",
    "a\\x.png",
    "a/./x.png",
    "a//x.png",
    "a/x\x01.png",
]


@pytest.mark.parametrize("name", UNSAFE)
def test_zip_slip_names(tmp_path: Path, name: str) -> None:
    path = _zip(tmp_path / "s.zip", [("a/1.png", _png()), (name, _png())])
    with pytest.raises(InvalidDataset, match="has an unsafe name"):
        inspect_image_zip(str(path))
    with pytest.raises(InvalidDataset, match="has an unsafe name"):
        next(iter_image_batches(_ref(path), 1))  # reading re-checks the archive


def test_symlinks_and_encryption(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("a/link.png")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = _zip(tmp_path / "l.zip", [("a/1.png", _png()), (link, b"/etc/passwd")])
    with pytest.raises(InvalidDataset, match="'a/link.png' is a symbolic link"):
        inspect_image_zip(str(path))
    path = _patch(_zip(tmp_path / "e.zip", [("a/1.png", _png())]), flags=0x1)
    with pytest.raises(InvalidDataset, match="'a/1.png' is encrypted"):
        inspect_image_zip(str(path))
    path = _patch(_zip(tmp_path / "m.zip", [("a/1.png", _png())]), method=9)  # Deflate64
    with pytest.raises(InvalidDataset, match="unsupported compression method"):
        inspect_image_zip(str(path))


def test_bad_names_and_contents(tmp_path: Path) -> None:
    cases: list[tuple[Entries, str]] = [
        ([("a/1.png", _png()), ("a/inner.zip", b"PK")], "'a/inner.zip' is an archive; nested archives"),
        (
            [("a/1.png", _png()), ("a/readme.txt", b"hi"), ("notes.md", b"x")],
            r"holds 2 files that are not images \('a/readme.txt', 'notes.md'\)",
        ),
        ([("a/1.png", _png()), ("b/", b"")], "class folders without images: 'b'"),
        ([("a/1.png", _png()), ("x.png", _png())], "'x.png' is not inside a class folder"),
        ([("a/b/c/1.png", _png()), ("d/1.png", _png())], "'a/b/c/1.png' is nested deeper than class/image"),
        ([("a/", b""), ("b/", b"")], "the zip holds no images"),
        ([("a/1.png", _png()), ("a/1.png", _png())], "holds 'a/1.png' twice"),
        ([("a/1.png", _png()), ("a/fake.png", b"not really a png")], "'a/fake.png' is not an image in a supported"),
        ([("a/1.png", _png(size=(20, 20)))], r"'a/1.png' is 20x20 pixels, more than the limit of 100"),
    ]
    for i, (entries, message) in enumerate(cases):
        path = _zip(tmp_path / f"{i}.zip", entries)
        with pytest.raises(InvalidDataset, match=message):
            inspect_image_zip(str(path), ZipLimits(max_pixels=100))


def test_non_utf8_names(tmp_path: Path) -> None:
    path = _patch(_zip(tmp_path / "n.zip", [("a/XX.png", _png())]), old=b"XX", new=b"\xff\xfe")
    with pytest.raises(InvalidDataset, match="has a name that is not UTF-8"):
        inspect_image_zip(str(path))
    flagged = _patch(_zip(tmp_path / "f.zip", [("a/XX.png", _png())]), flags=0x800, old=b"XX", new=b"\xff\xfe")
    with pytest.raises(InvalidDataset, match="marked as UTF-8 that is not valid UTF-8"):
        inspect_image_zip(str(flagged))


def test_limits_and_bombs(tmp_path: Path) -> None:
    three = [("a/1.png", _png()), ("a/2.png", _png()), ("b/1.png", _png())]
    path = _zip(tmp_path / "3.zip", three)
    with pytest.raises(InvalidDataset, match="the zip has 3 entries, more than the limit of 2"):
        inspect_image_zip(str(path), ZipLimits(max_entries=2))
    with pytest.raises(InvalidDataset, match="add up to more than 150 bytes uncompressed"):
        inspect_image_zip(str(path), ZipLimits(max_total_bytes=150))
    with pytest.raises(InvalidDataset, match=r"'a/1.png' is \d+ bytes uncompressed, more than the limit of 10 "):
        inspect_image_zip(str(path), ZipLimits(max_entry_bytes=10))
    # One entry that expands a thousandfold: refused from the directory, never decompressed.
    bomb = _zip(tmp_path / "bomb.zip", [("a/1.png", _png()), ("a/bomb.bmp", bytes(4 * 2**20))])
    with pytest.raises(InvalidDataset, match=r"'a/bomb.bmp' expands \d+ times .* looks like a zip bomb"):
        inspect_image_zip(str(bomb))
    # Many entries each too small to check, that together expand as much.
    many = _zip(tmp_path / "many.zip", [(f"a/{i}.bmp", bytes(100_000)) for i in range(12)])
    with pytest.raises(InvalidDataset, match=r"the zip expands \d+ times, more than a zip of images can"):
        inspect_image_zip(str(many))


def test_not_a_zip_and_damaged_data(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not a zip file at all" * 10)
    with pytest.raises(InvalidDataset, match="not a zip archive"):
        inspect_image_zip(str(junk))
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    with pytest.raises(InvalidDataset, match="the file is empty"):
        inspect_dataset(str(empty), "imagefolder")
    png = _png(7, (16, 16))
    path = _zip(tmp_path / "crc.zip", [("a/1.png", png)], compression=zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    at = data.find(png) + len(png) - 20
    data[at] ^= 0xFF  # corrupt the stored bytes; the CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidDataset, match="cannot read 'a/1.png' from the zip"):
        list(iter_image_batches(_ref(path), 1))
