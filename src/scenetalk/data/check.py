"""``scenetalk data check``: what a dataset contains and what is wrong with it.

``check_dataset`` counts images and sentences per split, sentences per image, the size of
the vocabulary built from the *training* split (``Vocabulary.build`` with ``min_count``),
and lists every problem: the loader's ``problems``, image files missing from the image
folder (when that folder exists), empty sentences, duplicate sentence ids, duplicate images
and images without sentences.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field

from scenetalk.data.readers import progress
from scenetalk.data.schema import SPLITS, CaptionDataset
from scenetalk.data.text import Vocabulary

#: problem kinds, in the order they are printed
KINDS = ("loader", "missing image", "no sentences", "empty sentence", "duplicate sentence id",
         "duplicate image")


@dataclass
class CheckReport:
    name: str
    sources: list[str]
    image_dir: str | None
    image_dir_exists: bool
    images_looked_for: int
    #: split -> {"images": n, "sentences": m}, in ``SPLITS`` order, only splits present
    splits: dict[str, dict[str, int]]
    sentences_per_image: dict
    vocabulary: dict
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def total_images(self) -> int:
        return sum(s["images"] for s in self.splits.values())

    @property
    def total_sentences(self) -> int:
        return sum(s["sentences"] for s in self.splits.values())

    def to_dict(self) -> dict:
        data = asdict(self)
        data["total"] = {"images": self.total_images, "sentences": self.total_sentences}
        data["problem_count"] = len(self.problems)
        return data


def check_dataset(dataset: CaptionDataset, min_count: int = 5) -> CheckReport:
    problems = [{"kind": "loader", "message": p} for p in dataset.problems]

    splits = {}
    for split in SPLITS:
        images = dataset.split(split)
        if images:
            splits[split] = {"images": len(images), "sentences": sum(len(im.sentences) for im in images)}

    counts = [len(im.sentences) for im in dataset.images]
    histogram = Counter(counts)
    per_image = {"min": min(counts, default=0), "max": max(counts, default=0),
                 "mean": sum(counts) / len(counts) if counts else 0.0,
                 "histogram": {n: histogram[n] for n in sorted(histogram)}}

    image_dir_exists = bool(dataset.image_dir) and os.path.isdir(dataset.image_dir)
    looked_for = 0
    if image_dir_exists:
        for im in progress(dataset.images, len(dataset.images), "checking image files"):
            looked_for += 1
            if not os.path.isfile(os.path.join(dataset.image_dir, im.relpath)):
                problems.append({"kind": "missing image", "message":
                                 f"{im.relpath} ({im.split}) not found in {dataset.image_dir}"})

    seen_files: Counter[str] = Counter(im.relpath for im in dataset.images)
    for relpath, n in seen_files.items():
        if n > 1:
            problems.append({"kind": "duplicate image", "message": f"{relpath} appears {n} times"})
    sentence_ids: Counter[int] = Counter()
    for im in dataset.images:
        if not im.sentences:
            problems.append({"kind": "no sentences", "message": f"{im.relpath} ({im.split}) has no sentences"})
        for s in im.sentences:
            if s.sentence_id >= 0:
                sentence_ids[s.sentence_id] += 1
            if not s.raw.strip():
                problems.append({"kind": "empty sentence", "message":
                                 f"{im.relpath}: sentence {s.sentence_id} is empty"})
            elif not s.tokens:
                problems.append({"kind": "empty sentence", "message":
                                 f"{im.relpath}: sentence {s.sentence_id} {s.raw!r} has no words"})
    for sid, n in sorted(sentence_ids.items()):
        if n > 1:
            problems.append({"kind": "duplicate sentence id", "message": f"sentence id {sid} is used {n} times"})

    train = dataset.sentences("train")
    languages = Counter(s.language for im in dataset.images for s in im.sentences)
    language = languages.most_common(1)[0][0] if languages else "en"
    words = (Vocabulary.build((s.tokens for s in train), min_count=min_count, language=language).num_words
             if train else None)
    vocabulary = {"split": "train", "min_count": min_count, "language": language,
                  "training_sentences": len(train), "words": words}

    order = {kind: i for i, kind in enumerate(KINDS)}
    problems.sort(key=lambda p: order[p["kind"]])  # stable: keeps each kind's own order
    return CheckReport(name=dataset.name, sources=list(dataset.sources), image_dir=dataset.image_dir,
                       image_dir_exists=image_dir_exists, images_looked_for=looked_for, splits=splits,
                       sentences_per_image=per_image, vocabulary=vocabulary, problems=problems)


def format_report(report: CheckReport, max_per_kind: int = 20) -> str:
    """The human-readable report; at most ``max_per_kind`` problems of each kind are shown."""
    lines = [f"dataset {report.name}: {report.total_images} images, {report.total_sentences} sentences",
             "files read:"]
    lines += [f"  {s}" for s in report.sources]
    if not report.image_dir:
        lines.append("images: folder unknown (pass --images DIR to check the image files)")
    elif not report.image_dir_exists:
        lines.append(f"images: {report.image_dir} does not exist; image files not checked")
    else:
        missing = sum(p["kind"] == "missing image" for p in report.problems)
        lines.append(f"images: {report.image_dir} ({report.images_looked_for - missing} of "
                     f"{report.images_looked_for} files present)")

    lines += ["", f"{'split':<12}{'images':>8}{'sentences':>11}"]
    for split, c in report.splits.items():
        lines.append(f"{split:<12}{c['images']:>8}{c['sentences']:>11}")
    lines.append(f"{'total':<12}{report.total_images:>8}{report.total_sentences:>11}")

    per = report.sentences_per_image
    lines += ["", f"sentences per image: min {per['min']}, mean {per['mean']:.2f}, max {per['max']}"]
    biggest = max(per["histogram"].values(), default=1)
    for n, images in per["histogram"].items():
        bar = "#" * max(1, round(40 * images / biggest))
        lines.append(f"  {n:>3} sentences: {images:>7} images  {bar}")

    voc = report.vocabulary
    lines.append("")
    if voc["words"] is None:
        lines.append("vocabulary: no train split, nothing to build it from")
    else:
        lines.append(f"vocabulary: {voc['words']} words seen at least {voc['min_count']} times in the "
                     f"{voc['training_sentences']} train sentences (+{len(Vocabulary.SPECIALS)} special tokens)")

    lines.append("")
    if not report.problems:
        lines.append("problems: none")
    else:
        lines.append(f"problems: {len(report.problems)}")
        by_kind: dict[str, list[str]] = {}
        for p in report.problems:
            by_kind.setdefault(p["kind"], []).append(p["message"])
        for kind, messages in by_kind.items():
            lines.append(f"  {kind} ({len(messages)}):")
            lines += [f"    {m}" for m in messages[:max_per_kind]]
            if len(messages) > max_per_kind:
                lines.append(f"    ... and {len(messages) - max_per_kind} more (--json lists all)")
    return "\n".join(lines)
