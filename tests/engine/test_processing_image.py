"""decode_image and prepare_images against a hand-written numpy reference, torchvision's formulas and torch.

torchvision is not installed. Its PIL path calls Pillow's ``Image.resize``, so
the resize is checked against a numpy re-implementation of Pillow's two-pass
fixed-point resampling (exact), its tensor path against
``torch.nn.functional.interpolate(antialias=True)`` (within one level), and
ToTensor/Normalize against the same float32 torch arithmetic torchvision uses.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from workers.engine.errors import InvalidDataset
from workers.engine.processing import ImageInput, decode_image, parse_processing_spec, prepare_images
from workers.engine.processing.image import center_crop_box, resized_size

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# ------------------------------------------------- reference: Pillow's resample

_PRECISION = 22  # Pillow's PRECISION_BITS = 32 - 8 - 2


def _kernel(name: str) -> tuple[object, float]:
    if name == "bilinear":
        return (lambda x: np.clip(1.0 - np.abs(x), 0.0, None)), 1.0
    a = -0.5

    def cubic(x: np.ndarray) -> np.ndarray:
        x = np.abs(x)
        near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
        far = (((x - 5) * x + 8) * x - 4) * a
        return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))

    return cubic, 2.0


def _coefficients(in_size: int, out_size: int, name: str) -> list[tuple[int, np.ndarray]]:
    kernel, support = _kernel(name)
    scale = in_size / out_size
    filterscale = max(scale, 1.0)  # widen the filter when shrinking: antialiasing
    support *= filterscale
    rows = []
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        w = kernel((np.arange(lo, hi) - center + 0.5) / filterscale)  # type: ignore[operator]
        w = w / w.sum()
        fixed = np.where(w < 0, np.trunc(-0.5 + w * (1 << _PRECISION)), np.trunc(0.5 + w * (1 << _PRECISION)))
        rows.append((lo, fixed.astype(np.int64)))
    return rows


def _resample_width(a: np.ndarray, rows: list[tuple[int, np.ndarray]]) -> np.ndarray:
    out = np.empty((a.shape[0], len(rows), a.shape[2]), dtype=np.int64)
    for j, (lo, k) in enumerate(rows):
        acc = (1 << (_PRECISION - 1)) + np.tensordot(a[:, lo : lo + len(k)], k, axes=([1], [0]))
        out[:, j] = np.clip(acc >> _PRECISION, 0, 255)  # rounded to 8 bits after each pass
    return out


def pillow_resize_reference(image: np.ndarray, height: int, width: int, name: str = "bilinear") -> np.ndarray:
    """Pillow's ImagingResample for 8-bit images: horizontal pass, then vertical."""
    a = image.astype(np.int64)
    if a.ndim == 2:
        a = a[:, :, None]
    if width != a.shape[1]:
        a = _resample_width(a, _coefficients(a.shape[1], width, name))
    if height != a.shape[0]:
        a = _resample_width(a.transpose(1, 0, 2), _coefficients(a.shape[0], height, name)).transpose(1, 0, 2)
    return a.astype(np.uint8)


