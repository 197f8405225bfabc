"""Phrase localisation on Flickr30K Entities with the alignment model's word-region scores.

A phrase (a span of words) goes to one region: the region with the highest summed score over
the phrase's words (``method="sum"``) or, after the MRF over the whole sentence, the region
its words were assigned to (``method="mrf"``; when the words went to several regions, the one
with the highest summed score among those). Optionally with an objectness prior: λ times the
detector's confidence in the box is added to the phrase's total (``prior_weight``; the whole
image gets ``whole_image_prior``): the alignment knows what a phrase looks like but not
whether a box holds a whole object; the detector knows the latter. λ and the whole image's
value are chosen on dev images (``benchmarks/tune_grounding.py``). A region is right when its
IoU with the phrase's box is at least 0.5 (``IOU_HIT``); ``snippet_agreement`` compares the
MRF's snippets with the human phrases, for choosing β.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scenetalk.data.text import Vocabulary
from scenetalk.grounding.word_regions import align_sentences, word_region_scores
from scenetalk.models.mrf import segments
from scenetalk.vision.boxes import box_area, box_iou, union_box

LOCALISATION_METHODS = ("sum", "mrf")


#: IoU a region needs with a human box to count as the phrase's place (Plummer et al.).
IOU_HIT = 0.5


def phrase_regions(unary, spans: Sequence[tuple[int, int]], method: str = "sum",
                   assignment=None, prior=None) -> list[int]:
    """The region of each phrase [start, end) of one sentence; unary (N, M).
    ``method="mrf"`` needs the sentence's MRF ``assignment`` (N,); ``prior`` (M,) is added to
    every phrase's totals. Arrays, or anything ``np.asarray`` reads."""
    if method not in LOCALISATION_METHODS:
        raise ValueError(f"method must be one of {', '.join(LOCALISATION_METHODS)}, not {method!r}")
    unary = np.asarray(unary)
    prior = None if prior is None else np.asarray(prior)
    assignment = None if assignment is None else np.asarray(assignment, dtype=np.int64)
    out = []
    for start, end in spans:
        totals = unary[start:end].sum(axis=0)                 # Σ_t over the phrase of v_iᵀ s_t
        if prior is not None:
            totals = totals + prior
        if method == "mrf":
            allowed = np.full_like(totals, -np.inf)
            chosen = assignment[start:end]
            allowed[chosen] = totals[chosen]
            totals = allowed
        out.append(int(totals.argmax()))
    return out


@dataclass
class PhraseOutcome:
    """One human-annotated phrase of the localisation benchmark and what each method hit."""
    image: str
    sentence: int
    text: str
    types: list[str]
    region: int              # the region our alignment chose
    iou: float               # its best IoU with the phrase's boxes (protocol-dependent)
    upper_bound: bool        # some candidate region reaches IoU >= 0.5
    whole_image: bool        # region 0 (the whole photo) reaches it
    largest_box: bool        # the largest detected box reaches it
    top_detection: bool      # the detector's most confident box reaches it

    @property
    def hit(self) -> bool:
        return self.iou >= IOU_HIT


def phrase_truth(boxes: np.ndarray, protocol: str) -> np.ndarray:
    """The boxes a region is compared with: each of the phrase's boxes (``any``: a hit on any
    counts, the issue's definition) or their union (``union``: Plummer et al.'s protocol, which
    GroundeR and CCA report)."""
    if protocol == "any":
        return boxes
    if protocol == "union":
        return union_box(boxes)[None]
    raise ValueError(f"protocol must be 'any' or 'union', not {protocol!r}")


@dataclass
class ScoredSentences:
    """The word-region scores of every sentence of a set of annotated images, computed once."""
    entities: dict               # name -> EntityImage
    keys: list[tuple[str, int]]  # (image name, sentence index) of each row
    unary: np.ndarray            # (L, T, M) float32 v_iᵀ s_t
    mask: np.ndarray             # (L, T) bool


def score_entities(model, vocab: Vocabulary, entities: dict, regions, row_of: dict[str, int]) -> ScoredSentences:
    """Word-region scores of every sentence of ``entities`` (name -> EntityImage); ``regions``
    (N, M, D) are the feature store's (an array or a memmap), rows found by ``row_of``;
    ``model`` as ``word_region_scores`` takes it."""
    names = sorted(entities)
    tokens, image_of, keys = [], [], []
    for k, name in enumerate(names):
        for j, sentence in enumerate(entities[name].sentences):
            tokens.append(sentence.tokens)
            image_of.append(k)
            keys.append((name, j))
    rows = [row_of[n] for n in names]
    unary, mask = word_region_scores(model, vocab, regions[rows], tokens, image_of)
    return ScoredSentences(entities, keys, unary, mask)


def objectness(box_scores: np.ndarray, whole_image_prior: float) -> np.ndarray:
    """Per-region prior (M,) float32: the detector's confidence in each box; the whole image
    (region 0) gets ``whole_image_prior``, grid fillers their stored 0."""
    prior = np.array(box_scores, dtype=np.float32)
    prior[0] = whole_image_prior
    return prior


