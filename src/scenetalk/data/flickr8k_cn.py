"""Flickr8K-CN (Li, Lan, Dong & Liu, ICMR 2016): Chinese sentences for the Flickr8K photos.

* ``flickr8kzhc.caption.txt``: sentences written by native speakers, one per line,
  ``<image name>#zhc#<k><SPACE><sentence>``, e.g. ``667626_18933d713e.jpg#zhc#0 一个...。``
  (5 per image, 8,091 images);
* ``flickr8k{train,val,test}.txt``: image ids *without* ``.jpg`` of the Flickr8K split
  (6,000 / 1,000 / 1,000);
* ``flickr8kzhmtest.captions.txt``: human translations of the English captions of the
  1,000 test images, ``<image name>#zhm#<k> <sentence>`` (``load_flickr8k_cn_trans``).

Sentences are not segmented: tokens come from ``tokenize(text, "zh", zh_mode)`` with
``zh_mode`` ``"jieba"`` (words, the default) or ``"char"`` (characters).

In the real files 91 images have sentences but are in no split list (the same 91 that
Flickr8K's own lists leave out); like the Flickr8K loader, they get the split
``unassigned`` rather than being dropped. A malformed line, or a split list naming an image
with no sentences, is a ``DataError`` naming the file and line.
"""

from __future__ import annotations

import os
from pathlib import Path

from scenetalk.data.flickr8k import CaptionLine, repeated_numbers
from scenetalk.data.readers import read_lines, read_split_lists
from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence
from scenetalk.data.text import tokenize
from scenetalk.errors import DataError

CAPTION_FILE = "flickr8kzhc.caption.txt"
TRANSLATION_FILE = "flickr8kzhmtest.captions.txt"
SPLIT_FILES = {"train": "flickr8ktrain.txt", "val": "flickr8kval.txt", "test": "flickr8ktest.txt"}


def default_split_files(folder: str | os.PathLike) -> dict[str, Path]:
    return {split: Path(folder) / name for split, name in SPLIT_FILES.items()}


def parse_caption_file(path: str | os.PathLike, tag: str) -> dict[str, list[CaptionLine]]:
    """``{image name: [CaptionLine, ...]}`` from lines ``<name>#<tag>#<k> <sentence>``."""
    path = Path(path)
    captions: dict[str, list[CaptionLine]] = {}
    for lineno, line in read_lines(path):
        parts = line.split(maxsplit=1)
        key = parts[0]
        fields = key.split("#")
        if len(parts) < 2 or len(fields) != 3 or not fields[0] or fields[1] != tag \
                or not fields[2].isdigit():
            raise DataError(path, f"expected '<image>#{tag}#<k> <sentence>', found {line[:60]!r}",
                            record=f"line {lineno}")
        captions.setdefault(fields[0], []).append(CaptionLine(lineno, fields[2], parts[1].strip()))
    return captions


def _image_name(entry: str) -> str:
    return entry if entry.lower().endswith(".jpg") else entry + ".jpg"


def _build(name: str, captions: dict[str, list[CaptionLine]], splits: dict[str, str],
           zh_mode: str, sources: list[str], problems: list[str]) -> CaptionDataset:
    images = []
    sentence_id = 0
    for image_id, (file_name, caps) in enumerate(captions.items()):
        sentences = []
        for cap in caps:
            sentences.append(Sentence(cap.text, tokenize(cap.text, "zh", zh_mode), "zh", sentence_id))
            sentence_id += 1
        images.append(ImageRecord(file_name, splits[file_name], image_id, sentences))
    return CaptionDataset(name=name, images=images, sources=sources, problems=problems, zh_mode=zh_mode)


def load_flickr8k_cn(caption_file: str | os.PathLike,
                     split_files: dict[str, str | os.PathLike] | None = None,
                     zh_mode: str = "jieba") -> CaptionDataset:
    """Load the native Chinese sentences with the split lists (default: the ones beside them)."""
    caption_file = Path(caption_file)
    if split_files is None:
        split_files = default_split_files(caption_file.parent)
    captions = parse_caption_file(caption_file, "zhc")
    splits = read_split_lists(
        split_files, lambda e: _image_name(e) if _image_name(e) in captions else None, caption_file)
    problems = []
    for file_name, caps in captions.items():
        splits.setdefault(file_name, "unassigned")
        problems.extend(repeated_numbers(caption_file, file_name, caps))
    sources = [str(caption_file)] + [str(p) for p in split_files.values()]
    return _build("flickr8k-cn", captions, splits, zh_mode, sources, problems)


def load_flickr8k_cn_trans(caption_file: str | os.PathLike,
                           test_list: str | os.PathLike | None = None,
                           zh_mode: str = "jieba") -> CaptionDataset:
    """Load the human translations of the test captions; every image is in the test split.

    With ``test_list`` (``flickr8ktest.txt``), images it does not name are reported in
    ``problems`` (they are kept, still as test images).
    """
    caption_file = Path(caption_file)
    captions = parse_caption_file(caption_file, "zhm")
    problems = []
    sources = [str(caption_file)]
    if test_list is not None:
        sources.append(str(test_list))
        listed = {_image_name(entry.strip()) for _, entry in read_lines(test_list)}
        outside = [n for n in captions if n not in listed]
        if outside:
            problems.append(f"{len(outside)} translated image(s) are not in {test_list}: "
                            f"{', '.join(outside[:5])}{' ...' if len(outside) > 5 else ''}")
    for file_name, caps in captions.items():
        problems.extend(repeated_numbers(caption_file, file_name, caps))
    return _build("flickr8k-cn-trans", captions, {n: "test" for n in captions}, zh_mode,
                  sources, problems)
