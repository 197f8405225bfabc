"""The Python façade: ``scenetalk.load()`` gives a model that turns images into sentences.

    import scenetalk
    m = scenetalk.load()                       # the shipped captioner, no data, no network
    for caps in m.caption(["a.jpg", pil_image], beam_size=7, n_best=3):
        print(caps[0].text, caps[0].log_prob)

A captioner is a trained generator checkpoint plus the backbone its features came from; the
backbone is rebuilt from the checkpoint's feature-extractor id, and refused if the installed
weights differ from the ones it was trained on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import torch
from PIL import Image

from scenetalk.captioner import Caption, caption_features, load_generator
from scenetalk.checkpoint import CheckpointError
from scenetalk.features.extract import Extractor
from scenetalk.images import load_image
from scenetalk.vision.backbones import BACKBONES, create_backbone

ImageLike = str | os.PathLike | Image.Image


def shipped_captioner() -> Path:
    """The captioner that ships inside the package (``src/scenetalk/weights/captioner``)."""
    return Path(str(resources.files("scenetalk") / "weights" / "captioner"))


def shipped_alignment() -> Path:
    """The alignment model that ships inside the package (``src/scenetalk/weights/alignment``)."""
    path = Path(str(resources.files("scenetalk") / "weights" / "alignment"))
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: no alignment model ships with this version yet; pass --checkpoint "
                              "(train one with `scenetalk train alignment_flickr8k`)")
    return path


def open_searcher(index: str | os.PathLike, checkpoint: str | os.PathLike | None = None):
    """A ``search.Searcher`` for an index: with ``checkpoint``, else the checkpoint the index
    was built with (when it is still there), else the shipped alignment model."""
    import json

    from scenetalk.search import INDEX_FILE, Searcher, SearchIndexError

    if not (Path(index) / INDEX_FILE).is_file():
        raise SearchIndexError(f"{index}: not a scenetalk index (no {INDEX_FILE}); build one with "
                               "`scenetalk index build DIR --out INDEX`")
    if checkpoint is None:
        try:
            built_with = json.loads((Path(index) / INDEX_FILE).read_text(encoding="utf-8")).get("checkpoint")
        except (OSError, ValueError):
            built_with = None  # Searcher reports the damaged index
        checkpoint = built_with if built_with and Path(built_with).is_dir() else shipped_alignment()
    return Searcher(index, checkpoint)


def backbone_for(extractor_id: str, where: str | os.PathLike):
    """The installed backbone whose extractor id is ``extractor_id``, or a ``CheckpointError``."""
    name = next((n for n in BACKBONES if extractor_id.startswith(f"{n}-")), None)
    if name is None:
        raise CheckpointError(f"{where}: made for image features {extractor_id!r}, which no installed backbone "
                              f"gives (known: {', '.join(BACKBONES)})")
    backbone = create_backbone(name)
    if backbone.extractor_id != extractor_id:
        raise CheckpointError(f"{where}: made for image features {extractor_id!r}, but the installed backbone "
                              f"gives {backbone.extractor_id!r} (other weights); reinstall the version it was "
                              "trained with")
    return backbone


class Captioner:
    """Images in, sentences out. Build it with ``scenetalk.load()``."""

    def __init__(self, checkpoint: str | os.PathLike):
        self.checkpoint = Path(checkpoint)
        self.generator, self.vocab, self.meta = load_generator(self.checkpoint)
        self.extractor_id = self.meta.get("extractor_id") or ""
        self.extractor = Extractor(backbone_for(self.extractor_id, self.checkpoint),
                                   grid=self.generator.image_input == "grid")

    def features(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The generator's image input for RGB images: (N, D) vectors or (N, cells, D) grids."""
        arrays = self.extractor.features(list(images))
        return torch.from_numpy(arrays[self.generator.image_input]).float()

    def caption(self, images: ImageLike | Iterable[ImageLike], beam_size: int = 7, n_best: int = 1,
                max_len: int = 20, min_len: int = 1, length_penalty: float = 0.0,
                batch_size: int = 32) -> list[list[Caption]]:
        """For each image (a path or a PIL image) its ``n_best`` captions, best first, each with
        its total log-probability and the beam's ranking score. A path that cannot be read
        raises ``ImageError`` naming it (``scenetalk caption`` skips such files and reports them)."""
        if isinstance(images, (str, os.PathLike, Image.Image)):
            images = [images]
        images = list(images)
        out: list[list[Caption]] = []
        for start in range(0, len(images), batch_size):
            batch = [load_image(im) for im in images[start:start + batch_size]]
            out.extend(caption_features(self.generator, self.vocab, self.features(batch), beam_size=beam_size,
                                        n_best=n_best, max_len=max_len, min_len=min_len,
                                        length_penalty=length_penalty, batch_size=batch_size))
        return out


def load(checkpoint: str | os.PathLike | None = None) -> Captioner:
    """A captioner from a checkpoint folder (``model.safetensors`` + ``config.json``);
    by default the one shipped with the package."""
    path = Path(checkpoint) if checkpoint is not None else shipped_captioner()
    if checkpoint is None and not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: the shipped captioner is missing from this install; "
                              "reinstall scenetalk or pass a checkpoint folder")
    return Captioner(path)
