"""Image input: decode, color, resize, center crop, scale, normalise and lay out.

The steps follow torchvision's classic evaluation transform
``Resize(s) -> CenterCrop(c) -> ToTensor() -> Normalize(mean, std)`` on PIL
images, which is what ``torchvision.datasets.ImageFolder`` feeds it:

* **Resize** to a shorter side ``s`` gives the longer side
  ``int(s * long / short)`` (truncated, as torchvision), and resizes with
  Pillow's own ``Image.resize``, which is what torchvision calls for a PIL
  image. Pillow's bilinear and bicubic filters widen with the scale factor
  when shrinking, i.e. they antialias. On PIL images the pixels are therefore
  identical to torchvision's. torchvision's *tensor* path
  (``interpolate(..., antialias=True)``) rounds once instead of after each of
  Pillow's two passes, so against it a pixel may differ by one level (1/255
  before normalisation); the tests measure that bound.
* **CenterCrop** takes ``top = int(round((H - h) / 2))``, ``left`` likewise
  (Python's round half to even, as torchvision), and pads with zeros first
  when the crop is larger than the image, as torchvision does.
* **ToTensor + Normalize** becomes ``(pixel * scale - mean) / std``, computed
  in float64 and rounded once to the output dtype. torchvision computes in
  float32 and rounds after each operation, so its values may differ by a few
  float32 ulps (below 1e-6 for ImageNet-style statistics).

Color conversion happens first, on the decoded image: ``"gray"`` is
Pillow's ``convert("L")`` (ITU-R 601-2 luma, as torchvision's
``Grayscale``), ``"bgr"`` reverses the channels after resizing.

Unlike torchvision's default loader, decoding applies the EXIF orientation,
so a photo taken upright is upright for the model too.
"""

from __future__ import annotations

import io
import threading
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from workers.engine.arrays import Array
from workers.engine.errors import InvalidDataset
from workers.engine.processing.spec import ImageInput

__all__ = ["DEFAULT_MAX_PIXELS", "IMAGE_FORMATS", "center_crop_box", "decode_image", "prepare_images", "resized_size"]

#: Largest image decoded, in pixels (width x height): guards against
#: decompression bombs, whose small files expand to gigabytes of pixels.
DEFAULT_MAX_PIXELS = 40_000_000
#: Pillow formats decoded. Others (EPS runs Ghostscript, for one) are refused.
IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")

_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "bicubic": Image.Resampling.BICUBIC,
}


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, name: str = "the image") -> Array:
    """Decode an encoded image to an upright ``(height, width, 3)`` uint8 RGB array.

    Parameters
    ----------
    data:
        The file's bytes (PNG, JPEG, BMP, GIF, WebP or TIFF; the first frame
        of an animation).
    max_pixels:
        Refuse images with more pixels than this, before decoding them.
    name:
        How to name the image in messages, e.g. ``"image 'cat/001.png'"``.

    Raises
    ------
    InvalidDataset
        (permanent) for bytes that are not an image of those formats, a
        truncated or corrupt file, or one above ``max_pixels``.
    """
    if not data:
        raise InvalidDataset(f"{name} is an empty file")
    try:
        with warnings.catch_warnings():
            # Pillow warns on large images and palette transparency; the size
            # limit below is ours, and the rest changes nothing here.
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise InvalidDataset(
                        f"{name} is {width}x{height} pixels, more than the limit of {max_pixels:,} pixels"
                    )
                _load_strictly(image)
                upright = ImageOps.exif_transpose(image)  # None only when asked to work in place
                rgb = (upright if upright is not None else image).convert("RGB")
    except InvalidDataset:
        raise
    except UnidentifiedImageError as exc:
        raise InvalidDataset(f"{name} is not an image in a supported format ({', '.join(IMAGE_FORMATS)})") from exc
    except Image.DecompressionBombError as exc:
        # Pillow's own, higher limit fires while reading the header.
        raise InvalidDataset(f"{name} has more pixels than the limit of {max_pixels:,}") from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        # Pillow reports truncated and corrupt data as OSError or SyntaxError.
        raise InvalidDataset(f"{name} is truncated or corrupt: {exc}") from exc
    return np.array(rgb, dtype=np.uint8)


_STRICT = threading.Lock()


