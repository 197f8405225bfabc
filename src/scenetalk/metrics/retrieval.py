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

KS = (1, 5, 10)


def ranks_image_to_text(scores: np.ndarray, sentence_image: np.ndarray) -> np.ndarray:
    """(n_images,) 1-based rank of each image's best-ranked correct sentence."""
    correct = sentence_image[None, :] == np.arange(scores.shape[0])[:, None]            # (I, S)
    best_correct = np.where(correct, scores, -np.inf).max(axis=1)                        # (I,)
    wrong_above = ((scores >= best_correct[:, None]) & ~correct).sum(axis=1)
    return wrong_above + 1


def ranks_text_to_image(scores: np.ndarray, sentence_image: np.ndarray) -> np.ndarray:
    """(n_sentences,) 1-based rank of each sentence's image among all images."""
    own = scores[sentence_image, np.arange(scores.shape[1])]                              # (S,)
    others_above = (scores >= own[None, :]).sum(axis=0) - 1                               # minus itself
    return others_above + 1


def summarize(ranks: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    r = np.asarray(ranks, dtype=np.float64)
    out = {f"R@{k}": float((r <= k).mean() * 100) for k in ks}
    out["median_rank"] = float(np.median(r))
    out["mean_rank"] = float(r.mean())
    return out


def retrieval_metrics(scores, sentence_image, ks: Sequence[int] = KS) -> dict:
    """``scores`` (n_images, n_sentences); ``sentence_image`` (n_sentences,) image index of each
    sentence (arrays, or anything ``np.asarray`` reads: CPU tensors too). Every image needs at
    least one sentence."""
    scores = np.asarray(scores, dtype=np.float32)
    sentence_image = np.asarray(sentence_image, dtype=np.int64)
    if scores.shape[1] != len(sentence_image):
        raise ValueError(f"{scores.shape[1]} sentence columns but {len(sentence_image)} sentence labels")
    if np.bincount(sentence_image, minlength=scores.shape[0]).min() == 0:
        raise ValueError("every image needs at least one sentence")
    return {"image_to_text": summarize(ranks_image_to_text(scores, sentence_image), ks),
            "text_to_image": summarize(ranks_text_to_image(scores, sentence_image), ks),
            "images": int(scores.shape[0]), "sentences": int(scores.shape[1])}


def rsum(metrics: dict) -> float:
    """R@1 + R@5 + R@10 in both directions: the usual model-selection number."""
    return sum(metrics[d][f"R@{k}"] for d in ("image_to_text", "text_to_image") for k in KS)


def coco_1k(scores, sentence_image, folds: int = 5) -> dict:
    """The COCO 1K protocol: the mean over ``folds`` consecutive blocks of images (with
    their own sentences) of each metric."""
    scores = np.asarray(scores, dtype=np.float32)
    sentence_image = np.asarray(sentence_image, dtype=np.int64)
    n = scores.shape[0]
    size = n // folds
    parts = []
    for f in range(folds):
        images = np.arange(f * size, (f + 1) * size)
        cols = np.flatnonzero((sentence_image >= f * size) & (sentence_image < (f + 1) * size))
        parts.append(retrieval_metrics(scores[images][:, cols], sentence_image[cols] - f * size))
    return {d: {k: float(np.mean([p[d][k] for p in parts])) for k in parts[0][d]}
            for d in ("image_to_text", "text_to_image")} | {"folds": folds, "images_per_fold": size}
