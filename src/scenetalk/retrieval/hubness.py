"""Sentence hubness, for ranking sentences for a photo (``Searcher.describe``): some sentences
("a dog runs through the grass") fit almost every photo fairly well and reach the top of many
photos' lists whether they describe them or not, the hubs of nearest-neighbour retrieval in
many dimensions (Radovanović et al., JMLR 2010). Each sentence's S_kl (eq. 8) is lowered by
how well it fits photos in general,

    S'_kl = S_kl − α · (1/k) Σ_{k' ∈ N_k(l)} S_k'l

where N_k(l) are the k photos of a bank that sentence l fits best: the neighbourhood term of
CSLS (Conneau et al., ICLR 2018, eq. 6), with the bank a fixed, seeded sample of the alignment
model's *training* photos, never the photos being described (the querybank of Bogolin et al.,
CVPR 2022), shipped beside the model as ``HUB_PHOTOS`` (``scripts/ship_prior_images.py``). The
hubness of an index's sentences is computed once, when the index is built (``write_index``);
of sentences given to ``describe``, when they are given. The bank's size, k and α were chosen
on Flickr8K val with the shipped models (BENCHMARKS.md "In describe").
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from scenetalk.checkpoint import dequantized
from scenetalk.errors import CheckpointError
from scenetalk.retrieval.similarity import alignment_scores

#: The bank of photos (optional, in an alignment checkpoint's folder): the region features
#: (photos, regions, D) of a seeded sample of its training photos.
HUB_PHOTOS = "hub_photos.safetensors"
#: k (the bank photos a sentence fits best, averaged) and α, chosen on Flickr8K val (see the module)
HUB_NEIGHBOURS = 25
HUB_WEIGHT = 1.0

#: what the correction does to a description's scores, in the user's words (``Description.scores``)
HUB_MEANING = ("; the match score is first lowered by {weight:g} × how well the sentence fits photos in general "
               "(its mean match score with the {neighbours} photos of a fixed bank of training photos it fits best), so "
               "sentences that fit any photo count less")


def read_hub_photos(folder: str | os.PathLike) -> np.ndarray | None:
    """An alignment checkpoint's bank of photos ((N, R, D) float32, ``HUB_PHOTOS``: stored in
    int8, a scale a region, as ``checkpoint.INT8_SCALE``), or None when it has none."""
    from safetensors import safe_open

    path = Path(folder) / HUB_PHOTOS
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="np") as f:
            regions = dequantized({k: f.get_tensor(k) for k in f.keys()})["regions"].astype(np.float32)
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{path}: damaged: {exc}") from None
    if regions.ndim != 3 or not len(regions) or not np.isfinite(regions).all():
        raise CheckpointError(f"{path}: damaged: expected a (photos, regions, features) array of finite numbers")
    return regions


def write_hub_photos(folder: str | os.PathLike, regions: np.ndarray, metadata: dict[str, str] | None = None) -> Path:
    """Write ``regions`` ((N, R, D) region features) as the bank of the alignment checkpoint in
    ``folder``, in int8 with a scale a photo (``checkpoint.quantize_int8``), atomically (PyTorch)."""
    import torch
    from safetensors.torch import save_file

    from scenetalk.checkpoint import INT8_SCALE, quantize_int8
    from scenetalk.io import atomic_path

    q, scale = quantize_int8(torch.from_numpy(np.asarray(regions, dtype=np.float32)))
    path = Path(folder) / HUB_PHOTOS
    with atomic_path(path) as tmp:
        save_file({"regions": q.contiguous(), "regions" + INT8_SCALE: scale.contiguous()}, tmp, metadata=metadata)
    return path


def bank_id(folder: str | os.PathLike) -> str | None:
    """Short hash of an alignment checkpoint's bank of photos (an index records which bank its
    sentences' hubness was computed against), None when it has none."""
    from scenetalk.checkpoint import file_hash

    path = Path(folder) / HUB_PHOTOS
    return file_hash(path) if path.is_file() else None


def hubness_of(bank_vectors: np.ndarray, s: np.ndarray, mask: np.ndarray, score: str = "max",
               neighbours: int = HUB_NEIGHBOURS) -> np.ndarray:
    """Each sentence's mean S_kl over the ``neighbours`` bank photos it fits best, (B,) float32:
    ``bank_vectors`` the bank's region vectors (N, R, h, eq. 1), ``s`` and ``mask`` a batch of
    word vectors as ``embed_sentences`` gives them."""
    k = max(1, min(int(neighbours), len(bank_vectors)))
    scores = alignment_scores(bank_vectors, s, mask, score)                          # (N, B), eq. 8
    return np.partition(scores, len(scores) - k, axis=0)[-k:].mean(axis=0).astype(np.float32)


def sentence_hubness(model, bank: np.ndarray, batches: Iterable[tuple[np.ndarray, np.ndarray]],
                     score: str = "max", neighbours: int = HUB_NEIGHBOURS) -> np.ndarray:
    """``hubness_of`` every sentence of ``batches``, (L,) float32, against ``bank`` (raw region
    features, (N, R, D)); ``model``: an alignment engine."""
    v = model.embed_regions(np.asarray(bank, dtype=np.float32))
    out = [hubness_of(v, s, mask, score, neighbours) for s, mask in batches]
    return np.concatenate(out) if out else np.zeros(0, np.float32)
