"""The Python façade: every capability of scenetalk, from one object.

    import scenetalk
    m = scenetalk.load()                       # the shipped models, no data, no network
    scenetalk.load(lang="zh").caption("a.jpg")  # captions in Chinese (or "de": German)
    m.caption(["a.jpg", pil_image], beam_size=7, n_best=3)       # sentences for photos
    m.caption_files(["~/photos"])                                 # a folder, skipping unreadable files
    m.search("photos.index", "a dog runs on the beach", k=10)     # sentence -> photos
    m.describe("photos.index", "a.jpg", k=5)                      # photo -> sentences
    m.score(["a.jpg"], ["a dog runs"])                            # match scores, images x sentences
    m.align("a.jpg", "a dog runs on the beach")                   # which region each word describes
    m.regions("a.jpg", top=5)                                     # phrases for the detected boxes
    m.best_regions("photos.index", ["red shirt"])                 # the regions that match a snippet
    m.learn_words(["skateboard"], "photos/", "captions.tsv", "my-captioner")  # new words from a few photos

Training and evaluation are module-level: ``scenetalk.train(config)``, ``scenetalk.evaluate(...)``.
Each method returns a task package's result dataclass; ``scenetalk.results.to_json`` gives
its JSON form, the one the CLI's ``--json`` prints. Models are loaded on first use and kept,
and so are opened search indexes (``open_index``). A captioner is a trained generator
checkpoint plus the backbone its features came from; the backbone is rebuilt from the
checkpoint's feature-extractor id, and refused if the installed weights differ from the
ones it was trained on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from scenetalk import checks
from scenetalk.captioning.captioner import Caption, Captioner
from scenetalk.grounding import ALIGN_BETA, LOW_SCORE
from scenetalk.vision.images import ImageLike
from scenetalk.weights import check_language, named_captioner, shipped_alignment, shipped_captioner

if TYPE_CHECKING:
    import numpy as np

    from scenetalk.grounding.region_descriptions import RegionDescriptions
    from scenetalk.grounding.word_regions import WordAlignment
    from scenetalk.retrieval.scoring import Aligner

#: The keyword arguments ``Scenetalk.caption`` passes on to ``Captioner.caption``.
CAPTION_OPTIONS = ("max_len", "min_len", "length_penalty", "batch_size")


def checked_image(name: str, image: object, must_exist: bool = True) -> ImageLike:
    """``image`` when it is a path (a non-empty str or ``os.PathLike``) or a PIL image; else a
    ``ScenetalkError`` naming the argument; a path that names a folder, a named pipe, a device
    or a socket, or (``must_exist``) nothing at all, is an ``ImageError`` at once (by ``stat``:
    never opened, so no model is loaded first). The file itself is read later (``load_image``)."""
    from PIL import Image

    from scenetalk.errors import ImageError
    from scenetalk.vision.images import file_kind

    if isinstance(image, Image.Image):
        return image
    path = checks.path(name, image)
    kind = file_kind(path)
    if must_exist and not os.path.exists(path):
        raise ImageError(path, "file not found")
    if kind is not None:
        raise ImageError(path, "is a folder, not an image" if kind == "a folder" else f"{kind}, not an image file")
    return image


def checked_images(name: str, images: object) -> list[ImageLike]:
    """One image or an iterable of them (``checked_image`` each) as a list, possibly empty."""
    from PIL import Image

    if isinstance(images, (str, os.PathLike, Image.Image)):
        return [checked_image(name, images)]
    if images is None or isinstance(images, (bytes, dict)) or not hasattr(images, "__iter__"):
        raise checks.ScenetalkError(f"{name} must be an image path, a PIL image or a list of them "
                                    f"(got {checks.shown(images)})")
    return [checked_image(f"{name}[{i}]", im) for i, im in enumerate(images)]


def check_decoding_options(beam_size: object, n_best: object, max_len: object, batch_size: object = 1,
                           length_penalty: object = None, min_len: object = 1) -> None:
    """The decoding settings of ``caption``, ``caption_files`` and ``regions``: whole numbers
    (``Captioner.check_decoding`` for the lower bounds), at most ``limits.MAX_BEAM`` beams,
    ``MAX_CAPTION_WORDS`` words and ``MAX_BATCH`` images a batch; a finite length penalty."""
    from scenetalk.captioning.captioner import check_decoding
    from scenetalk.limits import MAX_BATCH, MAX_BEAM, MAX_CAPTION_WORDS

    names = {"beam_size (--beam)": beam_size, "n_best (--n-best)": n_best, "max_len (--max-len)": max_len,
             "batch_size (--batch-size)": batch_size, "min_len": min_len}
    for name, value in names.items():
        checks.whole_number(name, value)
    check_decoding(beam_size, n_best, max_len, batch_size)
    checks.whole_number("beam_size (--beam)", beam_size, 1, MAX_BEAM)
    checks.whole_number("max_len (--max-len)", max_len, 1, MAX_CAPTION_WORDS)
    checks.whole_number("batch_size (--batch-size)", batch_size, 1, MAX_BATCH)
    checks.whole_number("min_len", min_len, 0, max_len)
    if length_penalty is not None:
        checks.finite_number("length_penalty (--length-penalty)", length_penalty)


def open_searcher(index: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
                  generators: dict | None = None):
    """A ``search.Searcher`` for an index: with ``checkpoint``, else the checkpoint the index
    was built with (when it is still there), else the shipped alignment model. Each call opens
    the index again; ``Scenetalk.open_index`` keeps it open. ``generators``: see ``Searcher``."""
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
    return Searcher(index, checkpoint, generators=generators)


class Scenetalk:
    """The façade (see the module's docstring): ``caption`` and ``caption_files`` with the
    captioner; ``search``, ``describe``, ``score``, ``align`` and ``best_regions`` with the
    alignment model; ``regions`` with the region generator. Each model is loaded on first use
    and kept, and so is each index opened."""

    def __init__(self, captioner: str | os.PathLike | None = None, alignment: str | os.PathLike | None = None,
                 lang: str = "en"):
        self.lang = check_language(lang)
        captioner = checks.path("captioner (--checkpoint)", captioner, optional=True)
        captioner = named_captioner(captioner) if captioner is not None else None   # "mrnn-lstm": a shipped one
        alignment = checks.path("alignment (--checkpoint)", alignment, optional=True)
        self._paths = {"captioner": captioner, "alignment": alignment}
        self._captioner: Captioner | None = None
        self._aligner: Aligner | None = None
        self._searchers: dict = {}    # (index, checkpoint) -> (index.json's stat, Searcher): see open_index
        self._generators: dict = {}   # re-ranking captioners, loaded once for every index
        self._searchers_lock = threading.Lock()
        self._region_generators: dict = {}  # checkpoint (None: the shipped one) -> (captioner, extractor, description)

    @property
    def captioner(self) -> Captioner:
        if self._captioner is None:
            self._captioner = Captioner(self._paths["captioner"] or shipped_captioner(self.lang))
        return self._captioner

    @property
    def aligner(self) -> Aligner:
        from scenetalk.retrieval.scoring import Aligner

        if self._aligner is None:
            self._aligner = Aligner(self._paths["alignment"] or shipped_alignment())
        return self._aligner

    def caption(self, images: ImageLike | Iterable[ImageLike], beam_size: int = 7, n_best: int = 1,
                **kwargs) -> list[list[Caption]]:
        """See ``Captioner.caption``; every argument is checked before the captioner is loaded."""
        unknown = sorted(set(kwargs) - set(CAPTION_OPTIONS))
        if unknown:
            raise checks.ScenetalkError(f"caption: unknown argument {unknown[0]!r} "
                                        f"(known: beam_size, n_best, {', '.join(CAPTION_OPTIONS)})")
        images = checked_images("images", images)
        check_decoding_options(beam_size, n_best, kwargs.get("max_len", 20), kwargs.get("batch_size", 32),
                               kwargs.get("length_penalty"), kwargs.get("min_len", 1))
        return self.captioner.caption(images, beam_size=beam_size, n_best=n_best, **kwargs)

    def caption_files(self, inputs: str | os.PathLike | Iterable[str | os.PathLike], recursive: bool = False,
                      beam_size: int = 7, n_best: int = 1, max_len: int = 20, length_penalty: float | None = None,
                      batch_size: int = 32, on_problem=None, progress: bool = True):
        """Caption image files and folders of images as ``scenetalk caption`` does: folders are
        listed by extension (sub-folders too when ``recursive``), and an iterator yields a
        ``CaptionedImage`` (path, captions) for each image as its batch is done
        (``Captioner.caption_files``). What is left out is one line each to ``on_problem``
        (default: a Python warning): a path that gave nothing, a file that could not be read,
        and how many could not. A ``ScenetalkError`` before any work when the settings cannot
        work or nothing is left to caption, and at the end when no image could be read."""
        from scenetalk.captioning.captioner import warn_problem
        from scenetalk.errors import ScenetalkError
        from scenetalk.vision.images import collect_inputs

        on_problem = on_problem or warn_problem
        if not callable(on_problem):
            raise ScenetalkError(f"on_problem must be a function of one line (got {checks.shown(on_problem)})")
        check_decoding_options(beam_size, n_best, max_len, batch_size, length_penalty)  # before the inputs are listed
        if isinstance(inputs, (str, os.PathLike)) or inputs is None:
            inputs = [checks.path("inputs", inputs)]
        elif isinstance(inputs, (bytes, dict)) or not hasattr(inputs, "__iter__"):
            raise ScenetalkError(f"inputs must be a path or a list of paths (got {checks.shown(inputs)})")
        else:
            inputs = [checks.path(f"inputs[{i}]", p) for i, p in enumerate(inputs)]
        paths, problems = collect_inputs(inputs, recursive)
        for line in problems:
            on_problem(line)
        if not paths:  # before the captioner is loaded
            raise ScenetalkError("nothing to caption")
        return self.captioner.caption_files(paths, beam_size=beam_size, n_best=n_best, max_len=max_len,
                                            length_penalty=length_penalty, batch_size=batch_size,
                                            on_problem=on_problem, progress=progress)

    def open_index(self, index: str | os.PathLike, checkpoint: str | os.PathLike | None = None):
        """The ``search.Searcher`` of an index (``open_searcher``; with ``checkpoint``, else this
        object's alignment model, else the one the index was built with), kept open: ``search``,
        ``describe`` and ``best_regions`` use it, and a later call gives the same object until
        the index's ``index.json`` changes (a rebuilt index is opened again, never served stale)."""
        from scenetalk.retrieval.index import INDEX_FILE

        index = checks.path("index", index)
        checkpoint = checks.path("checkpoint (--checkpoint)", checkpoint, optional=True) or self._paths["alignment"]
        key = (Path(index).resolve(), os.fspath(Path(checkpoint).resolve()) if checkpoint else None)
        try:  # before opening: an index rebuilt meanwhile is then opened again next time
            st = (Path(index) / INDEX_FILE).stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)  # rebuilt: renamed into place, a new file
        except OSError:
            stamp = None  # open_searcher says what is wrong
        with self._searchers_lock:
            kept = self._searchers.pop(key, None)
            if kept is None or stamp is None or kept[0] != stamp:
                kept = (stamp, open_searcher(index, checkpoint, generators=self._generators))
            self._searchers[key] = kept
            return kept[1]

    def search(self, index: str | os.PathLike, sentence: str, k: int = 10, candidates: int = 1000,
               rerank: int | bool | None = None, warn: bool = True, lang: str | None = None):
        """The ``k`` photos of an index (``scenetalk index build``) that best match ``sentence``.
        ``rerank=K`` (True: 100) ranks the best K by S_kl again by S_kl + λ·log P(sentence | photo)
        of this object's captioner, an m-RNN (``search.Searcher.search``); ``None``, the default,
        does so when the captioner reads the index's features (else it warns, unless ``warn`` is
        False, and does not; ``result.not_reranked`` says why); ``rerank=0`` ranks by S_kl alone.
        The index is kept open (``open_index``) and so is the captioner. ``lang``: the sentence's
        language (``en``, ``zh``, ``de``) for an index whose model reads several; detected when None
        (``result.language`` says which), and the re-ranking captioner is that language's."""
        import warnings

        from scenetalk.limits import MAX_CANDIDATES, MAX_RESULTS

        checks.path("index", index)
        checks.sentence("sentence (the query)", sentence)
        checks.whole_number("k (--top)", k, 1, MAX_RESULTS)
        checks.whole_number("candidates (--candidates)", candidates, 1, MAX_CANDIDATES)
        if rerank is not None and not isinstance(rerank, bool):
            checks.whole_number("rerank (--rerank)", rerank, 0, MAX_RESULTS)
        if lang is not None:
            check_language(lang)
        result = self.open_index(index).search(sentence, k=k, candidates=candidates, rerank=rerank,
                                               captioner=self._paths["captioner"], lang=lang)
        if result.not_reranked and warn:
            warnings.warn(f"ranked by match score alone, not re-ranked: {result.not_reranked}", stacklevel=2)
        return result

    def describe(self, index: str | os.PathLike, image: ImageLike, k: int = 5,
                 sentences: Sequence[str] | None = None, sentence_file: str | os.PathLike | None = None,
                 rerank: int | bool | None = None, warn: bool = True, hub_weight: float | None = None):
        """The ``k`` sentences that best match ``image`` (a photo's name in the index, a path or
        a PIL image), of ``sentences``, else of ``sentence_file`` (one a line), else of the
        collection stored in the index (``scenetalk index build --sentences``). ``rerank=K``
        (True: 100) ranks the best K by S_kl again with the captioner of their language, m-RNN's
        sentence score (``retrieval.sentence_ranking``); ``None``, the default, does so when the
        captioner reads the index's features (else it warns, unless ``warn`` is False, and does
        not; ``result.not_reranked`` says why); ``rerank=0`` ranks by S_kl alone. Before that,
        S_kl is lowered by ``hub_weight`` (None: ``retrieval.hubness.HUB_WEIGHT``, chosen on val;
        0: not) × each sentence's fit to photos in general, its hubness (``retrieval.hubness``).
        The index is kept open (``open_index``). The sentences given or read are checked (``checks.sentence``)
        before any is embedded."""
        import warnings

        from scenetalk.limits import MAX_RESULTS

        checks.path("index", index)
        checked_image("image", image, must_exist=False)  # it may be a photo's name in the index
        checks.whole_number("k (--top)", k, 1, MAX_RESULTS)
        if sentences is not None:
            sentences = checks.sentences("sentences", sentences)
        elif sentence_file is not None:
            from scenetalk.retrieval.index import read_sentence_file

            sentence_file = checks.path("sentence_file (--sentences)", sentence_file)
            language = self.open_index(index).vocab.language
            checks.sentences(f"{sentence_file}: sentence", read_sentence_file(sentence_file, language)[0])
        if rerank is not None and not isinstance(rerank, bool):
            checks.whole_number("rerank (--rerank)", rerank, 0, MAX_RESULTS)
        if hub_weight is None:
            from scenetalk.retrieval.hubness import HUB_WEIGHT

            hub_weight = HUB_WEIGHT
        hub_weight = checks.finite_number("hub_weight (--hub-weight)", hub_weight, 0, 100)
        result = self.open_index(index).describe(image, k=k, sentences=sentences, sentence_file=sentence_file,
                                                 rerank=rerank, captioner=self._paths["captioner"],
                                                 hub_weight=hub_weight)
        if result.not_reranked and warn:
            warnings.warn(f"ranked by match score alone, not re-ranked: {result.not_reranked}", stacklevel=2)
        return result

    def best_regions(self, index: str | os.PathLike, snippets: str | Sequence[str], top: int = 8,
                     per_photo: int = 1, include_whole: bool = False):
        """Region retrieval (Karpathy & Fei-Fei Figures 9-10): for each text snippet, the ``top``
        regions of the index's photos that match it best (``search.Searcher.best_regions``),
        every snippet checked before any result is returned: a ``search.RegionRetrieval``."""
        from scenetalk.limits import MAX_RESULTS
        from scenetalk.retrieval.search import RegionRetrieval

        checks.path("index", index)
        snippets = checks.sentences("snippets", snippets, single=True)
        checks.whole_number("top (--top)", top, 1, MAX_RESULTS)
        checks.whole_number("per_photo (--per-photo)", per_photo, 1, MAX_RESULTS)
        searcher = self.open_index(index)
        found = [searcher.best_regions(s, top=top, per_photo=per_photo, include_whole=include_whole)
                 for s in ([snippets] if isinstance(snippets, str) else snippets)]
        return RegionRetrieval(os.fspath(index), len(searcher.names), searcher.meta.get("folder"), found)

    def score(self, images: ImageLike | Iterable[ImageLike], sentences: str | Sequence[str]) -> np.ndarray:
        """See ``Aligner.score``: at least one image and one sentence, checked before the model
        is loaded."""
        images = checked_images("images", images)
        if not images:
            raise checks.ScenetalkError("images is empty: give at least one image")
        sentences = checks.sentences("sentences", sentences, single=True)
        return self.aligner.score(images, sentences)

    def align(self, image: ImageLike, sentence: str, beta: float = ALIGN_BETA,
              min_score: float = LOW_SCORE) -> WordAlignment:
        """Which region of ``image`` (a path or a PIL image) each word of ``sentence`` describes
        (Karpathy & Fei-Fei Figure 5), with the alignment model: each word's best region, and the
        chain MRF's segments, runs of words on one region, neighbours kept together with bonus
        ``beta`` (eq. 10-12; 0: each word on its own best region). Links scoring at most
        ``min_score`` (a segment: summed over its words) are not shown."""
        import math

        from scenetalk.errors import ScenetalkError
        from scenetalk.grounding.word_regions import align_words

        checked_image("image", image)
        checks.sentence("sentence", sentence)
        checks.finite_number("beta (--beta)", beta)
        if not (math.isfinite(beta) and beta >= 0):
            raise ScenetalkError(f"beta (--beta) must be a finite number of at least 0 (got {beta})")
        checks.finite_number("min_score (--min-score)", min_score)
        aligner = self.aligner
        return align_words(aligner.model, aligner.vocab, aligner.extractor, image, sentence, beta=beta,
                           min_score=min_score, checkpoint=str(aligner.checkpoint))

    def regions(self, image: ImageLike, top: int = 5, beam_size: int = 7, max_len: int = 16,
                generator: str | os.PathLike | None = None) -> RegionDescriptions:
        """The ``top`` detections of ``image`` (a path or a PIL image), by detector score, each
        described by a phrase (Karpathy & Fei-Fei Figure 7) of the ``generator`` checkpoint,
        by default the shipped region generator (``weights.region_generator``); the generator
        is loaded once and kept."""
        from scenetalk.errors import ScenetalkError
        from scenetalk.grounding.region_descriptions import describe_regions, region_extractor
        from scenetalk.weights import region_generator

        checked_image("image", image)
        for name, value in (("top (--top)", top), ("beam_size (--beam)", beam_size), ("max_len (--max-len)", max_len)):
            checks.whole_number(name, value)
        generator = checks.path("generator (--checkpoint)", generator, optional=True)
        if not 1 <= top <= 19:
            raise ScenetalkError(f"top (--top) must be between 1 and 19, the detections kept per photo (got {top})")
        if beam_size < 1 or max_len < 1:
            raise ScenetalkError(f"beam_size (--beam) and max_len (--max-len) must be at least 1 "
                                 f"(got {beam_size} and {max_len})")
        check_decoding_options(beam_size, 1, max_len)  # the upper limits
        kept = self._region_generators
        key = os.fspath(generator) if generator else None
        if key not in kept:
            checkpoint, description = (generator, f"the generator in {key}") if key else region_generator()
            captioner = Captioner(checkpoint)
            kept[key] = (captioner, region_extractor(captioner), description)
        captioner, extractor, description = kept[key]
        return describe_regions(captioner, extractor, image, top=top, beam_size=beam_size, max_len=max_len,
                                description=description)

    def learn_words(self, words: str | Sequence[str], images: str | os.PathLike | None,
                    captions: str | os.PathLike | None, out: str | os.PathLike,
                    base: str | os.PathLike | None = None, **options):
        """Teach the captioner new words from a folder of photos and their sentences, and write
        the new captioner to ``out`` (``training.new_words.learn_words_from_files``; ``options``:
        ``method`` "nvcl" or "finetune", ``steps``, ``relearn``, ``overwrite``, ``progress``,
        ``from_detector``: start from the nearest known words and let the detector decide where
        its classes' words are said; with ``images`` and ``captions`` None, without photos).
        ``base`` defaults to this object's captioner. Returns a ``LearnWordsResult``; caption
        with the result through ``scenetalk.load(captioner=out)``. Needs PyTorch (the train extra)."""
        from scenetalk import runtime

        runtime.need_torch("learning new words")
        from scenetalk.training.new_words import learn_words_from_files

        known = ("method", "steps", "relearn", "overwrite", "progress", "from_detector")
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise checks.ScenetalkError(f"learn_words: unknown argument {unknown[0]!r} (known: {', '.join(known)})")
        if isinstance(words, str):
            words = [words]
        return learn_words_from_files(words, images, captions, out, base=base or self._paths["captioner"], **options)


def load(captioner: str | os.PathLike | None = None, alignment: str | os.PathLike | None = None,
         lang: str = "en") -> Scenetalk:
    """scenetalk's models: a caption generator checkpoint folder (``model.safetensors`` +
    ``config.json``) and an alignment checkpoint, by default the ones shipped with the package;
    ``lang`` (``en``, ``zh``, ``de``: ``weights.CAPTION_LANGUAGES``) picks the shipped captioner
    of that language."""
    return Scenetalk(captioner, alignment, lang)
