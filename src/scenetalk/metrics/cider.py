"""CIDEr-D with fixed document frequencies, fast enough to be a training reward.

coco-caption's scorer (``metrics.captions``) recomputes document frequencies from the
references of whatever it is given; as a reward for a batch of 50 images that would make a
phrase's weight depend on the batch. Self-critical training (Rennie et al. 2017) instead takes
the frequencies from the training references once. The arithmetic is coco-caption's CIDEr-D
(Vedantam et al. 2015, with the "-D" clipping and Gaussian length penalty), line for line:
``CiderD(refs).score`` on the same references equals pycocoevalcap's ``Cider`` (tested).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

N, SIGMA = 4, 6.0


def ngrams(words: Sequence[str], n: int = N) -> Counter:
    return Counter(tuple(words[i:i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


class CiderD:
    """``references``: for each image of the corpus, its reference sentences (space-separated
    tokens). Document frequency of an n-gram = number of images whose references contain it."""

    def __init__(self, references: Sequence[Sequence[str]]):
        self.df: Counter = Counter()
        for refs in references:
            self.df.update({g for r in refs for g in ngrams(r.split())})
        self.log_images = math.log(float(len(references)))
        self._ref_cache: dict[tuple[str, ...], list] = {}

    def _vector(self, counts: Counter):
        vec = [{} for _ in range(N)]
        norm = [0.0] * N
        length = 0
        for gram, tf in counts.items():
            n = len(gram) - 1
            w = float(tf) * (self.log_images - math.log(max(1.0, self.df[gram])))
            vec[n][gram] = w
            norm[n] += w * w
            if n == 1:  # coco-caption's quirk, kept for equal numbers: "length" counts bigrams
                length += tf
        return vec, [math.sqrt(x) for x in norm], length

    def _refs(self, refs: Sequence[str]) -> list:
        key = tuple(refs)
        if key not in self._ref_cache:
            self._ref_cache[key] = [self._vector(ngrams(r.split())) for r in refs]
        return self._ref_cache[key]

    def score_one(self, candidate: str, refs: Sequence[str]) -> float:
        vec, norm, length = self._vector(ngrams(candidate.split()))
        total = np.zeros(N)
        for rvec, rnorm, rlength in self._refs(refs):
            penalty = math.exp(-((length - rlength) ** 2) / (2 * SIGMA ** 2))
            for n in range(N):
                val = sum(min(w, rvec[n].get(g, 0.0)) * rvec[n].get(g, 0.0) for g, w in vec[n].items())
                if norm[n] and rnorm[n]:
                    val /= norm[n] * rnorm[n]
                total[n] += val * penalty
        return float(total.mean() / len(refs) * 10.0)

    def score(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
        """CIDEr-D of each candidate against its own references."""
        return np.array([self.score_one(c, r) for c, r in zip(candidates, references)])
