"""The likelihood of a sentence given a photo, log P(s | I), by any caption generator, through
the decoders' NumPy step interface (so ONNX Runtime and PyTorch alike): what search re-ranks
with (m-RNN §6, ``retrieval.search``). Teacher forcing: the step is fed each word of the
sentence in turn, and the log-probability of the next word is summed, <end> included.

A generator of the m-RNN family (its recurrence never reads the image) has the image-free part
of every step computed once per sentence instead (``pair_log_likelihoods`` of either engine:
the ONNX graphs ``text_term`` and ``pair_log_likelihoods``): the same numbers, a third of the
work when one query is scored against a hundred photos. ``retrieval.generative_ranking``
computes the same for every pair of a whole split in PyTorch, for evaluation and training.
"""

from __future__ import annotations

import numpy as np


def step_log_likelihoods(steps, images: np.ndarray, ids: np.ndarray, pad_id: int = 0) -> np.ndarray:
    """log P(s_p | I_p) of each image p with its sentence (``ids`` (P, T): <start> w.. <end>
    <pad>..; one row is every image's sentence), as a (P,) float32 array."""
    images = np.asarray(images, dtype=np.float32)
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) == 1 and len(images) != 1:
        ids = np.repeat(ids, len(images), axis=0)
    if len(ids) != len(images):
        raise ValueError(f"{len(images)} images but {len(ids)} sentences")
    total = np.zeros(len(images), np.float64)
    if len(images) == 0:
        return total.astype(np.float32)
    if getattr(steps, "ranks_by_text_term", False):
        # the m-RNN: the recurrence never reads the image, so it runs once per distinct sentence
        return steps.pair_log_likelihoods(images, ids, pad_id).astype(np.float32)
    state = steps.init_state(images)
    rows = np.arange(len(images))
    for t in range(ids.shape[1] - 1):
        targets = ids[:, t + 1]
        real = targets != pad_id
        if not real.any():
            break
        log_probs, state = steps.step(ids[:, t], state)
        total += np.where(real, log_probs[rows, targets], 0.0)
    return total.astype(np.float32)


def sentence_log_priors(steps, prior_images: np.ndarray, ids: np.ndarray, pad_id: int = 0,
                        sentences_per_call: int = 20, progress: bool = False) -> np.ndarray:
    """m-RNN's sentence prior (Mao et al. §6) of each sentence (``ids`` (L, T) as above):
    log P(s) = log mean_I' P(s | I') over the prior images (N', D) (a captioner's training
    photos, ``checkpoint.read_prior_images``), as an (L,) float32 array. What ranking sentences
    for a photo divides out: (log P(s | I) − log P(s)) / words, so that short generic sentences
    every photo likes do not win (``retrieval.generative_ranking`` computes the same in PyTorch
    for whole splits)."""
    from scenetalk.progress import progress_bar

    images = np.asarray(prior_images, dtype=np.float32)
    ids = np.asarray(ids, dtype=np.int64)
    n = len(images)
    out = np.empty(len(ids), np.float32)
    for start in progress_bar(range(0, len(ids), sentences_per_call), unit="batch", desc="sentence prior",
                              disable=not progress):
        block = ids[start:start + sentences_per_call]
        tiled = np.tile(images, (len(block),) + (1,) * (images.ndim - 1))   # every prior image per sentence (grids too)
        pairs = step_log_likelihoods(steps, tiled, np.repeat(block, n, axis=0), pad_id)
        per_image = pairs.astype(np.float64).reshape(len(block), n)
        top = per_image.max(axis=1, keepdims=True)      # log-mean-exp, stable
        out[start:start + len(block)] = (top[:, 0] + np.log(np.exp(per_image - top).mean(axis=1))).astype(np.float32)
    return out
