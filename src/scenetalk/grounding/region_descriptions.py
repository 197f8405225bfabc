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

``describe_regions`` is the job for one photo (``Scenetalk.regions``, ``scenetalk regions``,
Figure 7): its best detections, each with the phrase a generator gives its feature.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from scenetalk.errors import ScenetalkError
from scenetalk.grounding.photo_regions import image_name, photo_regions, region_record
from scenetalk.progress import progress_bar
from scenetalk.vision.images import ImageLike


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


def box_features(featurizer, image_dir: str | os.PathLike, boxes: Sequence[HumanBox], progress: bool = True
                 ) -> np.ndarray:
    """(len(boxes), D) float32 crop features of the boxes, computed as the feature store
    computes its regions (``RegionFeaturizer``), one image at a time."""
    from scenetalk.vision.images import load_image

    by_image: dict[str, list[int]] = {}
    for i, b in enumerate(boxes):
        by_image.setdefault(b.image, []).append(i)
    out = None
    bar = progress_bar(total=len(by_image), unit="image", desc="box features", disable=not progress)
    for name, rows in by_image.items():
        image = load_image(Path(image_dir) / name)
        feats = np.asarray(featurizer.features([image], np.stack([boxes[i].box for i in rows])[None])[0],
                           dtype=np.float32)
        if out is None:
            out = np.zeros((len(boxes), feats.shape[-1]), dtype=np.float32)
        out[rows] = feats
        bar.update(1)
    bar.close()
    return out


def _unit_rows(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Each row over its L2 norm (at least ``eps``), as ``torch.nn.functional.normalize``."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(eps))


def nearest_neighbour_phrases(queries, corpus: dict, flat_features, flat_rows: dict[str, int],
                              batch_size: int = 512) -> list[str]:
    """For each query feature, the best-scoring informative snippet of the most similar
    *training* region of the corpus (cosine similarity of CNN features). ``queries`` (Q, D)
    and ``flat_features`` (``snippets.flat_region_rows``) are arrays, or anything
    ``np.asarray`` reads."""
    from scenetalk.grounding.snippets import informative, region_key

    best: dict[str, tuple[float, str]] = {}
    for s in corpus["snippets"]:
        if s["split"] != "train" or not informative(s["text"].split()):
            continue
        key = region_key(s["image"], s["region"])
        if key not in best or s["score"] > best[key][0]:
            best[key] = (s["score"], s["text"])
    keys = sorted(best)
    bank = _unit_rows(np.asarray(flat_features[[flat_rows[k] for k in keys]], dtype=np.float32))
    q = _unit_rows(np.asarray(queries, dtype=np.float32))
    nearest = [int(j) for i in range(0, len(q), batch_size) for j in (q[i:i + batch_size] @ bank.T).argmax(axis=1)]
    return [best[keys[int(j)]][1] for j in nearest]


# -- one photo: Figure 7 as data ------------------------------------------------------------

@dataclass
class RegionDescriptions:
    """The best detections of a photo, each described by a phrase (Karpathy & Fei-Fei Figure 7):
    ``regions`` are records of index, class, detector score, box in pixels, phrase and its
    log-probability, by detector score. ``generator`` is the checkpoint that wrote the phrases,
    ``generator_description`` how to name it to a reader. ``photo`` and ``boxes`` (K, 4,
    normalised) are what a picture needs (``presentation.pictures.region_descriptions_picture``);
    they are left out of JSON."""
    image: str | None
    generator: str
    generator_description: str
    regions: list[dict]
    photo: Image.Image = field(repr=False, metadata={"json": False})
    boxes: np.ndarray = field(repr=False, metadata={"json": False})


def region_extractor(captioner):
    """An extractor giving the 20 regions with the backbone ``captioner``'s generator was
    trained on. A generator of whole photos names only its backbone; the detector is added."""
    from scenetalk.features.extract import Extractor

    if captioner.extractor.regions:
        return captioner.extractor
    if captioner.generator.image_input != "global":
        raise ScenetalkError(f"{captioner.checkpoint}: this generator reads a grid of cells, not one vector "
                             "per region; use a generator of global features (e.g. the shipped captioner)")
    return Extractor(captioner.extractor.backbone, regions=True, grid=False)


def describe_regions(captioner, extractor, image: ImageLike, top: int = 5, beam_size: int = 7, max_len: int = 16,
                     description: str = "") -> RegionDescriptions:
    """The ``top`` detections of ``image`` (regions 1-19 by detector score; region 0, the whole
    photo, is left out), each described by ``captioner``'s generator fed that region's feature:
    the crop's CNN vector, the kind of vector a generator of whole photos reads. ``extractor``
    gives the regions (``region_extractor(captioner)``); ``description`` names the generator."""
    from scenetalk.captioning.captioner import caption_features, default_length_penalty

    photo, arrays = photo_regions(image, extractor)
    # Regions 1-19 by detector score (stable, so equal scores keep the detector's order);
    # grid fillers (score 0) come last.
    chosen = 1 + np.argsort(-arrays["box_scores"][1:], kind="stable")[:top]
    features = np.asarray(arrays["regions"][chosen], dtype=np.float32)
    phrases = [caps[0] for caps in caption_features(captioner.generator, captioner.vocab, features,
                                                    beam_size=beam_size, max_len=max_len,
                                                    length_penalty=default_length_penalty(captioner.meta))]
    records = [{**region_record(int(k), arrays, photo.size), "phrase": c.text, "log_prob": round(c.log_prob, 4)}
               for k, c in zip(chosen, phrases)]
    return RegionDescriptions(image_name(image), str(captioner.checkpoint), description, records, photo,
                              arrays["boxes"][chosen])
