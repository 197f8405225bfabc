"""Box arithmetic on normalised boxes.

Our boxes are float ``(x0, y0, x1, y1)`` in **continuous** coordinates of the image scaled to
[0, 1] on each axis: ``(0, 0, 1, 1)`` is the whole image whatever its size or aspect ratio,
which is why the same box fits the original photo and its 224x224 squashed copy.

Pixel-indexed datasets (Pascal VOC, Flickr30K Entities) give ``xmin..xmax`` as 1-based
*inclusive* pixel numbers: pixel ``i`` covers the continuous interval ``[i-1, i]``, so the
box covers ``[xmin-1, xmax]`` and becomes ``x0 = (xmin-1)/W``, ``x1 = xmax/W`` (likewise y
with H). A one-pixel box (``xmin == xmax``) thus has width ``1/W``, never zero.
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_boxes", "box_area", "box_iou", "inclusive_pixels_to_normalized", "to_pixels", "union_box"]


def as_boxes(boxes) -> np.ndarray:
    """``boxes`` as a float64 ``(N, 4)`` array; a single box ``(4,)`` becomes ``(1, 4)``."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == 4:
        return arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"expected boxes of shape (N, 4), got {arr.shape}")
    return arr


def inclusive_pixels_to_normalized(boxes, width: float, height: float) -> np.ndarray:
    """1-based inclusive pixel boxes ``(xmin, ymin, xmax, ymax)`` -> normalised float32 boxes.

    Computed in float64 and rounded once to float32, so e.g. ``(251, 1, 500, 188)`` in a
    500x375 photo is exactly ``float32([0.5, 0, 1, 188/375])``.
    """
    arr = as_boxes(boxes)
    scale = np.array([width, height, width, height], dtype=np.float64)
    return ((arr - np.array([1.0, 1.0, 0.0, 0.0])) / scale).astype(np.float32)


def to_pixels(boxes, width: float = 224, height: float = 224) -> np.ndarray:
    """Normalised boxes -> continuous pixel-edge coordinates of a ``width`` x ``height`` image.

    Default: our 224x224 squashed images. ``(0, 0, 1, 1)`` -> ``(0, 0, 224, 224)``; to draw
    with PIL's inclusive rectangles subtract 1 from x1 and y1.
    """
    return (as_boxes(boxes) * np.array([width, height, width, height], dtype=np.float64)).astype(np.float32)


def union_box(boxes) -> np.ndarray:
    """The smallest box ``(4,)`` float32 covering all of ``boxes`` (N >= 1).

    The Plummer et al. phrase-localisation protocol scores a phrase whose chain has several
    boxes against their union.
    """
    arr = as_boxes(boxes)
    if len(arr) == 0:
        raise ValueError("union_box needs at least one box")
    return np.concatenate([arr[:, :2].min(axis=0), arr[:, 2:].max(axis=0)]).astype(np.float32)


def box_area(boxes) -> np.ndarray:
    """Areas of boxes of any leading shape (..., 4); inverted boxes have area 0."""
    boxes = np.asarray(boxes)
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)


def box_iou(a, b) -> np.ndarray:
    """Pairwise intersection over union: ``(A, 4)`` x ``(B, 4)`` -> ``(A, B)`` float32.

    Continuous coordinates, so the area is ``(x1 - x0) * (y1 - y0)`` with no +1. Pairs whose
    union has zero area (two empty boxes) get IoU 0 rather than NaN.
    """
    a, b = as_boxes(a), as_boxes(b)
    area_a, area_b = box_area(a), box_area(b)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou.astype(np.float32)
