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

import torch

from scenetalk.data.schema import CaptionDataset
from scenetalk.data.text import Vocabulary
from scenetalk.errors import ScenetalkError
from scenetalk.features.extract import extractor_for
from scenetalk.metrics.retrieval import retrieval_metrics
from scenetalk.models import eval_mode
from scenetalk.models.alignment import AlignmentModel, all_pairs_scores
from scenetalk.retrieval.index import unknown_words
from scenetalk.vision.images import ImageLike, loaded_batches


@dataclass
class SentenceSet:
    """Sentences of one split as padded word ids (no start/end tokens), each with its image."""
    ids: torch.Tensor              # (M, T), 0-padded
    image_rows: torch.Tensor       # (M,) feature-store row of each sentence's image
    image_of: torch.Tensor         # (M,) index of each sentence's image within the split
    images: torch.Tensor           # (I,) feature-store row of each image of the split


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
    return SentenceSet(ids, torch.tensor(rows), torch.tensor(image_of), torch.tensor(images))


@torch.no_grad()
def score_split(model: AlignmentModel, regions: torch.Tensor, sentences: SentenceSet,
                batch_size: int = 500, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """S (images of the split, sentences of the split), every pair exactly (eq. 8)."""
    with eval_mode(model), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        v = torch.cat([model.embed_regions(regions[sentences.images[i:i + batch_size]])
                       for i in range(0, len(sentences.images), batch_size)]).float()
        # Sentences in order of length, so a batch's recurrence runs only as long as its longest.
        order = (sentences.ids != 0).sum(dim=1).argsort()
        T = sentences.ids.size(1)
        s_all = torch.zeros(len(order), T, model.config.embed_dim)
        m_all = torch.zeros(len(order), T, dtype=torch.bool)
        for i in range(0, len(order), batch_size):
            rows = order[i:i + batch_size]
            ids = sentences.ids[rows]
            ids = ids[:, : int((ids != 0).sum(dim=1).max())]
            s, m = model.embed_words(ids)
            s_all[rows, : ids.size(1)] = s.float()
            m_all[rows, : ids.size(1)] = m
    return all_pairs_scores(v, s_all, m_all, model.config.score, dtype=dtype)


def evaluate_alignment(model: AlignmentModel, regions: torch.Tensor, sentences: SentenceSet,
                       dtype: torch.dtype = torch.float32) -> dict:
    return retrieval_metrics(score_split(model, regions, sentences, dtype=dtype), sentences.image_of)







class Aligner:
    """Images and sentences in one space (Karpathy & Fei-Fei §3.1): scores S_kl."""

    def __init__(self, checkpoint: str | os.PathLike):
        from scenetalk.checkpoint import load_alignment

        self.checkpoint = Path(checkpoint)
        self.model, self.vocab, self.meta = load_alignment(self.checkpoint)
        self.extractor_id = self.meta.get("extractor_id") or ""
        self.extractor = extractor_for(self.extractor_id, self.checkpoint, grid=False)

    @torch.no_grad()
    def score(self, images: ImageLike | Iterable[ImageLike], sentences: str | Sequence[str],
              batch_size: int = 16) -> torch.Tensor:
        """S_kl (eq. 8) of every image against every sentence, an (images, sentences) tensor.
        Unknown words count as ``<unk>`` (a warning names them, ``unknown_words`` lists them);
        a sentence with no words, or with no word the model knows, is an error, as in search."""
        from scenetalk.data.text import sentence_tokens
        from scenetalk.models.alignment import all_pairs_scores

        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        tokens = sentence_tokens(texts, self.vocab)
        unknown = unknown_words(texts, tokens, self.vocab)
        partly = [f"{t!r}: {', '.join(u)}" for t, u in zip(texts, unknown) if u]
        if partly:
            warnings.warn(f"ignored words the model does not know: {'; '.join(partly)}", stacklevel=2)
        regions = [torch.from_numpy(self.extractor.features(batch)["regions"]).float()
                   for batch in loaded_batches(images, batch_size)]
        v = self.model.embed_regions(torch.cat(regions))
        ids, _ = self.vocab.encode_batch(tokens, add_start=False, add_end=False)
        s, mask = self.model.embed_words(ids)
        return all_pairs_scores(v, s, mask, self.model.config.score)

    def unknown_words(self, sentences: str | Sequence[str]) -> list[list[str]]:
        """The words of each sentence the model does not know (``score`` reads them as ``<unk>``)."""
        from scenetalk.data.text import sentence_tokens

        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        return [[w for w in words if w not in self.vocab.stoi] for words in sentence_tokens(texts, self.vocab)]
