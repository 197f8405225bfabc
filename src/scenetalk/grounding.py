"""Grounding words in image regions with the alignment model (Karpathy & Fei-Fei §3.1.4).

Every word t of a sentence scores every region i of its image by v_iᵀ s_t (eq. 11's unary).
From these scores:

* **segment alignment**: the chain MRF (``models/mrf.py``, eq. 10-12) assigns each word a
  region, with a bonus β for neighbours on the same region; the runs of words on one region
  are the snippets of the region-snippet corpus (``region_corpus``);
* **phrase localisation**: a phrase (a span of words) goes to one region, either the region
  with the highest summed score over the phrase's words (``method="sum"``) or, after the
  MRF over the whole sentence, the region its words were assigned to (``method="mrf"``; when
  the words went to several regions, the one with the highest summed score among those).
  Optionally with an objectness prior: λ times the detector's confidence in the box is added
  to the phrase's total (``prior_weight``; the whole image gets ``whole_image_prior``). The
  alignment knows what a phrase looks like but not whether a box holds a whole object; the
  detector knows the latter. λ and the whole image's value are chosen on dev images.

The word vectors are computed by the BRNN over the whole sentence, so a phrase's words carry
their context ("red" in "a man in a red shirt" knows about the shirt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from scenetalk.data.text import Vocabulary
from scenetalk.models.alignment import AlignmentModel
from scenetalk.models.mrf import chain_alignment, segments
from scenetalk.vision.boxes import box_area, box_iou, union_box

LOCALISATION_METHODS = ("sum", "mrf")
#: The MRF's β for snippets, chosen on the Flickr8K dev images: the β whose snippets best match
#: the human phrases of Flickr30K Entities (``snippet_agreement`` F1 3.57 at 0.75, 3.46 at 0.5,
#: 3.12 at 1; ``python benchmarks/tune_grounding.py``).
DEFAULT_BETA = 0.75
#: IoU a region needs with a human box to count as the phrase's place (Plummer et al.).
IOU_HIT = 0.5


@torch.no_grad()
def word_region_scores(model: AlignmentModel, vocab: Vocabulary, regions: torch.Tensor,
                       tokens: Sequence[Sequence[str]], image_of: Sequence[int], batch_size: int = 256
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """v_iᵀ s_t for every word of every sentence against every region of its own image.

    regions: (K, M, D) region features of K images; tokens: L sentences; image_of: (L,) the
    image (0..K-1) of each sentence. Returns unary (L, T, M) float32 and the (L, T) mask."""
    model.eval()
    ids, lengths = vocab.encode_batch([list(t) or ["<unk>"] for t in tokens], add_start=False, add_end=False)
    image_of = torch.as_tensor(image_of, dtype=torch.long)
    unary = torch.zeros(len(ids), ids.size(1), regions.size(1))
    # Each image's regions once (an image has several sentences), in batches.
    v_all = torch.cat([model.embed_regions(regions[a:a + batch_size]).float()
                       for a in range(0, len(regions), batch_size)])
    order = lengths.argsort()  # batches of similar length: the recurrence runs only as long as needed
    for start in range(0, len(ids), batch_size):
        rows = order[start:start + batch_size]
        n = int(lengths[rows].max())
        s, _ = model.embed_words(ids[rows, :n])
        unary[rows, :n] = torch.einsum("lth,lmh->ltm", s.float(), v_all[image_of[rows]])
    return unary, ids != 0


def phrase_regions(unary: torch.Tensor, spans: Sequence[tuple[int, int]], method: str = "sum",
                   assignment: torch.Tensor | None = None, prior: torch.Tensor | None = None) -> list[int]:
    """The region of each phrase [start, end) of one sentence; unary (N, M).
    ``method="mrf"`` needs the sentence's MRF ``assignment`` (N,); ``prior`` (M,) is added to
    every phrase's totals."""
    if method not in LOCALISATION_METHODS:
        raise ValueError(f"method must be one of {', '.join(LOCALISATION_METHODS)}, not {method!r}")
    out = []
    for start, end in spans:
        totals = unary[start:end].sum(dim=0)                  # Σ_t over the phrase of v_iᵀ s_t
        if prior is not None:
            totals = totals + prior
        if method == "mrf":
            allowed = torch.full_like(totals, float("-inf"))
            chosen = assignment[start:end]
            allowed[chosen] = totals[chosen]
            totals = allowed
        out.append(int(totals.argmax()))
    return out


