"""A photo's regions as the grounding results name them: the whole photo (region 0) and its
19 best detections (Karpathy & Fei-Fei §3.1.1), each with its class, detector score and box
in the photo's own pixels. Shared by ``word_regions.align_words`` and
``region_descriptions.describe_regions``.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from scenetalk.vision.images import ImageLike, load_image


def photo_regions(image: ImageLike, extractor) -> tuple[Image.Image, dict[str, np.ndarray]]:
    """The photo (a path, read with ``load_image``, whose ``ImageError`` names an unreadable
    file, or a PIL image) and its region arrays (``Extractor.features`` of the one image):
    regions, boxes, box_scores, box_classes."""
    photo = load_image(image)
    arrays = extractor.features([photo])
    return photo, {k: v[0] for k, v in arrays.items()}


def image_name(image: ImageLike) -> str | None:
    """How a result names its photo: the path as given, a PIL image's file name, else None."""
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    return getattr(image, "filename", None) or None


def region_record(k: int, arrays: dict, size: tuple[int, int]) -> dict:
    """Region ``k`` as results show it: index, class, detector score, box in the photo's pixels
    (a dict, since its JSON key ``class`` cannot be a field name)."""
    from scenetalk.vision.boxes import to_pixels
    from scenetalk.vision.regions import region_class_names

    box = [round(float(x), 1) for x in to_pixels(arrays["boxes"][k], *size)[0]]
    class_id = int(arrays["box_classes"][k])
    name = region_class_names().get(class_id, f"class-{class_id}")
    return {"region": int(k), "class": name, "detector_score": round(float(arrays["box_scores"][k]), 4), "box": box}


def box_text(box) -> str:
    """A pixel box as printed: whole pixels are precise enough to find it on the photo."""
    return "({:.0f}, {:.0f}, {:.0f}, {:.0f})".format(*box)
