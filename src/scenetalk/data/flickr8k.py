"""Flickr8K's original text files (Hodosh, Young & Hockenmaier 2013).

* ``Flickr8k.token.txt``: one caption per line, ``<image name>#<k><TAB><caption>``, e.g.
  ``1000268201_693b08cb0e.jpg#0<TAB>A child in a pink dress is climbing up ...``;
* ``Flickr_8k.trainImages.txt``, ``Flickr_8k.devImages.txt``, ``Flickr_8k.testImages.txt``:
  one image name per line (6,000 / 1,000 / 1,000). ``dev`` becomes the split ``val``.

Images with captions that no split list names get the split ``unassigned`` (the official
release captions 8,091 photos, of which 8,000 are in the split lists).

Known defect of the official release (``KNOWN_ORPHANS``): the photo
``2258277193_586949ec62.jpg`` is not among the 8,091 distributed photos, yet the token file
has captions for it — #1..#4 under its name and #0 under the mistyped id
``2258277193_586949ec62.jpg.1``. Neither id is in a split list. Both are skipped and
reported in ``dataset.problems`` (unless a split list names them), so the dataset has the
8,091 photos with 5 captions each.

A line without a tab or without ``#k`` is a ``DataError`` naming the file and line, as is
a split list naming an image that has no captions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from scenetalk.data.readers import read_lines, read_split_lists
from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence
from scenetalk.data.text import tokenize
from scenetalk.errors import DataError

TOKEN_FILE = "Flickr8k.token.txt"
SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt",
               "test": "Flickr_8k.testImages.txt"}

KNOWN_ORPHANS = {
    "2258277193_586949ec62.jpg.1": "mistyped id (caption #0 of 2258277193_586949ec62.jpg), "
                                   "in no split list",
    "2258277193_586949ec62.jpg": "photo not in the Flickr8K release and in no split list",
}


@dataclass
class CaptionLine:
    """One line of a caption file, not yet tokenized: where it is, its number ``k`` of
    ``<image>#<k>``, and its text."""
    line: int
    number: str
    text: str


@dataclass
class Flickr8kText:
    """The token file and split lists, parsed but not tokenized (Multi30K reuses this)."""

    captions: dict[str, list[CaptionLine]]  # image name -> its captions, in file order
    splits: dict[str, str]  # image name -> split, for every image in ``captions``
    sources: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def default_split_files(folder: str | os.PathLike) -> dict[str, Path]:
    return {split: Path(folder) / name for split, name in SPLIT_FILES.items()}


def parse_token_file(path: str | os.PathLike) -> dict[str, list[CaptionLine]]:
    """``{image name: [CaptionLine, ...]}`` in the order the images first appear."""
    path = Path(path)
    captions: dict[str, list[CaptionLine]] = {}
    for lineno, line in read_lines(path):
        key, tab, text = line.partition("\t")
        if not tab:
            raise DataError(path, f"expected '<image>#<k><TAB><caption>', found no tab in {line[:60]!r}",
                            record=f"line {lineno}")
        name, hash_sign, number = key.strip().rpartition("#")
        if not hash_sign or not name or not number.isdigit():
            raise DataError(path, f"caption id {key!r} does not end in '#<number>'", record=f"line {lineno}")
        captions.setdefault(name, []).append(CaptionLine(lineno, number, text.strip()))
    return captions


def read_flickr8k_text(token_file: str | os.PathLike,
                       split_files: dict[str, str | os.PathLike] | None = None) -> Flickr8kText:
    """Parse the token file and split lists; drop the known orphans (see module docstring)."""
    token_file = Path(token_file)
    if split_files is None:
        split_files = default_split_files(token_file.parent)
    captions = parse_token_file(token_file)
    splits = read_split_lists(split_files, lambda entry: entry if entry in captions else None, token_file)
    problems = []
    for name, reason in KNOWN_ORPHANS.items():
        if name in captions and name not in splits:
            lines = [c.line for c in captions.pop(name)]
            where = f"line {lines[0]}" if len(lines) == 1 else f"lines {lines[0]}-{lines[-1]}"
            problems.append(f"{token_file.name} {where}: skipped {len(lines)} caption(s) of "
                            f"{name!r}: {reason}")
    for name, caps in captions.items():
        splits.setdefault(name, "unassigned")
        problems.extend(repeated_numbers(token_file, name, caps))
    sources = [str(token_file)] + [str(p) for p in split_files.values()]
    return Flickr8kText(captions=captions, splits=splits, sources=sources, problems=problems)


def repeated_numbers(path: Path, name: str, caps: list[CaptionLine]) -> list[str]:
    """Problems for caption numbers that occur twice for one image (both captions are kept)."""
    first: dict[str, int] = {}
    problems = []
    for cap in caps:
        if cap.number in first:
            problems.append(f"{path.name} line {cap.line}: caption #{cap.number} of {name!r} "
                            f"repeats line {first[cap.number]} (both kept)")
        first.setdefault(cap.number, cap.line)
    return problems


def load_flickr8k_text(token_file: str | os.PathLike,
                       split_files: dict[str, str | os.PathLike] | None = None,
                       language: str = "en", name: str = "flickr8k-text") -> CaptionDataset:
    """Load ``Flickr8k.token.txt`` with the split lists (default: the ones beside it)."""
    parsed = read_flickr8k_text(token_file, split_files)
    images = []
    sentence_id = 0
    for image_id, (file_name, caps) in enumerate(parsed.captions.items()):
        sentences = []
        for cap in caps:
            sentences.append(Sentence(cap.text, tokenize(cap.text, language), language, sentence_id))
            sentence_id += 1
        images.append(ImageRecord(file_name, parsed.splits[file_name], image_id, sentences))
    return CaptionDataset(name=name, images=images, sources=parsed.sources, problems=parsed.problems)