@dataclass
class Snippet:
    """One entry of the region-snippet corpus: words [start, end) of a sentence on a region."""
    image: str
    sentence: int           # index of the sentence among its image's sentences
    region: int
    box: list[float]        # normalised (x0, y0, x1, y1)
    start: int
    end: int
    text: str
    score: float            # Σ_t v_iᵀ s_t over the snippet's words


def align_sentences(unary: torch.Tensor, mask: torch.Tensor, beta: float, batch_size: int = 1024
                    ) -> torch.Tensor:
    """MRF assignments (L, T) of many sentences, in batches (eq. 10-12)."""
    out = torch.full(mask.shape, -1, dtype=torch.long)
    for start in range(0, len(unary), batch_size):
        rows = slice(start, start + batch_size)
        out[rows], _ = chain_alignment(unary[rows], beta, mask[rows])
    return out


def snippets_of(image: str, sentence: int, tokens: Sequence[str], unary: torch.Tensor,
                assignment: torch.Tensor, boxes: np.ndarray) -> list[Snippet]:
    """The snippets of one aligned sentence: runs of consecutive words on one region."""
    return [Snippet(image, sentence, seg.region, [round(float(x), 5) for x in boxes[seg.region]],
                    seg.start, seg.end, " ".join(tokens[seg.start:seg.end]), round(seg.score, 4))
            for seg in segments(assignment[:len(tokens)], unary[:len(tokens)])]


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
    unary: torch.Tensor          # (L, T, M) v_iᵀ s_t
    mask: torch.Tensor           # (L, T)


def score_entities(model: AlignmentModel, vocab: Vocabulary, entities: dict, regions: torch.Tensor,
                   row_of: dict[str, int]) -> ScoredSentences:
    """Word-region scores of every sentence of ``entities`` (name -> EntityImage); ``regions``
    (N, M, D) are the feature store's, rows found by ``row_of``."""
    names = sorted(entities)
    tokens, image_of, keys = [], [], []
    for k, name in enumerate(names):
        for j, sentence in enumerate(entities[name].sentences):
            tokens.append(sentence.tokens)
            image_of.append(k)
            keys.append((name, j))
    rows = torch.tensor([row_of[n] for n in names])
    unary, mask = word_region_scores(model, vocab, regions[rows], tokens, image_of)
    return ScoredSentences(entities, keys, unary, mask)


def objectness(box_scores: np.ndarray, whole_image_prior: float) -> torch.Tensor:
    """Per-region prior (M,): the detector's confidence in each box; the whole image (region
    0) gets ``whole_image_prior``, grid fillers their stored 0."""
    prior = torch.tensor(np.asarray(box_scores, dtype=np.float32))
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


# -- the region-snippet corpus ---------------------------------------------------------------
CORPUS_FORMAT = "scenetalk-region-snippets"
#: Snippets made only of these words say nothing about a region ("in the", "is a"): the corpus
#: keeps them (it records the alignment as it is) but the region generator does not train on them.
FUNCTION_WORDS = frozenset(
    "a an the and or but of in on at to into onto from with without by for over under near through "
    "while as is are was were be being been it its his her their there this that these those "
    "he she they them who which what where down up out off one another some".split())


#: Counts name no region on their own ("two" in "two dogs" gets split off by the MRF).
NUMBER_WORDS = frozenset("two three four five six several many few".split())


def informative(tokens: Sequence[str]) -> bool:
    return any(t not in FUNCTION_WORDS for t in tokens)


def phrase_like(tokens: Sequence[str]) -> bool:
    """A snippet worth learning to say about a region: it has a word that is neither a
    function word nor a count, and it does not stop on a function word ("to catch a",
    "a group of" are cut-off pieces of a longer phrase)."""
    return (bool(tokens) and tokens[-1] not in FUNCTION_WORDS
            and any(t not in FUNCTION_WORDS and t not in NUMBER_WORDS for t in tokens))


