"""Karpathy's split files: ``dataset_flickr8k.json``, ``dataset_flickr30k.json``, ``dataset_coco.json``.

The format (from NeuralTalk)::

    {"dataset": "flickr8k",
     "images": [{"filename": "2513260012_03d33305cf.jpg", "imgid": 0, "split": "train",
                 "sentids": [0, 1, 2, 3, 4],
                 "sentences": [{"raw": "A black dog ...", "tokens": ["a", ...],
                                "imgid": 0, "sentid": 0}, ...]}, ...]}

COCO's file adds ``filepath`` (``train2014`` or ``val2014``, the image's sub-folder, kept as
``ImageRecord.subdir``) and ``cocoid`` (the COCO image id, used as the image id instead of
the running ``imgid``). Splits are ``train``, ``val``, ``test`` and COCO's ``restval``.

The file's own ``tokens`` are ignored: tokens are always made from ``raw`` by
``scenetalk.data.text.tokenize``, so every dataset is preprocessed the same way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from scenetalk.data.readers import progress, read_json
from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence
from scenetalk.data.text import tokenize
from scenetalk.errors import DataError

KARPATHY_SPLITS = ("train", "val", "test", "restval")


def load_karpathy(path: str | os.PathLike, name: str | None = None, language: str = "en",
                  zh_mode: str = "jieba") -> CaptionDataset:
    """Load a Karpathy split JSON file. ``name`` defaults to its ``dataset`` field."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(path, 'expected a JSON object with an "images" list', record="top level")
    entries = data["images"]
    images = [_image(path, index, entry, language, zh_mode)
              for index, entry in enumerate(progress(entries, len(entries), f"reading {path.name}",
                                                         threshold=20_000))]
    if name is None:
        name = data["dataset"] if isinstance(data.get("dataset"), str) else path.stem
    return CaptionDataset(name=name, images=images, sources=[str(path)],
                          zh_mode=zh_mode if language.startswith("zh") else None)


def _image(path: Path, index: int, entry: Any, language: str, zh_mode: str) -> ImageRecord:
    where = f"images[{index}]"
    if not isinstance(entry, dict):
        raise DataError(path, f"expected an object, found {type(entry).__name__}", record=where)
    filename = entry.get("filename")
    if isinstance(filename, str):
        where += f" ({filename})"
    id_field = "cocoid" if "cocoid" in entry else "imgid"
    for field in ("filename", "split", id_field, "sentences"):
        if field not in entry:
            raise DataError(path, f"missing field {field!r}", record=where)
    if not isinstance(filename, str) or not filename:
        raise DataError(path, f"field 'filename' must be a non-empty string, found {filename!r}",
                        record=where)
    split = entry["split"]
    if split not in KARPATHY_SPLITS:
        raise DataError(path, f"unknown split {split!r}; expected one of {', '.join(KARPATHY_SPLITS)}",
                        record=where)
    image_id = entry[id_field]
    if not _is_int(image_id):
        raise DataError(path, f"field {id_field!r} must be an integer, found {image_id!r}", record=where)
    subdir = entry.get("filepath", "")
    if not isinstance(subdir, str):
        raise DataError(path, f"field 'filepath' must be a string, found {subdir!r}", record=where)
    raw_sentences = entry["sentences"]
    if not isinstance(raw_sentences, list):
        raise DataError(path, f"field 'sentences' must be a list, found {type(raw_sentences).__name__}",
                        record=where)
    sentences = [_sentence(path, f"{where} sentences[{j}]", s, language, zh_mode)
                 for j, s in enumerate(raw_sentences)]
    return ImageRecord(file_name=filename, split=split, image_id=image_id,
                       sentences=sentences, subdir=subdir)


def _sentence(path: Path, where: str, entry: Any, language: str, zh_mode: str) -> Sentence:
    if not isinstance(entry, dict):
        raise DataError(path, f"expected an object, found {type(entry).__name__}", record=where)
    for field in ("raw", "sentid"):
        if field not in entry:
            raise DataError(path, f"missing field {field!r}", record=where)
    raw, sentid = entry["raw"], entry["sentid"]
    if not isinstance(raw, str):
        raise DataError(path, f"field 'raw' must be a string, found {raw!r}", record=where)
    if not _is_int(sentid):
        raise DataError(path, f"field 'sentid' must be an integer, found {sentid!r}", record=where)
    return Sentence(raw=raw, tokens=tokenize(raw, language, zh_mode), language=language,
                    sentence_id=sentid)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
