"""Image regions and their features (Karpathy & Fei-Fei, CVPR 2015, §3.1.1).

Karpathy & Fei-Fei represent an image by 20 regions: "the top 19 detected locations in
addition to the whole image", each described by the CNN activations of its pixels. Here:

* **Region 0 is the whole image** (class ``image``, score 1). Regions 1-19 are the detector's
  19 best boxes after dropping degenerate ones (a side under ``MIN_BOX_SIZE`` = 2% of the
  image, about 4 px at 224). Near-duplicates (IoU > 0.9 with another box) are kept: the
  detector's suppression is per class, as R-CNN's was.
* **Fewer than 19 boxes**: the remaining slots are filled, in order, from ``GRID_BOXES``, a
  fixed list of 19 boxes (the centre, the 4 halves, the 4 quadrants, the 9 cells of a 3x3
  grid, a large centre), marked class ``grid`` with score 0. Every slot always holds a real
  box and a real feature, never garbage. On Flickr8K this does not happen (SSD returns
  enough boxes for every photo), though most of the 19 are unsure (BENCHMARKS.md "Region
  features: crops vs RoI pooling").

Region features, two ways (``REGION_METHODS``):

* ``crop`` (default): the R-CNN way the paper used. Crop each box from the image,
  squash-resize it to ``region_size``, run the backbone, average-pool.
* ``roi``: RoIAlign over one backbone feature map of the whole image. Each box is sampled at
  a k x k grid of points (k = the map's side) by bilinear interpolation (``grid_sample``)
  and averaged, for all images and regions in one call. At region size 224 it reuses the
  global pass's 7x7 map; 448 runs the backbone again for a 14x14 map.

Quality (BENCHMARKS.md "Region features: crops vs RoI pooling": how close each method's
feature of a detected box is to its full-size crop's, the paper's reference): smaller crops
lose a little, RoI features of this backbone hardly differ from the global feature. Half of
the 19 boxes cover under 5% of the image (about 1.5 cells of a 7x7 map), and every cell
sees most of the image; upsampling to 448 helps only a little. A crop shows the object at
the scale the CNN was trained on.

Speed (BENCHMARKS.md "Feature extraction": every crop size, both engines, and all of
Flickr8K): with the backbone in ONNX Runtime (``backbones.py``) and the cores split between
the detector thread and the backbone, crops at full size fit the 30-minute budget for
Flickr8K. So the default is the paper's own method at full size: ``crop`` at the backbone's
input size (224 for Lite0). ``--region-size 160`` is the faster choice, ``--region-method
roi`` the fastest and weakest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from scenetalk.vision import images as image_utils
from scenetalk.vision.backbones import Backbone
from scenetalk.vision.detector import COCO_LABELS, Detections

#: Karpathy & Fei-Fei §3.1.1: the top 19 detections plus the whole image.
TOP_K = 19
NUM_REGIONS = TOP_K + 1
#: Boxes with a side shorter than this fraction of the image are dropped as degenerate.
MIN_BOX_SIZE = 0.02

IMAGE_CLASS = 0
GRID_CLASS = -1
REGION_METHODS = ("roi", "crop")
DEFAULT_REGION_METHOD = "crop"
#: RoI maps are computed at twice the backbone's input size (448 for Lite0: a 14x14 map);
#: crops default to the input size itself, as R-CNN (see the module docstring).
DEFAULT_ROI_SCALE = 2

WHOLE_IMAGE = (0.0, 0.0, 1.0, 1.0)


def _grid_boxes() -> list[tuple[float, float, float, float]]:
    boxes = [(0.25, 0.25, 0.75, 0.75)]
    boxes += [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 0.5), (0.0, 0.5, 1.0, 1.0)]
    boxes += [(x, y, x + 0.5, y + 0.5) for y in (0.0, 0.5) for x in (0.0, 0.5)]
    third = 1.0 / 3.0
    boxes += [(i * third, j * third, (i + 1) * third, (j + 1) * third) for j in range(3) for i in range(3)]
    boxes += [(0.125, 0.125, 0.875, 0.875)]
    return boxes


#: Fillers for images with fewer than ``TOP_K`` usable detections, used in this order.
GRID_BOXES = _grid_boxes()
assert len(GRID_BOXES) == TOP_K


def region_class_names() -> dict[int, str]:
    """Every class id a region can carry: COCO ids plus ``image`` (0) and ``grid`` (-1)."""
    return {GRID_CLASS: "grid", IMAGE_CLASS: "image", **COCO_LABELS}


@dataclass
class Regions:
    """The 20 regions of one image: region 0 is the whole image."""

    boxes: np.ndarray  # float32 (20, 4) normalised x1, y1, x2, y2
    scores: np.ndarray  # float32 (20,)
    class_ids: np.ndarray  # int16 (20,)

    @property
    def class_names(self) -> list[str]:
        names = region_class_names()
        return [names.get(int(c), f"coco-{int(c)}") for c in self.class_ids]


def select_regions(detections: Detections, top_k: int = TOP_K, min_size: float = MIN_BOX_SIZE) -> Regions:
    """Whole image + the ``top_k`` best non-degenerate boxes, padded with ``GRID_BOXES``."""
    boxes = np.clip(np.asarray(detections.boxes, dtype=np.float32).reshape(-1, 4), 0.0, 1.0)
    scores = np.asarray(detections.scores, dtype=np.float32).reshape(-1)
    classes = np.asarray(detections.class_ids).reshape(-1)
    keep = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    order = np.argsort(-scores, kind="stable")[:top_k]
    boxes, scores, classes = boxes[order], scores[order], classes[order]

    missing = top_k - len(order)
    if missing > 0:
        fill = np.array((GRID_BOXES * (missing // len(GRID_BOXES) + 1))[:missing], dtype=np.float32)
        boxes = np.concatenate([boxes, fill])
        scores = np.concatenate([scores, np.zeros(missing, np.float32)])
        classes = np.concatenate([classes, np.full(missing, GRID_CLASS)])

    return Regions(
        boxes=np.concatenate([np.array([WHOLE_IMAGE], np.float32), boxes]).astype(np.float32),
        scores=np.concatenate([[1.0], scores]).astype(np.float32),
        class_ids=np.concatenate([[IMAGE_CLASS], classes]).astype(np.int16),
    )


def roi_align(feature_maps: np.ndarray, boxes: np.ndarray, samples: int | None = None) -> np.ndarray:
    """Average feature inside each box: (B, C, h, w) maps, (B, R, 4) boxes -> (B, R, C).

    Boxes are normalised x1, y1, x2, y2 (0 = the image's left/top edge, 1 = right/bottom).
    Each box is sampled at ``samples`` x ``samples`` points (default: the map's side), the
    centres of an even grid over the box, read by bilinear interpolation and averaged, as
    RoIAlign with one output bin (torch's ``grid_sample``, bilinear, border padding,
    align_corners=False). Points near the border read the edge cells. Bilinear weights are
    products of one weight per row and one per column, so the mean over the k x k points is
    one weighted sum with the rows' mean weights times the columns'.
    """
    b, c, h, w = feature_maps.shape
    k = samples or max(h, w)
    boxes = np.asarray(boxes, dtype=np.float32)
    steps = (np.arange(k, dtype=np.float32) + 0.5) / k                      # (k,)

    def axis_weights(lo: np.ndarray, hi: np.ndarray, size: int) -> np.ndarray:
        # sample positions in cell coordinates (align_corners=False), clamped to the border
        at = np.clip((lo[..., None] + (hi - lo)[..., None] * steps) * size - 0.5, 0, size - 1)   # (B, R, k)
        low = np.floor(at).astype(np.int64)
        frac = (at - low).astype(np.float32)
        weights = np.zeros((*at.shape, size), np.float32)
        np.put_along_axis(weights, low[..., None], (1 - frac)[..., None], axis=-1)
        high = np.minimum(low + 1, size - 1)
        np.add.at(weights, (*np.indices(at.shape), high), frac)
        return weights.mean(axis=2)                                            # (B, R, size)

    wy = axis_weights(boxes[..., 1], boxes[..., 3], h)
    wx = axis_weights(boxes[..., 0], boxes[..., 2], w)
    return np.einsum("bchw,brh,brw->brc", np.asarray(feature_maps, dtype=np.float32), wy, wx, optimize=True)


def crop_box(image: Image.Image, box: Sequence[float], size: int) -> Image.Image:
    """The pixels of a normalised box, squash-resized to ``size`` x ``size`` (R-CNN style)."""
    width, height = image.size
    x1, y1, x2, y2 = (float(v) for v in box)
    left = min(int(np.floor(x1 * width)), width - 1)
    top = min(int(np.floor(y1 * height)), height - 1)
    right = max(int(np.ceil(x2 * width)), left + 1)
    bottom = max(int(np.ceil(y2 * height)), top + 1)
    return image.resize((size, size), Image.Resampling.BICUBIC, box=(left, top, right, bottom))


class RegionFeaturizer:
    """Features of the 20 regions of each image, by ``roi`` or ``crop``.

    ``region_size``: for ``roi`` the image size the feature map is computed at (the
    backbone's input size reuses the global map); for ``crop`` the size crops are resized
    to. Default: see ``default_region_size`` (448 for ``roi``, 224 for ``crop`` with Lite0).
    """

    def __init__(self, backbone: Backbone, method: str = DEFAULT_REGION_METHOD, region_size: int | None = None):
        if method not in REGION_METHODS:
            raise ValueError(f"unknown region method {method!r}; expected one of {', '.join(REGION_METHODS)}")
        if region_size is None:
            region_size = default_region_size(backbone.input_size, method)
        self.backbone = backbone
        self.method = method
        self.region_size = int(region_size)

    @property
    def id_piece(self) -> str:
        return f"top{TOP_K}-{self.method}{self.region_size}"

    def config(self) -> dict:
        return {"method": self.method, "region_size": self.region_size, "top_k": TOP_K,
                "num_regions": NUM_REGIONS, "min_box_size": MIN_BOX_SIZE, "padding": "grid boxes"}

    def prepare(self, images: Sequence[Image.Image], boxes: np.ndarray) -> np.ndarray | None:
        """The pixel work, as (M, S, S, 3) uint8 (run it in a loader thread, beside torch).

        ``roi``: the images at ``region_size``, or None when the global map is reused.
        ``crop``: every box's crop, except a whole-image region 0 that equals the global input.
        """
        size = self.region_size
        if self.method == "roi":
            return None if size == self.backbone.input_size else image_utils.to_uint8_batch(images, size)
        first = 1 if self._reuses_global(boxes) else 0
        crops = [crop_box(im, box, size) for im, image_boxes in zip(images, boxes) for box in image_boxes[first:]]
        return image_utils.to_uint8_batch(crops, size)

    def compute(self, prepared: np.ndarray | None, boxes: np.ndarray, global_map: np.ndarray) -> np.ndarray:
        """(B, R, C) region features from ``prepare``'s output and the global (B, C, h, w) map."""
        boxes = np.asarray(boxes, dtype=np.float32)
        count, num_boxes = boxes.shape[:2]
        if self.method == "roi":
            fmap = global_map if prepared is None else self.backbone.feature_map(self.backbone.normalize(prepared))
            return roi_align(fmap, boxes)
        pooled = self.backbone.pooled(self.backbone.feature_map(self.backbone.normalize(prepared)))
        if not self._reuses_global(boxes):
            return pooled.reshape(count, num_boxes, -1)
        pooled = pooled.reshape(count, num_boxes - 1, -1)
        return np.concatenate([self.backbone.pooled(global_map)[:, None], pooled], axis=1)

    def _reuses_global(self, boxes: np.ndarray) -> bool:
        # A whole-image region cropped at the input size *is* the global input: skip its pass.
        boxes = np.asarray(boxes)
        return (self.method == "crop" and self.region_size == self.backbone.input_size
                and len(boxes) > 0 and bool(np.all(boxes[:, 0] == np.array(WHOLE_IMAGE, np.float32))))

    def features(self, images: Sequence[Image.Image], boxes: np.ndarray,
                 global_map: np.ndarray | None = None) -> np.ndarray:
        """(B, R, C) region features of ``boxes`` (B, R, 4; region 0 the whole image)."""
        if global_map is None:
            global_map = self.backbone.feature_map(self.backbone.preprocess(images))
        return self.compute(self.prepare(images, boxes), boxes, global_map)


def default_region_size(input_size: int, method: str) -> int:
    if method == "roi":
        return input_size * DEFAULT_ROI_SCALE
    return input_size