def region_corpus(model: AlignmentModel, vocab: Vocabulary, dataset, store, splits: Sequence[str], beta: float,
                  max_words: int = 40, progress: bool = True) -> list[dict]:
    """Align every sentence of the given splits to its image's regions with the MRF at ``beta``
    and return the snippets (dicts of ``Snippet``'s fields plus the split)."""
    from dataclasses import asdict

    from scenetalk.progress import progress_bar

    regions, boxes, row_of = store.model_input("regions"), store.boxes, store.row_index
    out: list[dict] = []
    for split in splits:
        images = dataset.split(split)
        bar = progress_bar(total=len(images), unit="image", desc=f"aligning {split}", disable=not progress)
        for start in range(0, len(images), 200):
            chunk = images[start:start + 200]
            tokens, image_of, keys = [], [], []
            for k, im in enumerate(chunk):
                for j, s in enumerate(im.sentences):
                    tokens.append(s.tokens[:max_words])
                    image_of.append(k)
                    keys.append((im.relpath, j))
            rows = torch.tensor([row_of[im.relpath] for im in chunk])
            unary, mask = word_region_scores(model, vocab, regions[rows], tokens, image_of)
            assignment = align_sentences(unary, mask, beta)
            for l, (name, j) in enumerate(keys):
                for snip in snippets_of(name, j, tokens[l], unary[l], assignment[l], boxes[row_of[name]]):
                    out.append({"split": split, **asdict(snip)})
            bar.update(len(chunk))
        bar.close()
    return out


def save_corpus(path, snippets: list[dict], meta: dict) -> None:
    """One JSON file: ``meta`` (β, checkpoint, extractor id, feature store) and the snippets."""
    import json

    from scenetalk.io import atomic_write_text

    atomic_write_text(path, json.dumps({"format": CORPUS_FORMAT, **meta, "snippets": snippets}, ensure_ascii=False))


def load_corpus(path) -> dict:
    import json
    from pathlib import Path

    from scenetalk.errors import ScenetalkError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenetalkError(f"{path}: no such snippet corpus; make one with `scenetalk snippets`") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScenetalkError(f"{path}: not a snippet corpus ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != CORPUS_FORMAT:
        raise ScenetalkError(f"{path}: not a snippet corpus (format is not {CORPUS_FORMAT!r})")
    return data


def region_key(image: str, region: int) -> str:
    """The name of one region of one photo, as a row of the flattened region features."""
    return f"{image}#{region}"


def region_dataset(corpus: dict, name: str = "region-snippets", min_score: float = 0.0):
    """The corpus as a ``CaptionDataset`` whose "images" are regions (``region_key``) and whose
    sentences are the snippets aligned to them, for training a generator on regions (§3.2
    trained on regions). Kept: ``phrase_like`` snippets with a summed score above
    ``min_score`` (a snippet whose words score <= 0 on every region was put somewhere only
    because each word must go somewhere)."""
    from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence

    items: dict[str, ImageRecord] = {}
    for s in corpus["snippets"]:
        tokens = s["text"].split()
        if not phrase_like(tokens) or s["score"] <= min_score:
            continue
        key = region_key(s["image"], s["region"])
        if key not in items:
            items[key] = ImageRecord(key, s["split"], len(items))
        items[key].sentences.append(Sentence(s["text"], tokens))
    return CaptionDataset(name, list(items.values()))


def flat_region_rows(store) -> tuple[torch.Tensor, dict[str, int]]:
    """Every region of every photo as one row: features (N·M, D) and ``region_key`` -> row."""
    regions = store.model_input("regions")
    n, m = regions.shape[:2]
    rows = {region_key(name, i): r * m + i for name, r in store.row_index.items() for i in range(m)}
    return regions.reshape(n * m, -1), rows


def snippet_length_summary(snippets: Sequence[dict]) -> dict:
    from collections import Counter

    lengths = Counter(s["end"] - s["start"] for s in snippets)
    n = sum(lengths.values())
    return {"snippets": n, "mean_words": round(sum(k * v for k, v in lengths.items()) / max(n, 1), 2),
            "informative": sum(informative(s["text"].split()) for s in snippets),
            "lengths": {str(k): lengths[k] for k in sorted(lengths) if k <= 10},
            "longer_than_10": sum(v for k, v in lengths.items() if k > 10)}
