"""Captioning images with a trained caption generator.

``Captioner`` is a generator checkpoint plus the backbone its features came from (rebuilt
from the checkpoint's feature-extractor id, and refused if the installed weights differ);
``caption_features`` decodes captions for cached features with beam search or greedy
decoding (``captioning.decoding``). Checkpoints are read by ``checkpoint.load_generator_steps``:
the generator runs in ONNX Runtime (or PyTorch, ``runtime``) behind the decoders' NumPy step
interface, so nothing here needs torch.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from scenetalk.captioning.decoding import Hypothesis, beam_search, constrained_beam_search, greedy
from scenetalk.captioning.detected_words import DetectorGate
from scenetalk.checkpoint import CheckpointError, as_steps, load_generator_steps
from scenetalk.data.text import Vocabulary
from scenetalk.errors import ImageError, ScenetalkError
from scenetalk.features.extract import backbone_id, extractor_for
from scenetalk.features.store import input_arrays, model_array
from scenetalk.progress import progress_bar
from scenetalk.vision.images import ImageLike, load_image, loaded_batches


@dataclass
class Caption:
    """One generated caption: ``text`` as the language writes it (Chinese without spaces),
    ``words`` the tokens the model said."""
    text: str
    log_prob: float
    score: float
    complete: bool
    words: list[str] = field(default_factory=list)


@dataclass
class CaptionedImage:
    """One image file and its captions, best first (``Captioner.caption_files``)."""
    image: str
    captions: list[Caption]


def check_decoding(beam_size: int, n_best: int, max_len: int, batch_size: int) -> None:
    """A ``ScenetalkError`` naming the options when the decoding settings cannot work: the beam
    keeps ``beam_size`` hypotheses, so at most that many captions come back."""
    if beam_size < 1 or n_best < 1 or n_best > beam_size:
        raise ScenetalkError(f"need 1 <= --n-best <= --beam (got --beam {beam_size}, --n-best {n_best})")
    if batch_size < 1 or max_len < 1:
        raise ScenetalkError(f"--batch-size and --max-len must be at least 1 (got {batch_size} and {max_len})")


def warn_problem(line: str) -> None:
    """The default ``on_problem`` of ``caption_files``: a Python warning."""
    warnings.warn(line, stacklevel=3)


def default_length_penalty(meta: dict) -> float:
    """A checkpoint's beam-search length normalisation (``decoding.length_penalty``, chosen on
    validation when it was shipped), else 0."""
    return float(meta.get("decoding", {}).get("length_penalty", 0.0))


def check_features(checkpoint: str | os.PathLike, meta: dict, store, image_input: str = "global") -> None:
    """A generator reads the store only if it was trained on the same features: its extractor
    id is the store's, or (a generator that reads no regions) the backbone parts agree, as a
    region store holds the global and grid features unchanged."""
    have = meta.get("extractor_id") or ""
    if "regions" not in input_arrays(image_input):
        have = backbone_id(have)
    if have not in (store.extractor_id, backbone_id(store.extractor_id)):
        raise CheckpointError(f"{checkpoint}: made for image features {have!r}, but {store.path} holds "
                              f"{store.extractor_id!r}; pass features made by the checkpoint's extractor")


def load_generator_for(checkpoint: str | os.PathLike, store, one_vector: bool = False):
    """A caption generator checked against the store (see ``check_features``); ``one_vector``:
    it must read one vector per image (so it can read one region's)."""
    model, vocab, meta = load_generator_steps(checkpoint)
    check_features(checkpoint, meta, store, model.image_input)
    if one_vector and model.image_input != "global":
        raise ScenetalkError(f"{checkpoint}: this generator reads a grid of cells, not one vector per region; "
                             "use a generator of global features (e.g. the shipped captioner)")
    return model, vocab, meta


def _to_caption(vocab: Vocabulary, h: Hypothesis) -> Caption:
    words = vocab.decode(h.tokens)
    return Caption(vocab.join(words), h.log_prob, h.score, h.complete, words)


def caption_features(model, vocab: Vocabulary, features, beam_size: int = 7,
                     n_best: int = 1, max_len: int = 20, min_len: int = 1, length_penalty: float = 0.0,
                     batch_size: int = 100, allow_unk: bool = False,
                     required: Sequence[Sequence[int]] | None = None,
                     forbidden: Sequence[Sequence[int]] | None = None) -> list[list[Caption]]:
    """Captions for a batch of cached features ((N, D) vectors or (N, cells, D) grids, NumPy
    or torch) by ``model`` (see ``as_steps``).
    ``<unk>`` is never generated unless ``allow_unk``: it says nothing to a reader.
    ``required``: per image, word ids one of which its caption must say (constrained beam
    search; ``captioning.detected_words``), with ``forbidden`` ids it may not say."""
    banned = () if allow_unk else (vocab.unk_id,)
    model = as_steps(model)
    features = np.asarray(features, dtype=np.float32)
    if required is not None:
        return _caption_constrained(model, vocab, features, required, forbidden, banned, beam_size=beam_size,
                                    n_best=n_best, max_len=max_len, min_len=min_len, length_penalty=length_penalty,
                                    batch_size=batch_size)
    out: list[list[Caption]] = []
    for start in range(0, len(features), batch_size):
        chunk = features[start:start + batch_size]
        state = model.init_state(chunk)
        if beam_size == 1 and n_best == 1:
            hyps = [[h] for h in greedy(model, state, len(chunk), vocab.start_id, vocab.end_id, max_len, min_len,
                                           banned=banned)]
        else:
            hyps = beam_search(model, state, len(chunk), vocab.start_id, vocab.end_id, beam_size=beam_size,
                               n_best=n_best, max_len=max_len, min_len=min_len, length_penalty=length_penalty,
                               banned=banned)
        out.extend([_to_caption(vocab, h) for h in row] for row in hyps)
    return out


def _caption_constrained(model, vocab, features, required, forbidden, banned, batch_size, **decoding):
    """``caption_features`` with per-image required and forbidden words: the images that must
    say a word go through constrained beam search, the others (whose forbidden words are the
    same, as ``detected_words`` gives them) through plain beam search with those words banned,
    which costs half as much."""
    forbidden = forbidden if forbidden is not None else [[] for _ in required]
    free = [i for i, need in enumerate(required) if not need]
    same = {tuple(sorted(forbidden[i])) for i in free}
    if len(same) > 1:           # forbidden words differ between free images: all constrained
        free, same = [], set()
    out: list[list[Caption] | None] = [None] * len(features)
    free_set = set(free)
    groups = [(free, False), ([i for i in range(len(features)) if i not in free_set], True)]
    for rows_all, constrained in groups:
        for start in range(0, len(rows_all), batch_size):
            rows = rows_all[start:start + batch_size]
            chunk = features[rows]
            state = model.init_state(chunk)
            if constrained:
                hyps = constrained_beam_search(model, state, len(chunk), vocab.start_id, vocab.end_id,
                                               [required[i] for i in rows], banned=banned,
                                               forbidden=[forbidden[i] for i in rows], **decoding)
            else:
                hyps = beam_search(model, state, len(chunk), vocab.start_id, vocab.end_id,
                                   banned=[*banned, *next(iter(same))], **decoding)
            for i, row in zip(rows, hyps):
                out[i] = [_to_caption(vocab, h) for h in row]
    return out


class Captioner:
    """Images in, sentences out. Build it with ``scenetalk.load()``."""

    def __init__(self, checkpoint: str | os.PathLike):
        self.checkpoint = Path(checkpoint)
        self.generator, self.vocab, self.meta = load_generator_steps(self.checkpoint)
        self.extractor_id = self.meta.get("extractor_id") or ""
        # what the generator reads, and no more: a model of the grid alone needs no detector
        reads = input_arrays(self.generator.image_input)
        self.extractor = extractor_for(self.extractor_id, self.checkpoint, grid="grid" in reads,
                                       regions="regions" in reads)
        # a captioner given words by analogy (learn-word --from-detector) says them when the detector sees them
        gate = self.meta.get("detector_words")
        if gate is not None and not (isinstance(gate, dict) and isinstance(gate.get("words"), list)
                                     and isinstance(gate.get("threshold"), (int, float))):
            raise CheckpointError(f"{self.checkpoint}: damaged config (detector_words); rebuild it with "
                                  "`scenetalk learn-word --from-detector`")
        self.gate = DetectorGate(self.vocab, gate["words"], gate["threshold"]) if gate else None

    def features(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The generator's image input for RGB images: (N, D) vectors or (N, cells, D) grids
        (``features.store.MODEL_INPUTS``)."""
        return model_array(self.extractor.features(list(images)), self.generator.image_input)

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
            gate = self.gate(batch) if self.gate else {}
            out.extend(caption_features(self.generator, self.vocab, self.features(batch), beam_size=beam_size,
                                        n_best=n_best, max_len=max_len, min_len=min_len,
                                        length_penalty=length_penalty, batch_size=batch_size, **gate))
        return out

    def caption_files(self, paths: Sequence[str | os.PathLike], beam_size: int = 7, n_best: int = 1,
                      max_len: int = 20, min_len: int = 1, length_penalty: float | None = None,
                      batch_size: int = 32, on_problem: Callable[[str], None] | None = None,
                      progress: bool = True) -> Iterator[CaptionedImage]:
        """``caption`` for many image files, ``batch_size`` at a time, yielding a ``CaptionedImage``
        for each file that can be read, in order, as soon as its batch is done. A file that cannot
        (an ``ImageError``: missing, not an image, corrupt) is skipped with a line ``"skipped
        PATH: why"`` to ``on_problem`` (default: a Python warning); at the end, if any was
        skipped, a line says how many. A ``ScenetalkError`` when the settings cannot work
        (``check_decoding``) or there are no paths, before any work, and, after the last
        caption, when no file could be read. ``progress``: a bar when there is over one batch."""
        check_decoding(beam_size, n_best, max_len, batch_size)
        paths = [os.fspath(p) for p in paths]
        if not paths:
            raise ScenetalkError("nothing to caption")
        settings = {"beam_size": beam_size, "n_best": n_best, "max_len": max_len, "min_len": min_len,
                    "length_penalty": length_penalty, "batch_size": batch_size}
        return self._caption_files(paths, settings, on_problem or warn_problem, progress)

    def _caption_files(self, paths: list[str], settings: dict, on_problem: Callable[[str], None],
                       progress: bool) -> Iterator[CaptionedImage]:
        batch_size, captioned, failed = settings["batch_size"], 0, 0
        bar = progress_bar(total=len(paths), unit="image", disable=not progress or len(paths) <= batch_size)
        try:
            for start in range(0, len(paths), batch_size):
                batch = paths[start:start + batch_size]
                readable, images = [], []
                for path in batch:
                    try:
                        images.append(load_image(path))
                        readable.append(path)
                    except ImageError as exc:
                        failed += 1
                        on_problem(f"skipped {exc}")
                if images:
                    for path, captions in zip(readable, self.caption(images, **settings)):
                        captioned += 1
                        yield CaptionedImage(path, captions)
                bar.update(len(batch))
        finally:
            bar.close()
        if failed:
            on_problem(f"{failed} of {len(paths)} image(s) could not be read")
        if not captioned:
            raise ScenetalkError("no image could be captioned")
