"""Segment alignment: a chain MRF over word-to-region assignments (Karpathy & Fei-Fei §3.1.4).

For a sentence of N words and an image of M regions, every word j gets a region a_j. The
paper's energy (eq. 10-12) is

    E(a) = Σ_j ψ_j^U(a_j) + Σ_{j<N} ψ_j^B(a_j, a_{j+1})
    ψ_j^U(a_j = i) = v_iᵀ s_j                 (eq. 11: how well word j describes region i)
    ψ_j^B(a_j, a_{j+1}) = β · 𝟙[a_j = a_{j+1}]  (eq. 12: a bonus for staying on one region)

and the best alignment is the one with the highest total (the paper writes "minimize the
energy"; with scores as unaries the best alignment is the maximum). β = 0 gives every word its
own best region; a large β puts the whole sentence on the one region with the highest sum.

The chain is solved exactly by dynamic programming (Viterbi) in O(N·M): the best total of
words 1..j ending on region i is

    D_j(i) = ψ_j^U(i) + max(D_{j-1}(i) + β, max_i' D_{j-1}(i'))

(staying on i earns β; coming from any region, i itself included, earns nothing extra, and
D_{j-1}(i) + β beats D_{j-1}(i) whenever β >= 0, so the max is right for β >= 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def chain_alignment(unary, beta: float, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Best word-to-region assignments for a batch of sentences.

    unary: (B, N, M) scores v_iᵀ s_j; mask: (B, N) True on real words (padding at the end);
    anything ``np.asarray`` reads (a CPU tensor too). Returns (assignment (B, N) int64, -1 on
    padding; best total (B,), float64 for float64 scores, else float32)."""
    if beta < 0:
        raise ValueError(f"beta must be >= 0 (got {beta})")
    unary = np.asarray(unary)
    unary = unary if unary.dtype == np.float64 else unary.astype(np.float32)
    b, n, m = unary.shape
    mask = np.ones((b, n), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    rows = np.arange(b)
    regions = np.broadcast_to(np.arange(m), (b, m))
    best = unary[:, 0].copy()                                     # D_1(i)
    came_from = np.zeros((b, n, m), dtype=np.int64)               # argmax predecessor of (j, i)
    for j in range(1, n):
        prev_region = best.argmax(axis=1)                         # argmax_i' D_{j-1}(i')
        prev_value = best[rows, prev_region]                      # max_i' D_{j-1}(i')
        stay = best + unary.dtype.type(beta)                      # D_{j-1}(i) + β
        stays = stay >= prev_value[:, None]
        came_from[:, j] = np.where(stays, regions, prev_region[:, None])
        step = unary[:, j] + np.where(stays, stay, prev_value[:, None])
        best = np.where(mask[:, j, None], step, best)             # padding leaves D unchanged
    last = best.argmax(axis=1)
    total = best[rows, last]
    lengths = mask.sum(axis=1)
    assignment = np.full((b, n), -1, dtype=np.int64)
    region = last
    for j in range(n - 1, -1, -1):                                # trace back along the chain
        real = j < lengths
        assignment[:, j] = np.where(real, region, assignment[:, j])
        region = np.where(real & (j > 0), came_from[rows, j, np.maximum(region, 0)], region)
    return assignment, total


@dataclass
class Segment:
    """A run of consecutive words [start, end) aligned to one region, with its summed score."""
    region: int
    start: int
    end: int
    score: float


def segments(assignment: Sequence[int] | np.ndarray, unary) -> list[Segment]:
    """Split one sentence's assignment (N,) into contiguous snippets; unary (N, M) (an array,
    or anything indexed ``unary[j, i]``)."""
    a = [int(x) for x in assignment if int(x) >= 0]
    out: list[Segment] = []
    for j, region in enumerate(a):
        if out and out[-1].region == region:
            out[-1].end = j + 1
            out[-1].score += float(unary[j, region])
        else:
            out.append(Segment(region, j, j + 1, float(unary[j, region])))
    return out
