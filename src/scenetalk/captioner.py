"""Loading a trained caption generator and captioning with it.

``load_generator`` rebuilds a model from a checkpoint folder (weights + JSON config,
vocabulary and feature-extractor id). ``caption_features`` decodes captions for cached
features with any decoding strategy of ``scenetalk.decoding``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from scenetalk.checkpoint import CheckpointError, load_model
from scenetalk.data.text import Vocabulary
from scenetalk.decoding import Hypothesis, beam_search, greedy
from scenetalk.errors import ScenetalkError
from scenetalk.models import build_generator
from scenetalk.models.generator import CaptionGenerator


@dataclass
class Caption:
    text: str
    log_prob: float
    score: float
    complete: bool


def load_generator(folder: str | os.PathLike, expect_extractor_id: str | None = None
                   ) -> tuple[CaptionGenerator, Vocabulary, dict]:
    return load_model(folder, "caption_generator", build_generator, expect_extractor_id)


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
