"""Scoring images against sentences with the visual-semantic alignment model (Karpathy &
Fei-Fei §3.1): S_kl of eq. 8 for user images and sentences (``Aligner``) and for every pair
of a dataset split (``score_split``), and the split's R@K (``evaluate_alignment``), which
selects the model during training (``training.alignment_trainer``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scenetalk.checkpoint import as_alignment
from scenetalk.data.schema import CaptionDataset
from scenetalk.data.text import Vocabulary
from scenetalk.errors import ScenetalkError
from scenetalk.features.extract import extractor_for
from scenetalk.metrics.retrieval import retrieval_metrics
from scenetalk.retrieval.index import unknown_words
from scenetalk.retrieval.similarity import alignment_scores
from scenetalk.vision.images import ImageLike, loaded_batches


@dataclass
class SentenceSet:
    """Sentences of one split as padded word ids (no start/end tokens), each with its image."""
    ids: np.ndarray                # (M, T) int64, 0-padded
    image_rows: np.ndarray         # (M,) feature-store row of each sentence's image
    image_of: np.ndarray           # (M,) index of each sentence's image within the split
    images: np.ndarray             # (I,) feature-store row of each image of the split


def sentence_set(dataset: CaptionDataset, split: str, vocab: Vocabulary, row_of: dict[str, int],
                 max_words: int) -> SentenceSet:
    tokens, rows, image_of, images = [], [], [], []
    for k, image in enumerate(dataset.split(split)):
        if image.relpath not in row_of:
            raise ScenetalkError(f"image {image.relpath} of split {split!r} has no cached region features; "
                                 "run `scenetalk features --regions` on this dataset first")
        images.append(row_of[image.relpath])
        for s in image.sentences:
            tokens.append(s.tokens[:max_words] or ["<unk>"])
            rows.append(row_of[image.relpath])
            image_of.append(k)
    if not tokens:
        raise ScenetalkError(f"dataset {dataset.name!r} has no sentences in split {split!r}")
    ids, _ = vocab.encode_batch(tokens, add_start=False, add_end=False)
    return SentenceSet(ids, np.array(rows, np.int64), np.array(image_of, np.int64), np.array(images, np.int64))


def score_split(model, regions, sentences: SentenceSet, batch_size: int = 500, dtype=None) -> np.ndarray:
    """S (images of the split, sentences of the split), every pair exactly (eq. 8), float32.
    ``model``: an alignment engine or a PyTorch model (``checkpoint.as_alignment``); ``regions``:
    the store's (N, R, D) region features. ``dtype=torch.bfloat16`` (training's model
    selection: 3-4 times as fast) runs PyTorch in bfloat16 instead (``score_split_bf16``)."""
    if dtype is not None and str(dtype) == "torch.bfloat16":
        return score_split_bf16(model, regions, sentences, batch_size)
    model = as_alignment(model)
    images = np.asarray(sentences.images)
    v = np.concatenate([model.embed_regions(np.asarray(regions[images[i:i + batch_size]], dtype=np.float32))
                        for i in range(0, len(images), batch_size)])
    s_all, m_all = _embed_in_length_order(model.embed_words, np.asarray(sentences.ids), batch_size, v.shape[-1])
    return alignment_scores(v, s_all, m_all, model.score)


def _embed_in_length_order(embed_words, ids: np.ndarray, batch_size: int, dim: int):
    """Every sentence's words in context, sentences in order of length, so a batch's
    recurrence runs only as long as its longest."""
    lengths = (ids != 0).sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    T = ids.shape[1]
    s_all = np.zeros((len(order), T, dim), np.float32)
    m_all = np.zeros((len(order), T), dtype=bool)
    for i in range(0, len(order), batch_size):
        rows = order[i:i + batch_size]
        n = int(lengths[rows].max())
        s, m = embed_words(ids[rows, :n])
        s_all[rows, :n] = s
        m_all[rows, :n] = m
    return s_all, m_all


def score_split_bf16(model, regions, sentences: SentenceSet, batch_size: int = 500) -> np.ndarray:
    """``score_split`` in PyTorch with the products in bfloat16 (sums in float32): for choosing
    a checkpoint during training, never for a reported figure."""
    import torch

    from scenetalk.models import eval_mode
    from scenetalk.models.alignment import all_pairs_scores

    ids = torch.from_numpy(np.asarray(sentences.ids))
    images = np.asarray(sentences.images)

    def rows(at: np.ndarray) -> torch.Tensor:
        """These images' regions as float32, read from a tensor, an array or a store's memory
        map (``FeatureRows``) without a copy of the rest: at COCO size all of them would be 12.6 GB."""
        x = regions[at] if not torch.is_tensor(regions) else regions[torch.from_numpy(at)]
        return x.float() if torch.is_tensor(x) else torch.from_numpy(np.asarray(x, dtype=np.float32))

    with torch.no_grad(), eval_mode(model), torch.autocast("cpu", dtype=torch.bfloat16):
        v = torch.cat([model.embed_regions(rows(images[i:i + batch_size]))
                       for i in range(0, len(images), batch_size)]).float()
        s_all, m_all = _embed_in_length_order(
            lambda x: tuple(t.float().numpy() if t.is_floating_point() else t.numpy()
                            for t in model.embed_words(torch.from_numpy(x))), ids.numpy(), batch_size,
            model.config.embed_dim)
    return all_pairs_scores(v, torch.from_numpy(s_all), torch.from_numpy(m_all), model.config.score,
                            dtype=torch.bfloat16).numpy()


def evaluate_alignment(model, regions, sentences: SentenceSet, dtype=None) -> dict:
    return retrieval_metrics(score_split(model, regions, sentences, dtype=dtype), sentences.image_of)


class Aligner:
    """Images and sentences in one space (Karpathy & Fei-Fei §3.1): scores S_kl."""

    def __init__(self, checkpoint: str | os.PathLike):
        from scenetalk.checkpoint import load_alignment_engine

        self.checkpoint = Path(checkpoint)
        self.model, self.vocab, self.meta = load_alignment_engine(self.checkpoint)
        self.extractor_id = self.meta.get("extractor_id") or ""
        self.extractor = extractor_for(self.extractor_id, self.checkpoint, grid=False)

    @property
    def score_kind(self) -> str:
        """Eq. 8 ("max") or eq. 7 ("fragment"), as the checkpoint's model was trained."""
        return self.meta["model"].get("score", "max")

    def score(self, images: ImageLike | Iterable[ImageLike], sentences: str | Sequence[str],
              batch_size: int = 16) -> np.ndarray:
        """S_kl (eq. 8) of every image against every sentence, an (images, sentences) array.
        Unknown words count as ``<unk>`` (a warning names them, ``unknown_words`` lists them);
        a sentence with no words, or with no word the model knows, is an error, as in search."""
        from scenetalk.data.text import sentence_tokens

        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        tokens = sentence_tokens(texts, self.vocab)
        unknown = unknown_words(texts, tokens, self.vocab)
        partly = [f"{t!r}: {', '.join(u)}" for t, u in zip(texts, unknown) if u]
        if partly:
            warnings.warn(f"ignored words the model does not know: {'; '.join(partly)}", stacklevel=2)
        regions = [self.extractor.features(batch)["regions"].astype(np.float32)
                   for batch in loaded_batches(images, batch_size)]
        v = self.model.embed_regions(np.concatenate(regions))
        ids, _ = self.vocab.encode_batch(tokens, add_start=False, add_end=False)
        s, mask = self.model.embed_words(ids)
        return alignment_scores(v, s, mask, self.score_kind)
    def unknown_words(self, sentences: str | Sequence[str]) -> list[list[str]]:
        """The words of each sentence the model does not know (``score`` reads them as ``<unk>``)."""
        from scenetalk.data.text import sentence_tokens

        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        return [[w for w in words if w not in self.vocab.stoi] for words in sentence_tokens(texts, self.vocab)]