def _load_strictly(image: Image.Image) -> None:
    """Decode all pixels, refusing truncated data even where the process allows it.

    Other libraries in the same process (WeasyPrint does) switch on Pillow's
    global LOAD_TRUNCATED_IMAGES, which would pad a cut-off file with grey.
    """
    with _STRICT:
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            image.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def resized_size(height: int, width: int, spec: ImageInput) -> tuple[int, int]:
    """The ``(height, width)`` after the spec's resize, computed as torchvision's ``Resize``."""
    if spec.resize is None:
        return height, width
    if isinstance(spec.resize, tuple):
        return spec.resize
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = spec.resize, int(spec.resize * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def center_crop_box(height: int, width: int, crop: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(pad_top, pad_left, top, left)`` of torchvision's ``CenterCrop`` on an image of that size.

    Padding (zeros, split as torchvision: the extra pixel at the bottom/right)
    applies first when the crop is larger; ``top``/``left`` are offsets into
    the padded image.
    """
    crop_h, crop_w = crop
    pad_top = (crop_h - height) // 2 if crop_h > height else 0
    pad_left = (crop_w - width) // 2 if crop_w > width else 0
    padded_h, padded_w = max(height, crop_h), max(width, crop_w)
    return pad_top, pad_left, int(round((padded_h - crop_h) / 2.0)), int(round((padded_w - crop_w) / 2.0))


def prepare_images(images: list[Array], spec: ImageInput) -> Array:
    """Turn decoded images into one model input batch.

    Parameters
    ----------
    images:
        ``(height, width, 3)`` uint8 RGB arrays, as :func:`decode_image`
        returns (``(height, width)`` gray arrays are taken too).
    spec:
        The image steps; see the module docstring for their semantics.

    Returns
    -------
    numpy.ndarray
        ``(N, C, H, W)`` for ``"nchw"`` or ``(N, H, W, C)`` for ``"nhwc"``,
        in ``spec.dtype``; ``C`` is 1 for ``"gray"``.

    Raises
    ------
    InvalidDataset
        When the images end up with different sizes (no crop and no exact
        resize), so they cannot form one batch.
    ValueError
        For arrays that are not uint8 images.
    """
    if not images:
        shape = (0, spec.channels, 0, 0) if spec.layout == "nchw" else (0, 0, 0, spec.channels)
        return np.zeros(shape, dtype=spec.dtype)
    pixels = [_geometry(_as_pil(a, spec.color), spec) for a in images]
    sizes = sorted({p.shape[:2] for p in pixels})
    if len(sizes) > 1:
        raise InvalidDataset(
            f"the images have different sizes after resizing ({', '.join(f'{h}x{w}' for h, w in sizes[:5])}"
            f"{', ...' if len(sizes) > 5 else ''}); set center_crop or an exact resize in the processing spec"
        )
    batch = np.stack(pixels)  # (N, H, W, C) uint8
    if spec.color == "bgr":
        batch = batch[..., ::-1]
    if spec.dtype == "uint8":
        out = batch
    else:
        mean = np.asarray(spec.mean, dtype=np.float64)
        std = np.asarray(spec.std, dtype=np.float64)
        out = ((batch.astype(np.float64) * spec.scale - mean) / std).astype(spec.dtype)
    if spec.layout == "nchw":
        out = out.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out)


def _as_pil(array: Array, color: str) -> Image.Image:
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"expected a (height, width, 3) uint8 image, got {array.dtype} {array.shape}")
    image = Image.fromarray(array, "L" if array.ndim == 2 else "RGB")
    if color == "gray":
        return image.convert("L")
    return image.convert("RGB") if image.mode != "RGB" else image


def _geometry(image: Image.Image, spec: ImageInput) -> Array:
    height, width = resized_size(image.height, image.width, spec)
    if (height, width) != (image.height, image.width):
        image = image.resize((width, height), _RESAMPLE[spec.interpolation])
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if spec.center_crop is None:
        return pixels
    crop_h, crop_w = spec.center_crop
    pad_top, pad_left, top, left = center_crop_box(height, width, spec.center_crop)
    if pad_top or pad_left or crop_h > height or crop_w > width:
        padded = np.zeros((max(height, crop_h), max(width, crop_w), pixels.shape[2]), dtype=np.uint8)
        padded[pad_top : pad_top + height, pad_left : pad_left + width] = pixels
        pixels = padded
    return pixels[top : top + crop_h, left : left + crop_w]
