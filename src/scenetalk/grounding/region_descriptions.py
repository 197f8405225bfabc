"""Describing image regions, evaluated on human boxes (Karpathy & Fei-Fei §4.3, Table 3).

The paper scored region descriptions against snippets that people wrote for boxes they drew
on COCO images. Here the human boxes and phrases are Flickr30K Entities': every box of an
image is described by the phrases whose coreference chain it belongs to ("a pink dress",
"her dress", ...). For each box, a generator is fed the features of that box (a crop of the
photo, as for the 19 detected regions) and its phrase is scored against the box's phrases.

Rows, all scored against the same references so that they can be compared:

* the region generator (trained on the MRF's region-snippet corpus);
* the full-frame generator (trained on whole images) fed the same box;
* nearest neighbour: the snippet of the most similar training region (cosine of features);
* human agreement: one human phrase against the others.

Only boxes with at least two different human phrases are used: one phrase is held out as the
human row's candidate and the rest are every row's references.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scenetalk.progress import progress_bar


@dataclass
class HumanBox:
    image: str
    box: np.ndarray          # normalised (x0, y0, x1, y1)
    phrases: list[str]       # the distinct phrases (tokens joined) of the chains it belongs to


def human_boxes(entities: dict) -> list[HumanBox]:
    """Every distinct human box of the images of ``entities`` with the phrases that refer to it,
    in a fixed order (image name, then first mention)."""
    out = []
    for name in sorted(entities):
        image = entities[name]
        phrases_of: dict[str, list[str]] = {}
        for sentence in image.sentences:
            for p in sentence.phrases:
                text = " ".join(p.tokens)
                if text and text not in phrases_of.setdefault(p.chain_id, []):
                    phrases_of[p.chain_id].append(text)
        by_box: dict[tuple, HumanBox] = {}
        for chain, boxes in image.boxes.items():
            for box in boxes:
                key = tuple(np.round(box, 5))
                item = by_box.setdefault(key, HumanBox(name, np.asarray(box, dtype=np.float32), []))
                item.phrases += [t for t in phrases_of.get(chain, []) if t not in item.phrases]
        out += [b for b in by_box.values() if b.phrases]
    return out


@torch.no_grad()
def box_features(featurizer, image_dir: str | os.PathLike, boxes: Sequence[HumanBox], progress: bool = True
                 ) -> torch.Tensor:
    """(len(boxes), D) crop features of the boxes, computed as the feature store computes its
    regions (``RegionFeaturizer``), one image at a time."""
    from scenetalk.vision.images import load_image

    by_image: dict[str, list[int]] = {}
    for i, b in enumerate(boxes):
        by_image.setdefault(b.image, []).append(i)
    out = None
    bar = progress_bar(total=len(by_image), unit="image", desc="box features", disable=not progress)
    for name, rows in by_image.items():
        image = load_image(Path(image_dir) / name)
        feats = featurizer.features([image], np.stack([boxes[i].box for i in rows])[None])[0]
        if out is None:
            out = torch.zeros(len(boxes), feats.size(-1))
        out[rows] = feats.float()
        bar.update(1)
    bar.close()
    return out


def nearest_neighbour_phrases(queries: torch.Tensor, corpus: dict, flat_features: torch.Tensor,
                              flat_rows: dict[str, int], batch_size: int = 512) -> list[str]:
    """For each query feature, the best-scoring informative snippet of the most similar
    *training* region of the corpus (cosine similarity of CNN features)."""
    from scenetalk.grounding.snippets import informative, region_key

    best: dict[str, tuple[float, str]] = {}
    for s in corpus["snippets"]:
        if s["split"] != "train" or not informative(s["text"].split()):
            continue
        key = region_key(s["image"], s["region"])
        if key not in best or s["score"] > best[key][0]:
            best[key] = (s["score"], s["text"])
    keys = sorted(best)
    bank = torch.nn.functional.normalize(flat_features[torch.tensor([flat_rows[k] for k in keys])].float(), dim=1)
    q = torch.nn.functional.normalize(queries.float(), dim=1)
    nearest = torch.cat([(q[i:i + batch_size] @ bank.T).argmax(dim=1) for i in range(0, len(q), batch_size)])
    return [best[keys[int(j)]][1] for j in nearest]
