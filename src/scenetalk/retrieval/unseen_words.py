"""Query words the alignment model never saw, placed in its word space (issue #14).

The model's words are vectors x_t = W_w·𝕀_t (eq. 2) learned from its training sentences, so a
word that was not in them has none, and search used to drop it. Pretrained word vectors
(all-MiniLM-L6-v2, ``data.word_vectors``) know that word and the model's words alike, so a new
word can be given an x_t of its own:

* ``"map"``: a linear map from the pretrained space to W_w's, fitted by ridge regression on the
  words the model knows (x = Wᵀ(p - p̄) + x̄, W = (PᵀP + λI)⁻¹ Pᵀ X on centred P, X), applied
  to the new word's pretrained vector p;
* ``"nearest"``: the mean x_t of its ``k`` nearest known words.

The method and its setting were chosen on Flickr8K val with an alignment model trained without
the held-out concepts (BENCHMARKS.md "New words: search"). A word is refused, as before, when
no known word is near it (cosine similarity of the nearest below ``MIN_SIMILARITY``): a string
of letters that no source knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from scenetalk.data.text import MULTILINGUAL, Vocabulary

METHODS = ("map", "nearest")
#: chosen on Flickr8K val (367 queries that use a held-out concept, the model trained without
#: them) by R@1 + R@5 + R@10 of text -> image: nearest k=1 5.4/21.3/30.5, k=3 5.7/19.3/27.5,
#: map λ=0.01-10 at most 5.4/18.8/27.2, the words left unknown 4.6/18.5/25.9
#: (``python benchmarks/bench_unseen_search.py tune``)
METHOD = "nearest"
RIDGE = 0.1
NEAREST = 1
#: the nearest known word's cosine similarity below which a word counts as known to no source.
#: Against the shipped model's vocabulary, 29 of 30 random strings of 4-9 letters fall below it
#: (0.34-0.50; "tvcadugt" reaches 0.66, by "tv"), and 19 of the 21 one-word COCO classes it lacks
#: are at or above it (0.50-0.79; donut 0.44 and fork 0.47 are refused)
#: (``python benchmarks/bench_unseen_search.py threshold``)
MIN_SIMILARITY = 0.5


@dataclass
class PlacedWord:
    """A query word the model did not know, and the known words nearest it."""
    word: str
    near: list[str]        # nearest first
    similarity: float      # the nearest one's cosine similarity
    vector: np.ndarray | None = field(default=None, metadata={"json": False})   # its x_t (eq. 2); None: refused

    @property
    def placed(self) -> bool:
        return self.vector is not None


class UnseenWords:
    """Places words outside ``vocab`` in the word space ``embedding`` (the model's W_w, (V, d))."""

    def __init__(self, embedding: np.ndarray, vocab: Vocabulary, method: str = METHOD, ridge: float = RIDGE,
                 k: int = NEAREST, min_similarity: float = MIN_SIMILARITY):
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        self.embedding = np.asarray(embedding, dtype=np.float32)
        self.vocab, self.method, self.ridge, self.k, self.min_similarity = vocab, method, ridge, k, min_similarity
        # the pretrained vectors are English: a multilingual model's English words ("en:dog") only
        self.prefix = "en:" if vocab.language == MULTILINGUAL else ""
        english = vocab.language in ("en", MULTILINGUAL)
        self.known = [w for w in vocab.itos[len(Vocabulary.SPECIALS):]
                      if english and w.startswith(self.prefix) and w[len(self.prefix):].isalpha()]
        self._known_vectors: np.ndarray | None = None
        self._map: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _pretrained(self, words: Sequence[str]) -> np.ndarray:
        from scenetalk.data.word_vectors import word_vectors

        return word_vectors().vectors([w[len(self.prefix):] for w in words])

    def _fit(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._map is None:
            p = self._known()
            x = self.embedding[[self.vocab.stoi[w] for w in self.known]].astype(np.float64)
            p_mean, x_mean = p.mean(0), x.mean(0)
            pc = p.astype(np.float64) - p_mean
            w = np.linalg.solve(pc.T @ pc + self.ridge * np.eye(pc.shape[1]), pc.T @ (x - x_mean))
            self._map = (w, p_mean, x_mean)
        return self._map

    def _known(self) -> np.ndarray:
        if self._known_vectors is None:
            self._known_vectors = self._pretrained(self.known)
        return self._known_vectors

    def place(self, words: Sequence[str]) -> list[PlacedWord]:
        """Each word with its nearest known words and, unless refused, its vector x_t. Without
        the pretrained word vectors (the light install leaves them out) none is placed."""
        from scenetalk.data.word_vectors import available

        words = [w for w in words if w.startswith(self.prefix)] if self.known else []
        if not words or not available():
            return []
        known, vectors = self._known(), self._pretrained(words)
        out = []
        for word, p in zip(words, vectors):
            sims = known @ p
            order = np.argsort(-sims, kind="stable")[: max(self.k, 3)]
            near, best = [self.known[i] for i in order], float(sims[order[0]])
            vector = None
            if best >= self.min_similarity:
                if self.method == "map":
                    w, p_mean, x_mean = self._fit()
                    vector = ((p - p_mean) @ w + x_mean).astype(np.float32)
                else:
                    rows = [self.vocab.stoi[self.known[i]] for i in order[: self.k]]
                    vector = self.embedding[rows].mean(axis=0)
            out.append(PlacedWord(word, [w[len(self.prefix):] for w in near[:3]], round(best, 4), vector))
        return out
