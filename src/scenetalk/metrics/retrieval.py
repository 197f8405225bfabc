"""Ranking metrics for image <-> sentence retrieval, as Karpathy & Fei-Fei and m-RNN report them.

Given a score for every (image, sentence) pair and the image each sentence belongs to:

* image annotation (image -> text): for each image, the rank of its first correct sentence
  among all sentences;
* image search (text -> image): for each sentence, the rank of its image among all images.

R@K is the percentage of queries whose rank is <= K; median and mean rank are over queries.
Ties are counted against the model: a wrong item scoring exactly as high as the best correct
one is ranked before it, so a constant scorer cannot look good. Images may have any number
of sentences (not only 5).

COCO protocols: ``coco_1k`` averages the metrics over five folds of 1,000 images (and their
sentences); ``5K`` is the plain metric on all 5,000 test images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

KS = (1, 5, 10)


def ranks_image_to_text(scores: torch.Tensor, sentence_image: torch.Tensor) -> torch.Tensor:
    """(n_images,) 1-based rank of each image's best-ranked correct sentence."""
    correct = sentence_image[None, :] == torch.arange(scores.size(0))[:, None]          # (I, S)
    best_correct = scores.masked_fill(~correct, float("-inf")).max(dim=1).values          # (I,)
    wrong_above = ((scores >= best_correct[:, None]) & ~correct).sum(dim=1)
    return wrong_above + 1


def ranks_text_to_image(scores: torch.Tensor, sentence_image: torch.Tensor) -> torch.Tensor:
    """(n_sentences,) 1-based rank of each sentence's image among all images."""
    own = scores.gather(0, sentence_image[None, :]).squeeze(0)                            # (S,)
    others_above = (scores >= own[None, :]).sum(dim=0) - 1                                # minus itself
    return others_above + 1


def summarize(ranks: torch.Tensor, ks: Sequence[int] = KS) -> dict[str, float]:
    r = ranks.double()
    out = {f"R@{k}": float((r <= k).double().mean() * 100) for k in ks}
    out["median_rank"] = float(np.median(r.numpy()))
    out["mean_rank"] = float(r.mean())
    return out


def retrieval_metrics(scores: torch.Tensor, sentence_image: torch.Tensor, ks: Sequence[int] = KS) -> dict:
    """``scores`` (n_images, n_sentences); ``sentence_image`` (n_sentences,) image index of each
    sentence. Every image needs at least one sentence."""
    scores = scores.float()
    sentence_image = torch.as_tensor(sentence_image, dtype=torch.long)
    if scores.shape[1] != len(sentence_image):
        raise ValueError(f"{scores.shape[1]} sentence columns but {len(sentence_image)} sentence labels")
    if torch.bincount(sentence_image, minlength=scores.size(0)).min() == 0:
        raise ValueError("every image needs at least one sentence")
    return {"image_to_text": summarize(ranks_image_to_text(scores, sentence_image), ks),
            "text_to_image": summarize(ranks_text_to_image(scores, sentence_image), ks),
            "images": int(scores.size(0)), "sentences": int(scores.size(1))}


def rsum(metrics: dict) -> float:
    """R@1 + R@5 + R@10 in both directions: the usual model-selection number."""
    return sum(metrics[d][f"R@{k}"] for d in ("image_to_text", "text_to_image") for k in KS)


def coco_1k(scores: torch.Tensor, sentence_image: torch.Tensor, folds: int = 5) -> dict:
    """The COCO 1K protocol: the mean over ``folds`` consecutive blocks of images (with
    their own sentences) of each metric."""
    n = scores.size(0)
    size = n // folds
    parts = []
    for f in range(folds):
        images = torch.arange(f * size, (f + 1) * size)
        cols = torch.nonzero((sentence_image >= f * size) & (sentence_image < (f + 1) * size)).squeeze(1)
        parts.append(retrieval_metrics(scores[images][:, cols], sentence_image[cols] - f * size))
    return {d: {k: float(np.mean([p[d][k] for p in parts])) for k in parts[0][d]}
            for d in ("image_to_text", "text_to_image")} | {"folds": folds, "images_per_fold": size}
