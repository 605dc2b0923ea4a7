"""Image explanations in the user's terms: features are pixels, patches or superpixels; heatmaps over the original image.

A mask assigns every pixel of the model input (``(C, H, W)`` or
``(H, W, C)``) to a feature; all channels of a pixel share it. Attributions
per feature are spread back over the feature's pixels (divided by its size,
so a heatmap sums to the total attribution) and resized to the original
image so it can be drawn over it.
"""

from __future__ import annotations

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError

__all__ = ["feature_mask", "heatmap", "overlay_png_array", "patch_mask", "superpixel_mask"]


def patch_mask(height: int, width: int, patch: int) -> Array:
    """(H, W) feature ids of square patches of side ``patch`` (the last row/column of patches may be smaller)."""
    if patch < 1:
        raise EngineError(f"the patch size must be at least 1 pixel, got {patch}")
    cols = -(-width // patch)
    r = np.arange(height)[:, None] // patch
    c = np.arange(width)[None, :] // patch
    return (r * cols + c).astype(np.int64)


def superpixel_mask(image_hwc: Array, segments: int, *, compactness: float = 10.0) -> Array:
    """(H, W) feature ids of SLIC superpixels of the image (scikit-image), numbered from 0."""
    try:
        from skimage.segmentation import slic
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EngineError(
            "superpixel masks need scikit-image on the worker (pip install scikit-image); use patch masks instead"
        ) from exc
    labels = slic(np.asarray(image_hwc, dtype=np.float64), n_segments=segments, compactness=compactness, start_label=0)
    _, ids = np.unique(labels, return_inverse=True)
    return np.asarray(ids.reshape(labels.shape).astype(np.int64))


def feature_mask(pixel_mask: Array, input_shape: tuple[int, ...], layout: str = "nchw") -> Array:
    """Broadcast an (H, W) mask over the channels of one model input (``layout`` ``nchw`` or ``nhwc``)."""
    if layout == "nchw":
        c, h, w = input_shape
        if pixel_mask.shape != (h, w):
            raise EngineError(f"a mask of shape {pixel_mask.shape} does not fit an input of {input_shape}")
        return np.broadcast_to(pixel_mask[None], (c, h, w)).copy()
    h, w, c = input_shape
    if pixel_mask.shape != (h, w):
        raise EngineError(f"a mask of shape {pixel_mask.shape} does not fit an input of {input_shape}")
    return np.broadcast_to(pixel_mask[:, :, None], (h, w, c)).copy()


def heatmap(attributions: Array, pixel_mask: Array, out_size: tuple[int, int] | None = None) -> Array:
    """(H, W) heatmap: each pixel gets its feature's attribution over the feature's pixel count.

    With ``out_size`` ``(height, width)`` of the original image the map is
    resized to it (nearest neighbour, so patch edges stay where they are).
    """
    ids = pixel_mask.reshape(-1)
    sizes = np.bincount(ids, minlength=len(attributions)).astype(np.float64)
    per_pixel = (np.asarray(attributions, dtype=np.float64) / np.maximum(sizes, 1))[ids].reshape(pixel_mask.shape)
    if out_size is None:
        return np.asarray(per_pixel)
    oh, ow = out_size
    rows = np.minimum((np.arange(oh) * pixel_mask.shape[0]) // oh, pixel_mask.shape[0] - 1)
    cols = np.minimum((np.arange(ow) * pixel_mask.shape[1]) // ow, pixel_mask.shape[1] - 1)
    return np.asarray(per_pixel[rows][:, cols])


def overlay_png_array(image_hwc: Array, heat: Array, *, alpha: float = 0.5) -> Array:
    """RGB uint8 image with the heatmap blended over it: red for positive, blue for negative attribution."""
    img = np.asarray(image_hwc, dtype=np.float64)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.max() > 1.0:
        img = img / 255.0
    scale = float(np.abs(heat).max()) or 1.0
    h = np.clip(heat / scale, -1.0, 1.0)[:, :, None]
    colour = np.where(h > 0, np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    weight = alpha * np.abs(h)
    out = img[:, :, :3] * (1 - weight) + colour * weight
    return np.asarray((np.clip(out, 0, 1) * 255).round().astype(np.uint8))