def _gradient(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    r = x * 255 // (width - 1)
    g = y * 255 // (height - 1)
    b = (x * 7 + y * 13) % 256
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def _image(**fields: object) -> ImageInput:
    spec = parse_processing_spec({"input": {"kind": "image", **fields}}).input
    assert isinstance(spec, ImageInput)
    return spec


def _png(array: np.ndarray, **params: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG", **params)
    return buf.getvalue()


# ----------------------------------------------------------------- decoding


def test_decode_modes() -> None:
    rgb = _gradient(5, 7)
    np.testing.assert_array_equal(decode_image(_png(rgb)), rgb)
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    np.testing.assert_array_equal(decode_image(_png(gray)), np.repeat(gray[:, :, None], 3, axis=2))
    rgba = np.dstack([rgb, np.full((5, 7), 9, np.uint8)])
    np.testing.assert_array_equal(decode_image(_png(rgba)), rgb)  # alpha dropped, as convert("RGB")
    decoded = decode_image(_png(rgb))
    assert decoded.dtype == np.uint8 and decoded.flags.writeable


def test_decode_applies_exif_orientation() -> None:
    pixels = (np.arange(6, dtype=np.uint8).reshape(2, 3) + 1) * 40
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", exif=exif)
    upright = decode_image(buf.getvalue())
    assert upright.shape == (3, 2, 3)
    np.testing.assert_array_equal(upright[:, :, 0], np.rot90(pixels, k=-1))


def _png_claiming(width: int, height: int) -> bytes:
    data = bytearray(_png(np.zeros((1, 1), np.uint8)))
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def test_decode_rejects_bad_files() -> None:
    with pytest.raises(InvalidDataset, match="'x.png' is an empty file"):
        decode_image(b"", name="'x.png'")
    with pytest.raises(InvalidDataset, match="is not an image in a supported format"):
        decode_image(b"hello, world" * 10)
    with pytest.raises(InvalidDataset, match="is not an image in a supported format"):
        decode_image(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")  # EPS would run Ghostscript
    whole = _png(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(InvalidDataset, match="truncated or corrupt"):
        decode_image(whole[: len(whole) // 2])
    # A decompression bomb's header is read, its pixels never are.
    with pytest.raises(InvalidDataset, match=r"is 7000x7000 pixels, more than the limit of 40,000,000 pixels"):
        decode_image(_png_claiming(7000, 7000))
    with pytest.raises(InvalidDataset, match=r"has more pixels than the limit of 40,000,000"):
        decode_image(_png_claiming(50000, 50000))  # past Pillow's own limit too
    with pytest.raises(InvalidDataset, match="more than the limit of 10 pixels"):
        decode_image(_png(np.zeros((4, 4), np.uint8)), max_pixels=10)


# ----------------------------------------------------------------- geometry


def test_torchvision_sizes_and_crop_offsets() -> None:
    # Resize(256) keeps the aspect ratio and truncates the long side.
    assert resized_size(375, 500, _image(resize=256)) == (256, 341)
    assert resized_size(500, 375, _image(resize=256)) == (341, 256)
    assert resized_size(300, 300, _image(resize=256)) == (256, 256)
    assert resized_size(375, 500, _image(resize=[100, 50])) == (100, 50)
    assert resized_size(375, 500, _image()) == (375, 500)
    # CenterCrop(224) on 256x341: left = int(round(58.5)) = 58 (half to even), top = 16.
    assert center_crop_box(256, 341, (224, 224)) == (0, 0, 16, 58)
    assert center_crop_box(257, 343, (224, 224)) == (0, 0, 16, 60)  # 16.5 -> 16, 59.5 -> 60
    # Larger crops pad with zeros first; the odd pixel goes to the bottom/right.
    assert center_crop_box(5, 10, (8, 4)) == (1, 0, 0, 3)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize(("src", "dst"), [((40, 60), (17, 25)), ((13, 9), (30, 20)), ((64, 48), (64, 20))])
def test_resize_matches_pillow_reference(interpolation: str, src: tuple[int, int], dst: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(src) + sum(dst))
    for image in (_gradient(*src), rng.integers(0, 256, (*src, 3), dtype=np.uint8)):
        spec = _image(resize=list(dst), interpolation=interpolation, dtype="uint8", layout="nhwc")
        got = prepare_images([image], spec)[0]
        np.testing.assert_array_equal(got, pillow_resize_reference(image, *dst, interpolation))


def test_nearest_known_values() -> None:
    image = np.arange(16, dtype=np.uint8).reshape(4, 4)
    got = prepare_images([image], _image(resize=[2, 2], interpolation="nearest", color="gray", dtype="uint8"))
    np.testing.assert_array_equal(got[0, 0], [[5, 7], [13, 15]])  # source index floor((i + 0.5) * 2)


def test_full_pipeline_matches_reference_and_torch() -> None:
    torch = pytest.importorskip("torch")
    image = _gradient(60, 90)
    spec = _image(resize=32, center_crop=28, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    got = prepare_images([image, image[::-1].copy()], spec)
    assert got.shape == (2, 3, 28, 28) and got.dtype == np.float32

    resized = pillow_resize_reference(image, 32, 48)  # shorter side 60 -> 32, long side int(32 * 90 / 60)
    crop = resized[2:30, 10:38]  # top round(2.0), left round(10.0)
    expected = ((crop / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32).transpose(2, 0, 1)
    np.testing.assert_array_equal(got[0], expected)

    # torchvision's ToTensor + Normalize arithmetic, in float32 as it does it.
    tensor = torch.from_numpy(crop).permute(2, 0, 1).float().div(255)
    tensor = tensor.sub(torch.tensor(IMAGENET_MEAN)[:, None, None]).div(torch.tensor(IMAGENET_STD)[:, None, None])
    np.testing.assert_allclose(got[0], tensor.numpy(), rtol=0, atol=1e-6)


def test_tensor_path_within_one_level() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    for src, dst in [((50, 70), (23, 31)), ((31, 17), (64, 40)), ((96, 96), (32, 32))]:
        image = rng.integers(0, 256, (*src, 3), dtype=np.uint8)
        ours = prepare_images([image], _image(resize=list(dst), dtype="uint8", layout="nhwc"))[0].astype(int)
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        theirs = torch.nn.functional.interpolate(x, size=dst, mode="bilinear", align_corners=False, antialias=True)
        theirs = theirs.round().clamp(0, 255)[0].permute(1, 2, 0).numpy().astype(int)
        assert np.abs(ours - theirs).max() <= 1


def test_layouts_colors_and_dtypes() -> None:
    image = _gradient(6, 8)
    nchw = prepare_images([image], _image(scale=1.0))
    nhwc = prepare_images([image], _image(scale=1.0, layout="nhwc"))
    np.testing.assert_array_equal(nchw.transpose(0, 2, 3, 1), nhwc)
    np.testing.assert_array_equal(nhwc[0], image.astype(np.float32))
    bgr = prepare_images([image], _image(color="bgr", dtype="uint8", layout="nhwc"))
    np.testing.assert_array_equal(bgr[0], image[:, :, ::-1])
    # mean/std follow the output channel order: B first for "bgr".
    normed = prepare_images([image], _image(color="bgr", mean=[1, 2, 3], std=[2, 4, 8], scale=1.0, dtype="float64"))
    np.testing.assert_array_equal(normed[0, 0], (image[:, :, 2].astype(float) - 1) / 2)
    np.testing.assert_array_equal(normed[0, 2], (image[:, :, 0].astype(float) - 3) / 8)
    gray = prepare_images([image], _image(color="gray", dtype="uint8"))
    assert gray.shape == (1, 1, 6, 8)
    r, g, b = (image[:, :, i].astype(np.int64) for i in range(3))
    np.testing.assert_array_equal(gray[0, 0], (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)  # ITU-R 601-2
    assert prepare_images([], _image()).shape == (0, 3, 0, 0)


def test_crop_larger_than_image_pads_with_zeros() -> None:
    image = np.full((2, 3, 3), 255, np.uint8)
    got = prepare_images([image], _image(center_crop=[4, 4], mean=[0.5] * 3, std=[0.5] * 3))
    channel = got[0, 0]
    # Padding (1, 0, 1, 1) as torchvision: rows 1-2 and columns 0-2 hold the image.
    np.testing.assert_array_equal(channel, [[-1, -1, -1, -1], [1, 1, 1, -1], [1, 1, 1, -1], [-1, -1, -1, -1]])


def test_different_sizes_need_a_crop() -> None:
    spec = _image(resize=8)
    with pytest.raises(InvalidDataset, match=r"different sizes after resizing \(8x8, 8x16\); set center_crop"):
        prepare_images([_gradient(10, 10), _gradient(10, 20)], spec)
    assert prepare_images([_gradient(10, 10), _gradient(10, 20)], _image(resize=8, center_crop=8)).shape == (
        2,
        3,
        8,
        8,
    )
