"""The image–sentence score S_kl of Karpathy & Fei-Fei (§3.1) on NumPy arrays, as search,
describe, ``score`` and the report compute it (the light install has no PyTorch):

    S_kl = Σ_t max_i v_iᵀ s_t                                (8)  each word picks its best region
    S_kl = Σ_t Σ_i max(0, v_iᵀ s_t)                          (7)  the older fragment score

``models.alignment.image_sentence_scores`` is the same in PyTorch, for training (its loss needs
gradients); a test holds the two equal.
"""

from __future__ import annotations

import numpy as np

#: words multiplied against every region at a time: one (regions x words) product per block
WORDS_PER_BLOCK = 512


def alignment_scores(v: np.ndarray, s: np.ndarray, mask: np.ndarray, score: str = "max",
                     words_per_block: int = WORDS_PER_BLOCK) -> np.ndarray:
    """S (N, L) of every image (region vectors v: N, R, h) against every sentence (words in
    context s: L, T, h, with the (L, T) word mask), in float32. The real words of all
    sentences are packed into one (W, h) matrix, so each block is one matrix product of every
    region against a block of words, then the max over each image's regions (or the sum of
    the positive products, eq. 7) and a sum over each sentence's words; padding is never
    multiplied."""
    v = np.asarray(v, dtype=np.float32)
    s = np.asarray(s, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    n, r, h = v.shape
    words = s[mask]                                                        # (W, h)
    owner = np.repeat(np.arange(len(s)), mask.sum(axis=1))                 # sentence of each word
    regions = v.reshape(n * r, h)
    out = np.zeros((n, len(s)), np.float32)
    for start in range(0, len(words), words_per_block):
        # the block transposed into its own (h, W) array: NumPy multiplies a transposed view
        # several times slower (1.8 ms against 0.4 ms for 640 regions x 12 words at h = 1000)
        block = np.ascontiguousarray(words[start:start + words_per_block].T)
        dots = (regions @ block).reshape(n, r, -1)                                   # v_iᵀ s_t
        per_word = dots.max(axis=1) if score == "max" else np.maximum(dots, 0).sum(axis=1)
        _add_columns(out, owner[start:start + words_per_block], per_word)
    return out


def _add_columns(out: np.ndarray, columns: np.ndarray, values: np.ndarray) -> None:
    """out[:, columns[j]] += values[:, j] for every j (columns may repeat): one sentence's words
    are consecutive, so each run of equal columns is summed at once."""
    if len(columns) == 0:
        return
    starts = np.flatnonzero(np.r_[True, columns[1:] != columns[:-1]])
    out[:, columns[starts]] += np.add.reduceat(values, starts, axis=1)


def top_k(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest of a 1-d array, largest first, and their positions (equal values: the
    lower position first)."""
    values = np.asarray(values)
    k = min(k, len(values))
    if k <= 0:
        return values[:0], np.zeros(0, np.int64)
    part = np.argpartition(-values, k - 1)[:k] if k < len(values) else np.arange(len(values))
    order = np.lexsort((part, -values[part]))
    pos = part[order].astype(np.int64)
    return values[pos], pos
