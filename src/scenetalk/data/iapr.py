"""IAPR TC-12 (Grubinger et al. 2006): one English annotation file per image.

The annotation files (``annotations_complete_eng/<NN>/<id>.eng``, found recursively) are
SGML-like, usually ISO-8859-1 encoded::

    <DOC>
    <DOCNO>annotations/00/25.eng</DOCNO>
    <TITLE>Palma</TITLE>
    <DESCRIPTION>a yellow building with white columns in the background; two palm trees
    in front of the house; cars are parking in front of the house; ...</DESCRIPTION>
    <NOTES></NOTES>
    <LOCATION>Salvador, Brazil</LOCATION>
    <DATE>2 October 2002</DATE>
    <IMAGE>images/00/25.jpg</IMAGE>
    <THUMBNAIL>thumbnails/00/25.jpg</THUMBNAIL>
    </DOC>

Each image's description is split into sentences on ``;`` (empty pieces dropped). The
``<IMAGE>`` path, relative to the dataset folder, gives the image's sub-folder
(``images/00``) and file name (``25.jpg``); its number is the image id.

Files are decoded as UTF-8 when they are valid UTF-8, else as ISO-8859-1 (pass
``encoding`` to force one). Splits come from optional list files, one image per line,
written as the ``<IMAGE>`` path (``images/00/25.jpg``), without ``images/`` (``00/25.jpg``),
or as the bare id (``25``), with or without the extension (the m-RNN paper uses 17,665
training and 1,962 test images). Images in no list get the split ``unassigned``.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

from scenetalk.data.readers import progress, read_split_lists, read_text
from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence
from scenetalk.data.text import tokenize
from scenetalk.errors import DataError

_FIELD = {tag: re.compile(rf"<{tag}>(.*?)</{tag}>", re.DOTALL | re.IGNORECASE)
          for tag in ("DOCNO", "DESCRIPTION", "IMAGE")}


def _field(path: Path, text: str, tag: str) -> str:
    match = _FIELD[tag].search(text)
    if match is None:
        raise DataError(path, f"no <{tag}>...</{tag}> element (expected an IAPR TC-12 .eng file)",
                        record="<DOC>")
    return match.group(1).strip()


def parse_eng(path: str | os.PathLike, encoding: str | None = None) -> tuple[str, list[str]]:
    """``(image path from <IMAGE>, description sentences)`` of one ``.eng`` file."""
    path = Path(path)
    text = read_text(path, (encoding,) if encoding else ("utf-8", "iso-8859-1"))
    image = _field(path, text, "IMAGE").replace("\\", "/")
    if not image:
        raise DataError(path, "empty <IMAGE> element", record="<IMAGE>")
    description = " ".join(_field(path, text, "DESCRIPTION").split())
    sentences = [s.strip() for s in description.split(";") if s.strip()]
    return image, sentences


def _image_keys(relpath: str) -> list[str]:
    """The ways a split list may name an image: with/without ``images/`` and extension, bare id."""
    keys = [relpath]
    if relpath.startswith("images/"):
        keys.append(relpath[len("images/"):])
    keys += [posixpath.splitext(k)[0] for k in keys]
    keys.append(posixpath.splitext(posixpath.basename(relpath))[0])
    return keys


def load_iapr(annotations_dir: str | os.PathLike,
              split_files: dict[str, str | os.PathLike] | None = None,
              encoding: str | None = None, language: str = "en") -> CaptionDataset:
    """Load every ``.eng`` file under ``annotations_dir``; splits from ``split_files``."""
    annotations_dir = Path(annotations_dir)
    if not annotations_dir.is_dir():
        raise DataError(annotations_dir, "annotation folder not found")
    files = sorted(annotations_dir.rglob("*.eng"))
    if not files:
        raise DataError(annotations_dir, "no .eng annotation files found in this folder")
    parsed: dict[str, tuple[Path, list[str]]] = {}
    for path in progress(files, len(files), "reading IAPR annotations", threshold=5000):
        relpath, sentences = parse_eng(path, encoding)
        if relpath in parsed:
            raise DataError(path, f"image {relpath!r} is also described by {parsed[relpath][0]}",
                            record="<IMAGE>")
        parsed[relpath] = (path, sentences)

    lookup: dict[str, str | None] = {}
    for relpath in parsed:
        for key in _image_keys(relpath):
            # a key shared by two images (a bare id in two folders) is ambiguous
            lookup[key] = None if key in lookup and lookup[key] != relpath else relpath
    splits = read_split_lists(split_files or {}, lambda entry: lookup.get(entry), annotations_dir)

    images = []
    sentence_id = 0
    for index, (relpath, (_, texts)) in enumerate(parsed.items()):
        subdir, file_name = posixpath.split(relpath)
        stem = posixpath.splitext(file_name)[0]
        sentences = []
        for text in texts:
            sentences.append(Sentence(text, tokenize(text, language), language, sentence_id))
            sentence_id += 1
        images.append(ImageRecord(file_name, splits.get(relpath, "unassigned"),
                                  int(stem) if stem.isdigit() else index, sentences, subdir))
    sources = [str(annotations_dir)] + [str(p) for p in (split_files or {}).values()]
    return CaptionDataset(name="iapr", images=images, sources=sources)
