"""The region-snippet corpus (Karpathy & Fei-Fei §3.1.4, §3.2 "trained on regions").

Every training sentence is aligned to its image's 20 regions with the chain MRF
(``word_regions.align_sentences``); each run of consecutive words on one region is a snippet
(``Snippet``). The corpus is one JSON file (``save_corpus``/``load_corpus``); as a
``CaptionDataset`` whose "images" are regions (``region_dataset``) it trains the region
generator, which learns only from ``phrase_like`` snippets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scenetalk.checks import finite_number
from scenetalk.data.text import Vocabulary
from scenetalk.grounding.word_regions import align_sentences, word_region_scores
from scenetalk.models.mrf import segments


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


def snippets_of(image: str, sentence: int, tokens: Sequence[str], unary: np.ndarray,
                assignment: np.ndarray, boxes: np.ndarray) -> list[Snippet]:
    """The snippets of one aligned sentence: runs of consecutive words on one region;
    unary (T, M), assignment (T,) (arrays, or anything ``models.mrf.segments`` reads)."""
    return [Snippet(image, sentence, seg.region, [round(float(x), 5) for x in boxes[seg.region]],
                    seg.start, seg.end, " ".join(tokens[seg.start:seg.end]), round(seg.score, 4))
            for seg in segments(assignment[:len(tokens)], unary[:len(tokens)])]


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


def region_corpus(model, vocab: Vocabulary, dataset, store, splits: Sequence[str], beta: float,
                  max_words: int = 40, progress: bool = True) -> list[dict]:
    """Align every sentence of the given splits to its image's regions with the MRF at ``beta``
    and return the snippets (dicts of ``Snippet``'s fields plus the split). ``model`` is an
    alignment engine or a PyTorch ``AlignmentModel`` (``word_region_scores``)."""
    from dataclasses import asdict

    from scenetalk.progress import progress_bar

    regions, boxes, row_of = store.regions, store.boxes, store.row_index   # memmaps: rows read as needed
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
            rows = [row_of[im.relpath] for im in chunk]
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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ScenetalkError(f"{path}: not a snippet corpus ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict) or data.get("format") != CORPUS_FORMAT:
        raise ScenetalkError(f"{path}: not a snippet corpus (format is not {CORPUS_FORMAT!r})")
    damaged = "damaged snippet corpus; rebuild it with `scenetalk snippets`"
    if not isinstance(data.get("extractor_id"), str):
        raise ScenetalkError(f"{path}: {damaged} ('extractor_id' is missing or not a string)")
    if not isinstance(data.get("snippets"), list):
        raise ScenetalkError(f"{path}: {damaged} ('snippets' is missing or not a list)")
    for i, snippet in enumerate(data["snippets"]):
        problem = _snippet_problem(snippet)
        if problem:
            raise ScenetalkError(f"{path}: snippet {i}: {problem}; {damaged}")
    return data


#: The fields of a snippet of the corpus and their types (``Snippet``'s fields plus the split).
SNIPPET_FIELDS = {"split": str, "image": str, "sentence": int, "region": int, "box": list, "start": int,
                  "end": int, "text": str, "score": (int, float)}


def _snippet_problem(snippet) -> str | None:
    """What is wrong with one snippet of a corpus read from JSON, or None."""
    import math

    if not isinstance(snippet, dict):
        return "not an object"
    for key, kind in SNIPPET_FIELDS.items():
        if key not in snippet:
            return f"no {key!r}"
        if not isinstance(snippet[key], kind) or isinstance(snippet[key], bool):
            return f"{key!r} has the wrong type"
    if not math.isfinite(snippet["score"]):
        return "'score' is not finite"
    if snippet["region"] < 0 or not 0 <= snippet["start"] < snippet["end"]:
        return "'region', 'start' or 'end' out of range"
    if len(snippet["box"]) != 4 or not all(type(x) in (int, float) and math.isfinite(x) for x in snippet["box"]):
        return "'box' is not 4 numbers"
    if not snippet["text"].split():
        return "'text' has no words"
    return None


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


def flat_region_rows(store):
    """Every region of every photo as one row: features (N·M, D), in the form
    ``store.model_input`` gives (the region generator's trainer reads them), and
    ``region_key`` -> row."""
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


@dataclass
class CorpusSummary:
    """What ``build_corpus`` wrote: the corpus file and its snippets' counts."""
    out: str
    beta: float
    sentences: int              # sentences aligned
    snippets: int
    informative: int            # snippets with a content word
    mean_words: float
    lengths: dict[str, int]     # words per snippet -> snippets, up to 10
    longer_than_10: int


def build_corpus(checkpoint, features, out, dataset: str = "flickr8k", root=None,
                 splits: Sequence[str] = ("train", "val"), beta: float | None = None,
                 progress: bool = True) -> CorpusSummary:
    """Align every sentence of ``splits`` to its image's regions with the alignment model
    ``checkpoint`` and the MRF at ``beta`` (default ``DEFAULT_BETA``, eq. 10), and save the
    region-snippet corpus to ``out`` (``save_corpus``). The corpus is training data: the test
    split is refused."""
    from scenetalk.checkpoint import checkpoint_id, load_alignment
    from scenetalk.data.registry import load_dataset
    from scenetalk.errors import ScenetalkError
    from scenetalk.features.store import FeatureStore
    from scenetalk.grounding.word_regions import DEFAULT_BETA

    beta = DEFAULT_BETA if beta is None else beta
    beta = finite_number("beta (--beta)", beta, low=0)
    splits = list(splits)
    if "test" in splits:
        raise ScenetalkError("--splits: the corpus is training data; leave the test split out")
    data = load_dataset(dataset, root=root)
    store = FeatureStore.open(features)
    if not store.has_regions:
        raise ScenetalkError(f"{features}: has no region features; run `scenetalk features --regions`")
    model, vocab, _ = load_alignment(checkpoint, expect_extractor_id=store.extractor_id)
    snippets = region_corpus(model, vocab, data, store, splits, beta, progress=progress)
    summary = snippet_length_summary(snippets)
    meta = {"beta": beta, "checkpoint": str(checkpoint), "checkpoint_id": checkpoint_id(checkpoint),
            "extractor_id": store.extractor_id, "features": str(features), "dataset": dataset,
            "splits": splits, "num_regions": int(store.boxes.shape[1]), "summary": summary}
    save_corpus(out, snippets, meta)
    return CorpusSummary(out=str(out), beta=beta, sentences=len({(s["image"], s["sentence"]) for s in snippets}),
                         **summary)
