"""Grounding words in image regions with the alignment model (Karpathy & Fei-Fei §3.1.4).

Every word t of a sentence scores every region i of its image by v_iᵀ s_t (eq. 11's unary,
``word_region_scores``). The chain MRF (``models/mrf.py``, eq. 10-12) then assigns each word
a region, with a bonus β for neighbours on the same region (``align_sentences``); the runs of
words on one region are segments: the snippets of the corpus (``grounding.snippets``) and
the right panel of Figure 5. Phrase localisation on the same scores is
``grounding.localisation``.

The word vectors are computed by the BRNN over the whole sentence, so a phrase's words carry
their context ("red" in "a man in a red shirt" knows about the shirt).

``align_words`` is the whole job for one photo and one sentence (``Scenetalk.align``,
``scenetalk align``): each word's best region and the MRF's segments, as a ``WordAlignment``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from scenetalk.data.text import Vocabulary, sentence_tokens
from scenetalk.errors import ScenetalkError
from scenetalk.grounding import ALIGN_BETA, DEFAULT_BETA, LOW_SCORE  # noqa: F401 (their home is here)
from scenetalk.grounding.photo_regions import image_name, photo_regions, region_record
from scenetalk.models.mrf import chain_alignment, segments
from scenetalk.vision.images import ImageLike


def word_region_scores(model, vocab: Vocabulary, regions, tokens: Sequence[Sequence[str]],
                       image_of: Sequence[int], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """v_iᵀ s_t for every word of every sentence against every region of its own image.

    model: an alignment engine (``checkpoint.load_alignment_engine``) or a PyTorch
    ``AlignmentModel`` (a trainer's: scored in eval mode, see ``checkpoint.as_alignment``).
    regions: (K, M, D) region features of K images (an array, a memmap or a CPU tensor);
    tokens: L sentences; image_of: (L,) the image (0..K-1) of each sentence. Returns unary
    (L, T, M) float32 and the (L, T) bool mask of real words."""
    from scenetalk.checkpoint import as_alignment

    if hasattr(model, "W_w"):   # a PyTorch model, maybe a trainer's in training mode: dropout off
        from scenetalk.models import eval_mode

        with eval_mode(model):
            return _word_region_scores(as_alignment(model), vocab, regions, tokens, image_of, batch_size)
    return _word_region_scores(as_alignment(model), vocab, regions, tokens, image_of, batch_size)


def _word_region_scores(model, vocab: Vocabulary, regions, tokens: Sequence[Sequence[str]],
                        image_of: Sequence[int], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    ids, lengths = vocab.encode_batch([list(t) or ["<unk>"] for t in tokens], add_start=False, add_end=False)
    image_of = np.asarray(image_of, dtype=np.int64)
    unary = np.zeros((len(ids), ids.shape[1], regions.shape[1]), dtype=np.float32)
    if len(ids) == 0:
        return unary, ids != 0
    # Each image's regions once (an image has several sentences), in batches.
    v_all = np.concatenate([np.asarray(model.embed_regions(np.asarray(regions[a:a + batch_size], dtype=np.float32)),
                                       dtype=np.float32)
                            for a in range(0, len(regions), batch_size)])
    order = np.argsort(lengths, kind="stable")  # batches of similar length: the recurrence runs only as long as needed
    for start in range(0, len(ids), batch_size):
        rows = order[start:start + batch_size]
        n = int(lengths[rows].max())
        s, _ = model.embed_words(ids[rows, :n])
        # Σ_h s_th v_ih (eq. 11's unary): a batched (T, h) @ (h, M) per sentence
        unary[rows, :n] = np.matmul(np.asarray(s, dtype=np.float32), v_all[image_of[rows]].transpose(0, 2, 1))
    return unary, ids != 0


def align_sentences(unary, mask, beta: float, batch_size: int = 1024) -> np.ndarray:
    """MRF assignments (L, T) int64 of many sentences, -1 on padding, in batches (eq. 10-12);
    unary (L, T, M), mask (L, T) (arrays, or anything ``np.asarray`` reads)."""
    unary, mask = np.asarray(unary), np.asarray(mask, dtype=bool)
    out = np.full(mask.shape, -1, dtype=np.int64)
    for start in range(0, len(unary), batch_size):
        rows = slice(start, start + batch_size)
        out[rows], _ = chain_alignment(unary[rows], beta, mask[rows])
    return out


# -- one photo, one sentence: Figure 5 as data ------------------------------------------------

@dataclass
class Link:
    """Words [start, end) of a sentence on one region, with Σ_t v_iᵀ s_t over them."""
    start: int
    end: int
    region: int
    score: float
    shown: bool      # False: low-scoring (or only unknown words), drawn grey and unlinked

    def text(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens[self.start:self.end])


def links(unary, assignment: Sequence[int] | np.ndarray, per_word: bool = False,
          min_score: float = LOW_SCORE, known: Sequence[bool] | None = None) -> list[Link]:
    """The words of one sentence on their regions: one link per word (``per_word``) or per
    run of words on one region (the MRF's segments, ``models.mrf.segments``). unary (T, M),
    assignment (T,): arrays, or anything indexed ``unary[t, i]``. A link is shown when its
    summed score is above ``min_score`` and it has a word the model knows. Summed, not per
    word: the MRF joins function words, which score about 0 on every region, to their
    neighbours, and per word "a cup" (0.12) would hide the link that "cup" (0.37) has alone."""
    a = [int(x) for x in assignment][:len(unary)]
    if per_word:
        runs = [(t, t + 1, r, float(unary[t, r])) for t, r in enumerate(a)]
    else:
        runs = [(s.start, s.end, s.region, s.score) for s in segments(a, unary)]
    known = [True] * len(a) if known is None else list(known)
    return [Link(start, end, region, score, score > min_score and any(known[start:end]))
            for start, end, region, score in runs]


@dataclass
class WordLink:
    """One word: its best region (β = 0) and the region the MRF gives it, each with v_iᵀ s_t."""
    word: str
    known: bool          # False: not in the model's vocabulary, scored as <unk>, never linked
    best_region: int
    best_score: float
    mrf_region: int
    mrf_score: float
    shown: bool          # its best region is linked: score above min_score, a known word


@dataclass
class SegmentLink:
    """A run of words [start, end) that the MRF puts on one region, with Σ_t v_iᵀ s_t."""
    words: str
    start: int
    end: int
    region: int
    score: float
    shown: bool          # summed score above min_score, and a known word in it


@dataclass
class WordAlignment:
    """Which region of a photo each word of a sentence describes (Karpathy & Fei-Fei Figure 5):
    ``words`` each on its best region (β = 0), ``segments`` the chain MRF's runs of words on
    one region (eq. 10-12, with ``beta``), ``regions`` the regions either names (index, class,
    detector score, box in pixels). Words the model does not know are in ``unknown_words``.
    ``photo``, ``unary`` (T, M) = v_iᵀ s_t and ``boxes`` (M, 4, normalised) are what a picture
    needs (``presentation.pictures.word_alignment_picture``); they are left out of JSON."""
    image: str | None
    sentence: str
    checkpoint: str
    beta: float
    min_score: float
    words: list[WordLink]
    segments: list[SegmentLink]
    regions: list[dict]
    unknown_words: list[str]
    photo: Image.Image = field(repr=False, metadata={"json": False})
    unary: np.ndarray = field(repr=False, metadata={"json": False})
    boxes: np.ndarray = field(repr=False, metadata={"json": False})

    @property
    def tokens(self) -> list[str]:
        return [w.word for w in self.words]

    def region(self, k: int) -> dict:
        """Region ``k``'s record (of those in ``regions``)."""
        return next(r for r in self.regions if r["region"] == k)


def align_words(model, vocab: Vocabulary, extractor, image: ImageLike, sentence: str,
                beta: float = ALIGN_BETA, min_score: float = LOW_SCORE, checkpoint: str = "") -> WordAlignment:
    """Align the words of ``sentence`` with the regions of ``image`` (a path or a PIL image):
    v_iᵀ s_t for every word and region (``word_region_scores``), each word's best region and
    the MRF's assignment with ``beta`` (``align_sentences``); links scoring at most
    ``min_score`` are not shown (``links``). ``extractor`` gives the 20 regions the model was
    trained on; ``checkpoint`` names the model in the result. A sentence with no word the model
    knows is refused (``ScenetalkError``). ``model`` is an alignment engine or a PyTorch
    ``AlignmentModel`` (``word_region_scores``)."""
    [tokens] = sentence_tokens([sentence], vocab)
    known = [t in vocab.stoi for t in tokens]
    if not any(known):
        raise ScenetalkError(f"none of the words of {sentence!r} is known to the model "
                             f"(its vocabulary has {len(vocab)} words from its training sentences)")
    photo, arrays = photo_regions(image, extractor)
    regions = np.asarray(arrays["regions"], dtype=np.float32)[None]
    unary, mask = word_region_scores(model, vocab, regions, [tokens], [0])
    unary = unary[0, :len(tokens)]
    assignment = align_sentences(unary[None], mask[:, :len(tokens)], beta)[0]
    best = links(unary, unary.argmax(axis=1), per_word=True, min_score=min_score, known=known)
    runs = links(unary, assignment, min_score=min_score, known=known)
    words = [WordLink(w, k, b.region, b.score, int(a), float(unary[t, int(a)]), b.shown)
             for t, (w, k, b, a) in enumerate(zip(tokens, known, best, assignment))]
    segs = [SegmentLink(s.text(tokens), s.start, s.end, s.region, s.score, s.shown) for s in runs]
    used = sorted({link.region for link in best + runs})
    return WordAlignment(image_name(image), sentence, checkpoint, beta, min_score, words, segs,
                         [region_record(k, arrays, photo.size) for k in used],
                         [t for t, k in zip(tokens, known) if not k], photo, unary, arrays["boxes"])
