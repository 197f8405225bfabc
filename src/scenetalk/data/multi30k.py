"""German descriptions of the Flickr8K photos, from Multi30K task 2 (Elliott et al. 2016).

Multi30K gives five independent German descriptions for each Flickr30K photo:

* ``image_splits/{train,val,test_2016}_images.txt``: Flickr30K image names, one per line
  (``1000092795.jpg``);
* ``raw/{train,val,test_2016}.{1..5}.de.gz`` (or uncompressed ``.de``): line *i* of
  ``X.k.de`` is description *k* of image *i* of ``X_images.txt``.

Flickr30K contains most Flickr8K photos under their Flickr id: the Flickr8K name
``<flickr id>_<hex>.jpg`` is the Flickr30K name ``<flickr id>.jpg``. This loader returns
the *Flickr8K* images (names and order from ``Flickr8k.token.txt``) that have German
descriptions, split by the **Flickr8K** split lists — never by Multi30K's, whose test
images are mostly Flickr8K training images. Flickr8K images without German descriptions are
left out; their number (per Flickr8K split) is reported in ``dataset.problems``. Image ids
are the ones the Flickr8K text loader gives the same images.

A description file whose line count differs from its image list is a ``DataError`` naming
both files.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from scenetalk.data.flickr8k import read_flickr8k_text
from scenetalk.data.readers import read_lines
from scenetalk.data.schema import SPLITS, CaptionDataset, ImageRecord, Sentence
from scenetalk.data.text import tokenize
from scenetalk.errors import DataError

MULTI30K_SPLITS = ("train", "val", "test_2016")
DESCRIPTIONS_PER_IMAGE = 5
_FLICKR8K_NAME = re.compile(r"^(\d+)_[0-9a-fA-F]+\.jpg$")


def description_file(folder: Path, part: str, k: int, language: str) -> Path:
    gz = folder / "raw" / f"{part}.{k}.{language}.gz"
    plain = folder / "raw" / f"{part}.{k}.{language}"
    return plain if not gz.exists() and plain.exists() else gz


def read_multi30k(folder: str | os.PathLike, language: str = "de",
                  parts: tuple[str, ...] = MULTI30K_SPLITS) -> tuple[dict[str, list[str]], list[str]]:
    """``({flickr id: [description, ...]}, files read)`` for all of Multi30K's images."""
    folder = Path(folder)
    descriptions: dict[str, list[str]] = {}
    seen_in: dict[str, tuple[Path, int]] = {}
    sources = []
    for part in parts:
        list_path = folder / "image_splits" / f"{part}_images.txt"
        names = read_lines(list_path)
        sources.append(str(list_path))
        ids = []
        for lineno, name in names:
            flickr_id = Path(name.strip()).stem
            if flickr_id in seen_in:
                other, other_line = seen_in[flickr_id]
                raise DataError(list_path, f"image {name!r} is listed twice (also in {other} "
                                f"line {other_line})", record=f"line {lineno}")
            seen_in[flickr_id] = (list_path, lineno)
            ids.append(flickr_id)
        for k in range(1, DESCRIPTIONS_PER_IMAGE + 1):
            path = description_file(folder, part, k, language)
            lines = read_lines(path, skip_blank=False)
            sources.append(str(path))
            if len(lines) != len(ids):
                raise DataError(path, f"has {len(lines)} lines but {list_path} lists {len(ids)} "
                                "images (line i describes image i)")
            for flickr_id, (_, text) in zip(ids, lines):
                descriptions.setdefault(flickr_id, []).append(text.strip())
    return descriptions, sources


def load_multi30k(folder: str | os.PathLike, flickr8k_token_file: str | os.PathLike,
                  flickr8k_split_files: dict[str, str | os.PathLike] | None = None,
                  language: str = "de", name: str | None = None) -> CaptionDataset:
    """Map Multi30K's descriptions onto the Flickr8K images; split by Flickr8K's lists."""
    flickr8k = read_flickr8k_text(flickr8k_token_file, flickr8k_split_files)
    descriptions, sources = read_multi30k(folder, language)
    images = []
    absent: Counter[str] = Counter()
    unmappable = []
    sentence_id = 0
    for image_id, file_name in enumerate(flickr8k.captions):
        split = flickr8k.splits[file_name]
        match = _FLICKR8K_NAME.match(file_name)
        if match is None:
            unmappable.append(file_name)
        texts = descriptions.get(match.group(1)) if match else None
        if not texts:
            absent[split] += 1
            continue
        sentences = []
        for text in texts:
            sentences.append(Sentence(text, tokenize(text, language), language, sentence_id))
            sentence_id += 1
        images.append(ImageRecord(file_name, split, image_id, sentences))
    problems = list(flickr8k.problems)
    if absent:
        per_split = ", ".join(f"{s} {absent[s]}" for s in SPLITS if absent[s])
        problems.append(f"{sum(absent.values())} of {len(flickr8k.captions)} Flickr8K images have "
                        f"no {language} descriptions in Multi30K and are left out ({per_split})")
    if unmappable:
        problems.append(f"{len(unmappable)} Flickr8K image name(s) are not '<flickr id>_<hex>.jpg' "
                        f"and cannot be matched: {', '.join(unmappable[:5])}")
    return CaptionDataset(name=name or f"multi30k-{language}", images=images,
                          sources=flickr8k.sources + sources, problems=problems)
