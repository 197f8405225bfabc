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
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path

import torch
from PIL import Image

from scenetalk.captioner import Caption, caption_features, default_length_penalty, load_generator
from scenetalk.checkpoint import CheckpointError
from scenetalk.features.extract import Extractor
from scenetalk.images import load_image
from scenetalk.vision.backbones import BACKBONES, create_backbone

ImageLike = str | os.PathLike | Image.Image


def shipped_captioner() -> Path:
    """The captioner that ships inside the package (``src/scenetalk/weights/captioner``)."""
    path = Path(str(resources.files("scenetalk") / "weights" / "captioner"))
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: the shipped captioner is missing from this install; "
                              "reinstall scenetalk or pass a checkpoint folder")
    return path


def shipped_alignment() -> Path:
    """The alignment model that ships inside the package (``src/scenetalk/weights/alignment``)."""
    path = Path(str(resources.files("scenetalk") / "weights" / "alignment"))
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: the shipped alignment model is missing from this install; reinstall "
                              "scenetalk or pass --checkpoint (train one with `scenetalk train alignment_flickr8k`)")
    return path


def open_searcher(index: str | os.PathLike, checkpoint: str | os.PathLike | None = None):
    """A ``search.Searcher`` for an index: with ``checkpoint``, else the checkpoint the index
    was built with (when it is still there), else the shipped alignment model."""
    import json

    from scenetalk.search import INDEX_FILE, Searcher, SearchIndexError

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


def extractor_for(extractor_id: str, where: str | os.PathLike, grid: bool = True) -> Extractor:
    """An ``Extractor`` that gives the features ``extractor_id`` names (global, or with the 20
    regions when the id has a detector part), or a ``CheckpointError`` naming both ids."""
    name = next((n for n in BACKBONES if extractor_id.startswith(f"{n}-")), None)
    if name is None:
        raise CheckpointError(f"{where}: made for image features {extractor_id!r}, which no installed backbone "
                              f"gives (known: {', '.join(BACKBONES)})")
    extractor = Extractor(create_backbone(name), regions="+" in extractor_id, grid=grid)
    if extractor.extractor_id != extractor_id:
        raise CheckpointError(f"{where}: made for image features {extractor_id!r}, but the installed backbone "
                              f"gives {extractor.extractor_id!r} (other weights or settings); reinstall the "
                              "version it was trained with")
    return extractor


def loaded_batches(images: ImageLike | Iterable[ImageLike], batch_size: int) -> Iterator[list[Image.Image]]:
    """Paths or PIL images, one or many, as batches of loaded RGB images (``load_image``
    raises an ``ImageError`` naming any file it cannot read)."""
    if isinstance(images, (str, os.PathLike, Image.Image)):
        images = [images]
    images = list(images)
    for start in range(0, len(images), batch_size):
        yield [load_image(im) for im in images[start:start + batch_size]]


class Captioner:
    """Images in, sentences out. Build it with ``scenetalk.load()``."""

    def __init__(self, checkpoint: str | os.PathLike):
        self.checkpoint = Path(checkpoint)
        self.generator, self.vocab, self.meta = load_generator(self.checkpoint)
        self.extractor_id = self.meta.get("extractor_id") or ""
        self.extractor = extractor_for(self.extractor_id, self.checkpoint, grid=self.generator.image_input == "grid")

    def features(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The generator's image input for RGB images: (N, D) vectors or (N, cells, D) grids."""
        arrays = self.extractor.features(list(images))
        return torch.from_numpy(arrays[self.generator.image_input]).float()

    def caption(self, images: ImageLike | Iterable[ImageLike], beam_size: int = 7, n_best: int = 1,
                max_len: int = 20, min_len: int = 1, length_penalty: float | None = None,
                batch_size: int = 32) -> list[list[Caption]]:
        """For each image (a path or a PIL image) its ``n_best`` captions, best first, each with
        its total log-probability and the beam's ranking score. A path that cannot be read
        raises ``ImageError`` naming it (``scenetalk caption`` skips such files and reports them).
        ``length_penalty`` defaults to the checkpoint's ``decoding.length_penalty`` (chosen on
        validation when it was shipped), else 0."""
        if length_penalty is None:
            length_penalty = default_length_penalty(self.meta)
        out: list[list[Caption]] = []
        for batch in loaded_batches(images, batch_size):
            out.extend(caption_features(self.generator, self.vocab, self.features(batch), beam_size=beam_size,
                                        n_best=n_best, max_len=max_len, min_len=min_len,
                                        length_penalty=length_penalty, batch_size=batch_size))
        return out


class Aligner:
    """Images and sentences in one space (Karpathy & Fei-Fei §3.1): scores S_kl."""

    def __init__(self, checkpoint: str | os.PathLike):
        from scenetalk.alignment import load_alignment

        self.checkpoint = Path(checkpoint)
        self.model, self.vocab, self.meta = load_alignment(self.checkpoint)
        self.extractor_id = self.meta.get("extractor_id") or ""
        self.extractor = extractor_for(self.extractor_id, self.checkpoint, grid=False)

    @torch.no_grad()
    def score(self, images: ImageLike | Iterable[ImageLike], sentences: str | Sequence[str],
              batch_size: int = 16) -> torch.Tensor:
        """S_kl (eq. 8) of every image against every sentence, an (images, sentences) tensor.
        Unknown words count as ``<unk>``; a sentence with no words is an error."""
        from scenetalk.alignment import sentence_tokens
        from scenetalk.models.alignment import all_pairs_scores

        tokens = sentence_tokens([sentences] if isinstance(sentences, str) else sentences, self.vocab)
        regions = [torch.from_numpy(self.extractor.features(batch)["regions"]).float()
                   for batch in loaded_batches(images, batch_size)]
        v = self.model.embed_regions(torch.cat(regions))
        ids, _ = self.vocab.encode_batch(tokens, add_start=False, add_end=False)
        s, mask = self.model.embed_words(ids)
        return all_pairs_scores(v, s, mask, self.model.config.score)


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
