"""Captioning images with a trained caption generator.

``Captioner`` is a generator checkpoint plus the backbone its features came from (rebuilt
from the checkpoint's feature-extractor id, and refused if the installed weights differ);
``caption_features`` decodes captions for cached features with beam search or greedy
decoding (``captioning.decoding``). Checkpoints are read by ``checkpoint.load_generator``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from scenetalk.captioning.decoding import Hypothesis, beam_search, greedy
from scenetalk.checkpoint import CheckpointError, load_generator
from scenetalk.data.text import Vocabulary
from scenetalk.errors import ScenetalkError
from scenetalk.features.extract import extractor_for
from scenetalk.models.generator import CaptionGenerator
from scenetalk.vision.images import ImageLike, loaded_batches


@dataclass
class Caption:
    text: str
    log_prob: float
    score: float
    complete: bool


def default_length_penalty(meta: dict) -> float:
    """A checkpoint's beam-search length normalisation (``decoding.length_penalty``, chosen on
    validation when it was shipped), else 0."""
    return float(meta.get("decoding", {}).get("length_penalty", 0.0))


def check_features(checkpoint: str | os.PathLike, meta: dict, store) -> None:
    """A generator reads the store only if it was trained on the same features: its extractor
    id is the store's, or (a whole-photo captioner) the store's backbone part, whose global
    features a region store holds unchanged."""
    have = meta.get("extractor_id") or ""
    if have not in (store.extractor_id, store.extractor_id.split("+")[0]):
        raise CheckpointError(f"{checkpoint}: made for image features {have!r}, but {store.path} holds "
                              f"{store.extractor_id!r}; pass features made by the checkpoint's extractor")


def load_generator_for(checkpoint: str | os.PathLike, store, one_vector: bool = False):
    """A caption generator checked against the store (see ``check_features``); ``one_vector``:
    it must read one vector per image (so it can read one region's)."""
    model, vocab, meta = load_generator(checkpoint)
    check_features(checkpoint, meta, store)
    if one_vector and model.image_input != "global":
        raise ScenetalkError(f"{checkpoint}: this generator reads a grid of cells, not one vector per region; "
                             "use a generator of global features (e.g. the shipped captioner)")
    return model, vocab, meta


def _to_caption(vocab: Vocabulary, h: Hypothesis) -> Caption:
    return Caption(" ".join(vocab.decode(h.tokens)), h.log_prob, h.score, h.complete)


@torch.no_grad()
def caption_features(model: CaptionGenerator, vocab: Vocabulary, features: torch.Tensor, beam_size: int = 7,
                     n_best: int = 1, max_len: int = 20, min_len: int = 1, length_penalty: float = 0.0,
                     batch_size: int = 100, allow_unk: bool = False) -> list[list[Caption]]:
    """Captions for a batch of cached features ((N, D) vectors or (N, cells, D) grids).
    ``<unk>`` is never generated unless ``allow_unk``: it says nothing to a reader."""
    banned = () if allow_unk else (vocab.unk_id,)
    out: list[list[Caption]] = []
    for chunk in features.split(batch_size):
        chunk = chunk.float()
        state = model.init_state(chunk)
        if beam_size == 1 and n_best == 1:
            hyps = [[h] for h in greedy(model, state, len(chunk), vocab.start_id, vocab.end_id, max_len, min_len,
                                           banned=banned)]
        else:
            hyps = beam_search(model, state, len(chunk), vocab.start_id, vocab.end_id, beam_size=beam_size,
                               n_best=n_best, max_len=max_len, min_len=min_len, length_penalty=length_penalty,
                               banned=banned)
        out.extend([_to_caption(vocab, h) for h in row] for row in hyps)
    return out







class Captioner:
    """Images in, sentences out. Build it with ``scenetalk.load()``."""

    def __init__(self, checkpoint: str | os.PathLike):
        self.checkpoint = Path(checkpoint)
        self.generator, self.vocab, self.meta = load_generator(self.checkpoint)
        self.extractor_id = self.meta.get("extractor_id") or ""
        self.extractor = extractor_for(self.extractor_id, self.checkpoint, grid=self.generator.image_input == "grid")

    def features(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The generator's image input for RGB images: (N, D) vectors or (N, cells, D) grids."""
        arrays = self.extractor.features(list(images))
        return torch.from_numpy(arrays[self.generator.image_input]).float()

    def caption(self, images: ImageLike | Iterable[ImageLike], beam_size: int = 7, n_best: int = 1,
                max_len: int = 20, min_len: int = 1, length_penalty: float | None = None,
                batch_size: int = 32) -> list[list[Caption]]:
        """For each image (a path or a PIL image) its ``n_best`` captions, best first, each with
        its total log-probability and the beam's ranking score. A path that cannot be read
        raises ``ImageError`` naming it (``scenetalk caption`` skips such files and reports them).
        ``length_penalty`` defaults to the checkpoint's ``decoding.length_penalty`` (chosen on
        validation when it was shipped), else 0."""
        if length_penalty is None:
            length_penalty = default_length_penalty(self.meta)
        out: list[list[Caption]] = []
        for batch in loaded_batches(images, batch_size):
            out.extend(caption_features(self.generator, self.vocab, self.features(batch), beam_size=beam_size,
                                        n_best=n_best, max_len=max_len, min_len=min_len,
                                        length_penalty=length_penalty, batch_size=batch_size))
        return out
