"""Searching a folder of photos with a sentence, with the alignment model.

An index folder holds the feature store of the photos (global features and the 20 regions of
each), the region vectors v_i of every photo in the alignment model's space (eq. 1) and
``index.json`` (the alignment checkpoint's id, the feature extractor's id, the photos).

Search is exact S_kl (eq. 8) with a cheap candidate stage. The word vectors s_t are ReLU
outputs, so s_t >= 0 and, for every photo k,

    S_kl = Σ_t max_i v_iᵀ s_t  <=  u_kᵀ (Σ_t s_t),   u_k = elementwise max_i v_i

an upper bound that is a single dot product. Candidates are the photos with the largest bound
(one matrix-vector product, or a FAISS index for large collections); their exact scores
are computed; and when the k-th best exact score is at least the best bound left out, the
answer is provably the exhaustive one (reported as ``exact``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scenetalk.alignment import load_alignment, sentence_tokens
from scenetalk.errors import ScenetalkError
from scenetalk.models.alignment import image_sentence_scores
from scenetalk.io import atomic_path, atomic_write_text

INDEX_FILE, VECTORS_FILE, BOUNDS_FILE, FEATURES_DIR = "index.json", "regions_embedded.npy", "bounds.npy", "features"


class SearchIndexError(ScenetalkError):
    """A search index that is missing, damaged, or made with another model."""


def checkpoint_id(folder: str | os.PathLike) -> str:
    """Short hash of a checkpoint's weights: an index remembers which model embedded it."""
    h = hashlib.sha256()
    with open(Path(folder) / "model.safetensors", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


@dataclass
class Hit:
    name: str
    score: float


@dataclass
class SearchResult:
    query: str
    hits: list[Hit]
    unknown_words: list[str]
    exact: bool            # the candidate stage provably missed nothing
    candidates: int


class Searcher:
    """An alignment model plus an index built with it."""

    def __init__(self, index_dir: str | os.PathLike, checkpoint: str | os.PathLike):
        self.path = Path(index_dir)
        meta_path = self.path / INDEX_FILE
        if not meta_path.is_file():
            raise SearchIndexError(f"{self.path}: not a scenetalk index (no {INDEX_FILE}); build one with "
                              "`scenetalk index build DIR --out INDEX`")
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SearchIndexError(f"{meta_path}: damaged: {exc}") from None
        for f in (VECTORS_FILE, BOUNDS_FILE):
            if not (self.path / f).is_file():
                raise SearchIndexError(f"{self.path}: missing {f}; rebuild the index")
        self.model, self.vocab, model_meta = load_alignment(checkpoint, expect_extractor_id=self.meta["extractor_id"])
        have = checkpoint_id(checkpoint)
        if have != self.meta["checkpoint_id"]:
            raise SearchIndexError(f"{self.path}: built with alignment model {self.meta['checkpoint_id']}, but the model "
                              f"given is {have}; rebuild the index with this model")
        self.names: list[str] = self.meta["names"]
        try:
            self.vectors = np.load(self.path / VECTORS_FILE, mmap_mode="r")  # (N, R, h) float16
            self.bounds = torch.from_numpy(np.load(self.path / BOUNDS_FILE))   # (N, h) float32
        except (OSError, ValueError) as exc:
            raise SearchIndexError(f"{self.path}: damaged index arrays ({exc}); rebuild the index") from None
        if not len(self.vectors) == len(self.bounds) == len(self.names):
            raise SearchIndexError(f"{self.path}: index files disagree on the number of photos; rebuild the index")

    @torch.no_grad()
    def embed_query(self, query: str) -> tuple[torch.Tensor, list[str]]:
        [tokens] = sentence_tokens([query], self.vocab, what="empty query:")
        unknown = [t for t in tokens if t not in self.vocab.stoi]
        if len(unknown) == len(tokens):
            raise ScenetalkError(f"none of the words of {query!r} is known to the model "
                                 f"(its vocabulary has {len(self.vocab)} words from its training sentences)")
        ids, _ = self.vocab.encode_batch([tokens], add_start=False, add_end=False)
        s, mask = self.model.embed_words(ids)
        return s[0][mask[0]], unknown

    @torch.no_grad()
    def search(self, query: str, k: int = 10, candidates: int = 1000) -> SearchResult:
        s, unknown = self.embed_query(query)
        bound = self.bounds @ s.sum(dim=0)                                     # u_kᵀ Σ_t s_t
        n = len(self.names)
        c = min(n, max(k, candidates))
        top = bound.topk(min(n, c + 1))        # one more than the candidates: the best bound left out
        rows = np.sort(top.indices[:c].numpy())  # read the memory-mapped vectors in file order
        v = torch.from_numpy(np.asarray(self.vectors[rows])).float()
        mask = torch.ones(1, len(s), dtype=torch.bool)
        exact_scores = image_sentence_scores(v, s[None], mask, self.model.config.score)[:, 0]
        best, pos = exact_scores.topk(min(k, c))
        hits = [Hit(self.names[int(rows[p])], float(b)) for b, p in zip(best, pos)]
        left_out = float(top.values[c]) if c < n else float("-inf")
        # The bound holds for eq. 8 only (eq. 7 sums over regions instead of taking the max).
        exact = self.model.config.score == "max" and (not hits or float(best[-1]) >= left_out)
        return SearchResult(query, hits, unknown, exact, c)


def build_index(images: list[tuple[str, str]], out: str | os.PathLike, checkpoint: str | os.PathLike,
                progress: bool = True) -> Path:
    """Features and regions of ``images`` ((name, path) pairs; resumable), then their region
    vectors in the checkpoint's space and the candidate bounds."""
    from scenetalk.features.extract import extract
    from scenetalk.features.store import FeatureStore

    out = Path(out)
    result = extract(images, out / FEATURES_DIR, regions=True, progress=progress, skip_bad=True)
    store = FeatureStore.open(out / FEATURES_DIR)
    model, _, _ = load_alignment(checkpoint, expect_extractor_id=store.extractor_id)
    bad = set(result.bad)  # unreadable files: reported by extract, left out of the index
    keep = [i for i, name in enumerate(store.names) if name not in bad]
    if not keep:
        raise ScenetalkError("none of the images could be read; nothing to index")
    regions = store.model_input("regions")[keep]
    with torch.no_grad():
        v = torch.cat([model.embed_regions(regions[i:i + 256]) for i in range(0, len(regions), 256)])
    with atomic_path(out / VECTORS_FILE) as tmp, open(tmp, "wb") as f:
        np.save(f, v.half().numpy())
    with atomic_path(out / BOUNDS_FILE) as tmp, open(tmp, "wb") as f:
        np.save(f, v.max(dim=1).values.numpy().astype(np.float32))
    meta = {"names": [store.names[i] for i in keep], "extractor_id": store.extractor_id, "checkpoint_id": checkpoint_id(checkpoint),
            "checkpoint": str(checkpoint), "bad": result.bad}
    atomic_write_text(out / INDEX_FILE, json.dumps(meta, indent=1, ensure_ascii=False))
    return out