def localise(scored: ScoredSentences, boxes: np.ndarray, row_of: dict[str, int], method: str = "sum",
             beta: float = 0.0, protocol: str = "any", box_scores: np.ndarray | None = None,
             prior_weight: float = 0.0, whole_image_prior: float = 0.0) -> list[PhraseOutcome]:
    """Phrase localisation: every phrase with human boxes is given the region our alignment
    picks for its words. ``boxes`` (N, M, 4) and ``box_scores`` (N, M) are the feature store's
    candidate boxes and detector confidences: region 0 is the whole image, regions 1.. are
    detections. ``prior_weight`` > 0 adds the objectness prior (needs ``box_scores``)."""
    if prior_weight and box_scores is None:
        raise ValueError("an objectness prior needs the detector's box_scores")

    assignment = align_sentences(scored.unary, scored.mask, beta) if method == "mrf" else None
    out = []
    for l, (name, j) in enumerate(scored.keys):
        phrases = [p for p in scored.entities[name].sentences[j].phrases if len(p.boxes)]
        if not phrases:
            continue
        row = row_of[name]
        prior = prior_weight * objectness(box_scores[row], whole_image_prior) if prior_weight else None
        chosen = phrase_regions(scored.unary[l], [(p.start, p.end) for p in phrases], method,
                                None if assignment is None else assignment[l], prior)
        candidates = boxes[row]
        largest = 1 + int(np.argmax(box_area(candidates[1:])))
        # Detections are stored best first; with no detector scores, region 1 is the first.
        confident = 1 if box_scores is None else 1 + int(np.argmax(np.asarray(box_scores[row])[1:]))
        for p, region in zip(phrases, chosen):
            iou = box_iou(candidates, phrase_truth(p.boxes, protocol)).max(axis=1)   # (M,)
            out.append(PhraseOutcome(name, j, p.text, list(p.types), region, float(iou[region]),
                                     bool(iou.max() >= IOU_HIT), bool(iou[0] >= IOU_HIT),
                                     bool(iou[largest] >= IOU_HIT), bool(iou[confident] >= IOU_HIT)))
    return out


def localisation_table(outcomes: Sequence[PhraseOutcome]) -> dict[str, dict[str, float]]:
    """Accuracy (%) of our alignment and of the baselines, overall and per phrase type
    (a phrase with several types counts in each)."""
    groups: dict[str, list[PhraseOutcome]] = {"all": list(outcomes)}
    for o in outcomes:
        for t in o.types:
            groups.setdefault(t, []).append(o)

    def pct(flags) -> float:
        flags = list(flags)
        return round(100.0 * sum(flags) / len(flags), 2) if flags else float("nan")

    return {name: {"phrases": len(g), "alignment": pct(o.hit for o in g), "upper_bound": pct(o.upper_bound for o in g),
                   "whole_image": pct(o.whole_image for o in g), "largest_box": pct(o.largest_box for o in g),
                   "top_detection": pct(o.top_detection for o in g)}
            for name, g in sorted(groups.items(), key=lambda kv: (kv[0] != "all", -len(kv[1])))}


def snippet_agreement(scored: ScoredSentences, boxes: np.ndarray, row_of: dict[str, int], beta: float,
                      protocol: str = "union") -> dict[str, float]:
    """How well the MRF's snippets at ``beta`` match the human phrases, for choosing β on dev
    images: a snippet is right when its words are exactly a boxed phrase's words and its region
    has IoU >= 0.5 with the phrase's box. Precision over all snippets, recall over all boxed
    phrases, their F1, and the mean snippet length. Small β cuts phrases into single words
    (low recall), large β merges them into long runs (low precision)."""
    assignment = align_sentences(scored.unary, scored.mask, beta)
    right = n_snippets = n_phrases = n_words = 0
    for l, (name, j) in enumerate(scored.keys):
        spans = {(p.start, p.end): p for p in scored.entities[name].sentences[j].phrases if len(p.boxes)}
        n_phrases += len(spans)
        candidates = boxes[row_of[name]]
        for seg in segments(assignment[l], scored.unary[l]):
            n_snippets += 1
            n_words += seg.end - seg.start
            p = spans.get((seg.start, seg.end))
            if p is not None and box_iou(candidates[seg.region:seg.region + 1],
                                         phrase_truth(p.boxes, protocol)).max() >= IOU_HIT:
                right += 1
    precision, recall = right / max(n_snippets, 1), right / max(n_phrases, 1)
    f1 = 2 * precision * recall / (precision + recall) if right else 0.0
    return {"beta": beta, "precision": round(100 * precision, 2), "recall": round(100 * recall, 2),
            "f1": round(100 * f1, 2), "mean_snippet_words": round(n_words / max(n_snippets, 1), 2)}
