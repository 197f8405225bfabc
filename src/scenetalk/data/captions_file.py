"""A user's own photos with sentences, for ``scenetalk learn-word``: one file, two formats.

* Lines of ``photo name<TAB>sentence`` (several lines per photo allowed). Flickr8K's token
  file is one of these: its names carry a sentence number (``x.jpg#0``), which is dropped.
  Blank lines and lines starting with ``#`` are skipped.
* A Karpathy-format JSON file (``*.json``): every image in it, whatever its split.

Either way every photo lands in split ``train`` of the returned ``CaptionDataset``, in the
order of first mention.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from scenetalk.data.readers import read_lines
from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence
from scenetalk.data.text import tokenize
from scenetalk.errors import DataError

_SENTENCE_NUMBER = re.compile(r"#\d+$")


def read_captions(path: str | os.PathLike, language: str = "en") -> CaptionDataset:
    """The photos and sentences of a captions file (see the module's docstring); every
    problem is a ``DataError`` naming the file and line."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        from scenetalk.data.karpathy import load_karpathy

        dataset = load_karpathy(path, language=language)
        images = [ImageRecord(im.file_name, "train", k, im.sentences, im.subdir) for k, im in enumerate(dataset.images)]
    else:
        images = _read_lines(path, language)
    if not any(im.sentences for im in images):
        raise DataError(path, "holds no sentences; expected lines of 'photo name<TAB>sentence' or a Karpathy JSON")
    return CaptionDataset(path.stem, images, sources=[str(path)])


def _read_lines(path: Path, language: str) -> list[ImageRecord]:
    by_name: dict[str, ImageRecord] = {}
    for number, line in read_lines(path):
        if line.lstrip().startswith("#"):
            continue
        if "\t" not in line:
            raise DataError(path, "expected 'photo name<TAB>sentence' (no tab on this line)", record=f"line {number}")
        name, sentence = line.split("\t", 1)
        name = _SENTENCE_NUMBER.sub("", name.strip())
        if not name:
            raise DataError(path, "the photo name (before the tab) is empty", record=f"line {number}")
        tokens = tokenize(sentence, language)
        if not tokens:
            raise DataError(path, f"the sentence for {name} has no words", record=f"line {number}")
        image = by_name.setdefault(name, ImageRecord(name, "train", len(by_name)))
        image.sentences.append(Sentence(sentence.strip(), tokens, language, number))
    return list(by_name.values())
