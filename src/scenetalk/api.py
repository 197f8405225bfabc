"""The Python façade: ``scenetalk.load()`` gives a model that turns images into sentences.

    import scenetalk
    m = scenetalk.load()                       # the shipped captioner, no data, no network
    for caps in m.caption(["a.jpg", pil_image], beam_size=7, n_best=3):
        print(caps[0].text, caps[0].log_prob)

A captioner is a trained generator checkpoint plus the backbone its features came from; the
backbone is rebuilt from the checkpoint's feature-extractor id, and refused if the installed
weights differ from the ones it was trained on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from scenetalk.captioning.captioner import (
    Caption,
    Captioner,
)
from scenetalk.retrieval.scoring import Aligner
from scenetalk.vision.images import ImageLike
from scenetalk.weights import shipped_alignment, shipped_captioner


def open_searcher(index: str | os.PathLike, checkpoint: str | os.PathLike | None = None):
    """A ``search.Searcher`` for an index: with ``checkpoint``, else the checkpoint the index
    was built with (when it is still there), else the shipped alignment model."""
    import json

    from scenetalk.errors import SearchIndexError
    from scenetalk.retrieval.index import INDEX_FILE
    from scenetalk.retrieval.search import Searcher

    if not (Path(index) / INDEX_FILE).is_file():
        raise SearchIndexError(f"{index}: not a scenetalk index (no {INDEX_FILE}); build one with "
                               "`scenetalk index build DIR --out INDEX`")
    if checkpoint is None:
        try:
            built_with = json.loads((Path(index) / INDEX_FILE).read_text(encoding="utf-8")).get("checkpoint")
        except (OSError, ValueError):
            built_with = None  # Searcher reports the damaged index
        checkpoint = built_with if built_with and Path(built_with).is_dir() else shipped_alignment()
    return Searcher(index, checkpoint)


class Scenetalk:
    """The façade: ``caption`` with the generator; ``search``, ``describe`` and ``score`` with
    the alignment model. Each model is loaded on first use."""

    def __init__(self, captioner: str | os.PathLike | None = None, alignment: str | os.PathLike | None = None):
        self._paths = {"captioner": captioner, "alignment": alignment}
        self._captioner: Captioner | None = None
        self._aligner: Aligner | None = None

    @property
    def captioner(self) -> Captioner:
        if self._captioner is None:
            self._captioner = Captioner(self._paths["captioner"] or shipped_captioner())
        return self._captioner

    @property
    def aligner(self) -> Aligner:
        if self._aligner is None:
            self._aligner = Aligner(self._paths["alignment"] or shipped_alignment())
        return self._aligner

    def caption(self, images: ImageLike | Iterable[ImageLike], beam_size: int = 7, n_best: int = 1,
                **kwargs) -> list[list[Caption]]:
        """See ``Captioner.caption``."""
        return self.captioner.caption(images, beam_size=beam_size, n_best=n_best, **kwargs)

    def search(self, index: str | os.PathLike, sentence: str, k: int = 10, candidates: int = 1000,
               rerank: int | bool | None = None):
        """The ``k`` photos of an index (``scenetalk index build``) that best match ``sentence``.
        ``rerank=K`` (True: 100) ranks the best K by S_kl again by S_kl + λ·log P(sentence | photo)
        of this object's captioner, an m-RNN (``search.Searcher.search``); ``None``, the default,
        does so when the captioner reads the index's features (else it warns and does not);
        ``rerank=0`` ranks by S_kl alone."""
        import warnings

        result = open_searcher(index, self._paths["alignment"]).search(
            sentence, k=k, candidates=candidates, rerank=rerank, captioner=self._paths["captioner"])
        if result.not_reranked:
            warnings.warn(f"ranked by S_kl alone, not re-ranked: {result.not_reranked}", stacklevel=2)
        return result

    def describe(self, index: str | os.PathLike, image: ImageLike, k: int = 5,
                 sentences: Sequence[str] | None = None):
        """The ``k`` sentences that best match ``image`` (a photo's name in the index, a path or
        a PIL image), of ``sentences`` or else of the collection stored in the index
        (``scenetalk index build --sentences``), each with its S_kl."""
        return open_searcher(index, self._paths["alignment"]).describe(image, k=k, sentences=sentences)

    def score(self, images: ImageLike | Iterable[ImageLike], sentences: str | Sequence[str]) -> torch.Tensor:
        """See ``Aligner.score``."""
        return self.aligner.score(images, sentences)


def load(captioner: str | os.PathLike | None = None, alignment: str | os.PathLike | None = None) -> Scenetalk:
    """scenetalk's models: a caption generator checkpoint folder (``model.safetensors`` +
    ``config.json``) and an alignment checkpoint, by default the ones shipped with the package."""
    return Scenetalk(captioner, alignment)
