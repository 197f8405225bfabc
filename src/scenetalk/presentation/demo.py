"""The main job on built-in defaults (``scenetalk demo``): the bundled sample photos captioned
with the shipped captioner (no dataset, no network), their global features and 20 regions
(Karpathy & Fei-Fei §3.1.1) extracted into a feature store, what the detector found, how
similar the photos are, and a picture of the confident detections under each caption."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scenetalk.captioning.captioner import Caption, Captioner
from scenetalk.presentation import MIN_DETECTOR_SCORE

#: Detections listed and drawn per photo, at most (the best first).
MOST_DETECTIONS = 5


def confident_detections(scores: np.ndarray, min_score: float, most: int = MOST_DETECTIONS) -> list[int]:
    """The regions (of a photo's 20) worth showing: detections 1-19 (region 0 is the whole
    photo) scoring at least ``min_score``, at most ``most``, the best first."""
    found = [k for k in range(1, len(scores)) if scores[k] >= min_score]
    return sorted(found, key=lambda k: -scores[k])[:most]


@dataclass
class DemoPhoto:
    name: str
    licence: str
    captions: list[Caption]
    detections: list[dict]          # {"class", "score", "box"} of the confident detections, best first


@dataclass
class DemoResult:
    photos: list[DemoPhoto]
    generator: str                  # the shipped captioner's model type
    store: str                      # the feature store folder
    extractor_id: str
    feature_dim: int
    grid_cells: int
    regions_per_photo: int
    similarity: list[list[float]]   # cosine similarity of the photos' global features
    picture: str
    extraction_seconds: float | None = None   # None: the store was complete already
    min_score: float = MIN_DETECTOR_SCORE
    beam_size: int = field(default=7)


def run_demo(out: str | os.PathLike = "scenetalk-demo", beam_size: int = 7, min_score: float = MIN_DETECTOR_SCORE,
             progress: bool = True, captioner: Captioner | None = None) -> DemoResult:
    """Caption the sample photos (``beam_size``, the 3 best), extract their features and regions
    into ``out/features`` (resumable: a complete store is not extracted again), and draw
    ``out/regions.png``. ``captioner``: default the shipped one."""
    from scenetalk.data.sample_photos import SAMPLE_PHOTOS, sample_photo_paths
    from scenetalk.errors import ScenetalkError
    from scenetalk.features.extract import extract
    from scenetalk.features.store import FeatureStore
    from scenetalk.presentation.pictures import detections_picture, save_png
    from scenetalk.vision.images import load_image

    if beam_size < 1:
        raise ScenetalkError(f"beam size (--beam) must be at least 1 (got {beam_size})")
    if not 0 <= min_score <= 1:
        raise ScenetalkError(f"--min-score is a detector confidence between 0 and 1 (got {min_score})")
    if captioner is None:
        from scenetalk.weights import shipped_captioner

        captioner = Captioner(shipped_captioner())
    paths = [str(p) for p in sample_photo_paths()]
    all_captions = captioner.caption(paths, beam_size=beam_size, n_best=min(3, beam_size))
    store_dir = Path(out) / "features"
    extraction = extract([(os.path.basename(p), p) for p in paths], store_dir, regions=True, progress=progress)
    store = FeatureStore.open(store_dir)
    photos, panels = [], []
    for sample, path, caps in zip(SAMPLE_PHOTOS, paths, all_captions):
        name = os.path.basename(path)
        row = store.row(name)
        scores, classes = store.box_scores[row], store.box_class_names(name)
        shown = confident_detections(scores, min_score)
        detections = [{"class": classes[k], "score": float(scores[k]), "box": store.boxes[row, k].tolist()}
                      for k in shown]
        photos.append(DemoPhoto(name, sample.licence, caps, detections))
        title = f"{name}\n{caps[0].text}" + ("" if shown else f"\n(no detection scores {min_score:g} or more)")
        panels.append((load_image(path), title, store.boxes[row, shown],
                       [f"{d['class']} {d['score']:.2f}" for d in detections]))
    g = np.asarray(store.global_features, dtype=np.float32)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    picture = Path(out) / "regions.png"
    save_png(detections_picture(panels), picture)
    return DemoResult(photos, captioner.meta["model"]["type"], str(store_dir), store.extractor_id, store.feature_dim,
                      store.grid.shape[1], store.regions.shape[1], (g @ g.T).tolist(), str(picture),
                      None if extraction.already_done else extraction.seconds, min_score, beam_size)
