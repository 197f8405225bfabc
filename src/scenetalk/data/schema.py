"""The one in-memory form every dataset loader returns.

A dataset is a list of images; each image has a file name, a split and an id, and its
sentences (raw text, tokens, language). Loaders for each on-disk format live in their own
module and all build these classes.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

#: Split names a loader may assign. ``restval`` is COCO's extra training images in
#: Karpathy's split; ``unassigned`` marks images that a format's split lists leave out.
SPLITS = ("train", "val", "test", "restval", "unassigned")


@dataclass
class Sentence:
    raw: str
    tokens: list[str]
    language: str = "en"
    sentence_id: int = -1


@dataclass
class ImageRecord:
    file_name: str
    split: str
    image_id: int
    sentences: list[Sentence] = field(default_factory=list)
    #: sub-folder of the image under the images directory ("" for flat folders; COCO's
    #: ``filepath`` such as ``val2014``).
    subdir: str = ""

    @property
    def relpath(self) -> str:
        return os.path.join(self.subdir, self.file_name) if self.subdir else self.file_name


@dataclass
class CaptionDataset:
    name: str
    images: list[ImageRecord]
    #: where the image files are, if known (relpaths are relative to it)
    image_dir: str | None = None
    #: the files the loader read, for error messages and ``data check``
    sources: list[str] = field(default_factory=list)
    #: problems found but tolerated (``data check`` prints them)
    problems: list[str] = field(default_factory=list)
    #: how the Chinese sentences were cut into tokens (``text.ZH_MODES``); None for other languages
    zh_mode: str | None = None

    def split(self, name: str) -> list[ImageRecord]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return [im for im in self.images if im.split == name]

    def split_counts(self) -> dict[str, int]:
        counts = Counter(im.split for im in self.images)
        return {s: counts[s] for s in SPLITS if counts[s]}

    def sentences(self, split: str | None = None) -> list[Sentence]:
        images = self.images if split is None else self.split(split)
        return [s for im in images for s in im.sentences]

    def by_name(self) -> dict[str, ImageRecord]:
        return {im.file_name: im for im in self.images}

    def __len__(self) -> int:
        return len(self.images)
