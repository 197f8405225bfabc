"""Flickr30K Entities (Plummer et al. 2015): phrases of the Flickr30K sentences linked to boxes.

Used to evaluate phrase localisation on the Flickr8K photos (a subset of Flickr30K). Per photo
``<flickr_id>`` (the Flickr8K name ``<flickr_id>_<hex>.jpg`` without the suffix):

* ``Annotations/<flickr_id>.xml``: Pascal-VOC-like. ``<size>`` is the *original* photo's
  width and height; every ``<object>`` has one or more ``<name>`` (coreference chain ids it
  belongs to) and either a ``<bndbox>`` (``xmin, ymin, xmax, ymax``: 1-based inclusive pixels)
  or the flags ``<scene>0|1</scene><nobndbox>0|1</nobndbox>``.
* ``Sentences/<flickr_id>.txt``: five sentences, phrases in brackets:
  ``[/EN#18/people A child] in [/EN#19/clothing a pink dress] ...`` (chain id, one or more
  ``/``-separated types, phrase text). Chain ``0`` (type ``notvisual``) was never annotated:
  each such phrase is its own chain and has no box.

Boxes become our normalised continuous coordinates (see ``scenetalk.vision.boxes``):
``x0 = (xmin-1)/W, y0 = (ymin-1)/H, x1 = xmax/W, y1 = ymax/H``, float32, in [0, 1]. They
therefore fit the 224x224 squashed images directly (``to_pixels`` gives 224-pixel ones).
Boxes reaching outside the photo are clipped to it and counted (``EntityImage.clipped_boxes``);
an inverted box (``xmax < xmin``), one wholly outside the photo, or any other malformed field
is a ``DataError`` naming the file and the object. (The 8,091 Flickr8K photos' 52,311 boxes
have none of these.)

Tokens: the sentence without brackets is tokenized with ``scenetalk.data.text.tokenize``; each
phrase is placed by tokenizing the text piece by piece (the parts between phrases and the
phrases) so that ``sentence.tokens[p.start:p.end] == p.tokens == tokenize(p.text)``. A phrase
bracket that cuts a word (``[/EN#1/people man]'s`` -> "mans" as one token, but "man" + "s" in
pieces) makes the pieces disagree with the whole; then the sentence keeps ``tokenize(text)``,
each phrase gets the tokens its characters touch (``p.tokens`` may then differ from
``tokenize(p.text)``), and the sentence is marked ``retokenized`` and counted in ``summary``.
None of the Flickr8K photos' 40,455 sentences needs this.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scenetalk.data.readers import read_bytes, read_lines
from scenetalk.data.text import tokenize
from scenetalk.errors import DataError, ScenetalkError
from scenetalk.vision.boxes import box_iou, inclusive_pixels_to_normalized, to_pixels, union_box

__all__ = ["EntityImage", "EntityImages", "EntityPhrase", "EntitySentence", "NOTVISUAL",
           "box_iou", "flickr30k_id", "load_entities", "parse_annotation", "parse_sentences",
           "summary", "to_pixels", "union_box"]

NOTVISUAL = "0"
MISSING_MODES = ("error", "skip")

# A phrase: "[/EN#<chain>/<type>[/<type>...] <text>]". Brackets never nest in the release.
_PHRASE = re.compile(r"\[/EN#(?P<chain>\d+)/(?P<types>[^\s\[\]]+) (?P<text>[^\[\]]*)\]")
_FLICKR8K_NAME = re.compile(r"(?P<id>\d+)(?:_[0-9a-fA-F]+)?\.jpg")


def _no_boxes() -> np.ndarray:
    return _frozen(np.zeros((0, 4), dtype=np.float32))


def _frozen(arr: np.ndarray) -> np.ndarray:
    # Phrases of one chain share its array: read-only, so that editing one cannot change all.
    arr.setflags(write=False)
    return arr


@dataclass
class EntityPhrase:
    text: str  # phrase text as written
    tokens: list[str]  # tokenize(text), except in a retokenized sentence (see module doc)
    start: int  # index of the first token in EntitySentence.tokens
    chain_id: str  # "0" for notvisual
    types: list[str]  # e.g. ["people"], possibly several
    boxes: np.ndarray  # (B, 4) float32 normalised boxes of the chain; (0, 4) when none
    scene: bool  # the chain is flagged <scene>1</scene>

    @property
    def end(self) -> int:
        return self.start + len(self.tokens)


@dataclass
class EntitySentence:
    text: str  # the sentence with the brackets and their "/EN#.../type " headers removed
    tokens: list[str]  # tokenize(text); every phrase's tokens are a contiguous slice
    phrases: list[EntityPhrase]
    line: int = 0  # line in Sentences/<flickr_id>.txt
    retokenized: bool = False  # a bracket cut a word: phrases placed by characters


@dataclass
class EntityImage:
    name: str  # Flickr8K file name, e.g. "1000268201_693b08cb0e.jpg"
    width: int  # original photo size, from the XML
    height: int
    sentences: list[EntitySentence]
    boxes: dict[str, np.ndarray]  # every chain in the XML -> (B, 4) normalised boxes
    scene_chains: set[str] = field(default_factory=set)
    clipped_boxes: int = 0  # boxes that reached outside the photo and were clipped


class EntityImages(dict):
    """``load_entities``' result: ``{Flickr8K name: EntityImage}`` plus ``problems`` (skips)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.problems: list[str] = []


def flickr30k_id(name: str) -> str:
    """Flickr8K ``<flickr_id>_<hex>.jpg`` (or ``<flickr_id>.jpg``) -> ``<flickr_id>``."""
    match = _FLICKR8K_NAME.fullmatch(os.path.basename(name))
    if match is None:
        raise ScenetalkError(f"image name {name!r} is not a Flickr photo name '<flickr id>_<hex>.jpg'")
    return match["id"]


def _number(obj: ET.Element, tag: str, path: Path, where: str) -> float:
    elem = obj.find(tag)
    text = None if elem is None or elem.text is None else elem.text.strip()
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value):
        found = "missing" if elem is None else f"{text!r} is not a number"
        raise DataError(path, f"<{tag}> {found}", record=where)
    return value


def _flag(obj: ET.Element, tag: str, path: Path, where: str) -> bool:
    elem = obj.find(tag)
    if elem is None:
        return False
    text = (elem.text or "").strip()
    if text not in ("0", "1"):
        raise DataError(path, f"<{tag}> is {text!r}, expected 0 or 1", record=where)
    return text == "1"


def parse_annotation(path: str | os.PathLike) -> tuple[int, int, dict[str, np.ndarray], set[str], int]:
    """``(width, height, {chain: boxes}, scene chains, clipped box count)`` of one XML file."""
    path = Path(path)
    try:
        root = ET.fromstring(read_bytes(path))
    except ET.ParseError as exc:
        line, column = exc.position
        reason = str(exc).rsplit(": line", 1)[0]  # expat appends the position, given as record
        raise DataError(path, f"invalid XML: {reason}", record=f"line {line}, column {column}") from None
    width = _number(root, "size/width", path, "<size>")
    height = _number(root, "size/height", path, "<size>")
    if width < 1 or height < 1 or width != int(width) or height != int(height):
        raise DataError(path, f"photo size {width:g}x{height:g} is not a positive whole number of pixels",
                        record="<size>")
    width, height = int(width), int(height)
    pixel_boxes: dict[str, list[list[float]]] = {}
    scene: set[str] = set()
    clipped = 0
    for k, obj in enumerate(root.iter("object"), start=1):
        chains = [(n.text or "").strip() for n in obj.findall("name")]
        where = f"object {k}" + (f" (chain {', '.join(chains)})" if chains else "")
        if not chains or not all(c.isdigit() for c in chains):
            raise DataError(path, f"<name> chain ids {chains} are not all numbers", record=where)
        bndbox = obj.find("bndbox")
        if bndbox is None:
            if obj.find("nobndbox") is None and obj.find("scene") is None:
                raise DataError(path, "object has neither <bndbox> nor <nobndbox>/<scene>", record=where)
            is_scene = _flag(obj, "scene", path, where)
            _flag(obj, "nobndbox", path, where)  # validated only: "no box" is the absence of boxes
            for chain in chains:
                pixel_boxes.setdefault(chain, [])
                if is_scene:
                    scene.add(chain)
            continue
        xmin, ymin, xmax, ymax = (_number(bndbox, t, path, where) for t in ("xmin", "ymin", "xmax", "ymax"))
        # Inclusive pixels: xmin == xmax is a 1-pixel-wide box; only xmax < xmin is empty.
        if xmax < xmin or ymax < ymin:
            raise DataError(path, f"inverted box ({xmin:g}, {ymin:g}, {xmax:g}, {ymax:g})", record=where)
        box = [max(xmin, 1), max(ymin, 1), min(xmax, width), min(ymax, height)]
        if box[2] < box[0] or box[3] < box[1]:
            raise DataError(path, f"box ({xmin:g}, {ymin:g}, {xmax:g}, {ymax:g}) lies outside the "
                            f"{width}x{height} photo", record=where)
        clipped += box != [xmin, ymin, xmax, ymax]
        for chain in chains:
            pixel_boxes.setdefault(chain, []).append(box)
    boxes = {chain: _frozen(inclusive_pixels_to_normalized(np.array(b, dtype=np.float64).reshape(-1, 4),
                                                           width, height))
             for chain, b in pixel_boxes.items()}
    return width, height, boxes, scene, clipped


def _place_by_characters(text: str, tokens: list[str], start: int, end: int) -> tuple[int, int]:
    """Token span ``[first, last)`` of ``tokens`` (= tokenize(text)) touching ``text[start:end]``."""

    def cuts_word(at: int) -> bool:
        return tokenize(text[:at]) + tokenize(text[at:]) != tokens

    first = len(tokenize(text[:start])) - (1 if start and cuts_word(start) else 0)
    # A word cut at ``end`` is counted in the prefix, so it is included, as wanted.
    last = len(tokenize(text[:end]))
    first = min(max(first, 0), len(tokens))
    return first, min(max(last, first), len(tokens))


def parse_sentences(path: str | os.PathLike, boxes: dict[str, np.ndarray] | None = None,
                    scene: set[str] | None = None) -> list[EntitySentence]:
    """The sentences of one ``Sentences/<id>.txt``; phrases get their chain's ``boxes``."""
    path = Path(path)
    boxes, scene = boxes or {}, scene or set()
    sentences = []
    for lineno, line in read_lines(path):
        pieces: list[str] = []  # text between phrases and phrase texts, alternating
        found: list[re.Match] = []
        pos = 0
        while True:
            i = line.find("[", pos)
            between = line[pos:] if i < 0 else line[pos:i]
            if "]" in between:
                raise DataError(path, f"unmatched ']' at column {pos + between.index(']') + 1}",
                                record=f"line {lineno}")
            pieces.append(between)
            if i < 0:
                break
            match = _PHRASE.match(line, i)
            if match is None:
                raise DataError(path, f"malformed phrase {line[i:i + 50]!r} at column {i + 1}, expected "
                                "'[/EN#<chain>/<type> <words>]'", record=f"line {lineno}")
            if not all(match["types"].split("/")):
                raise DataError(path, f"empty phrase type in {match[0]!r}", record=f"line {lineno}")
            if not tokenize(match["text"]):
                raise DataError(path, f"phrase {match[0]!r} has no words", record=f"line {lineno}")
            found.append(match)
            pieces.append(match["text"])
            pos = match.end()
        text = "".join(pieces)
        tokens = tokenize(text)
        piece_tokens = [tokenize(p) for p in pieces]
        retokenized = [t for ts in piece_tokens for t in ts] != tokens
        phrases = []
        offset, chars = 0, 0  # tokens and characters before the current piece
        for k, piece in enumerate(pieces):
            if k % 2:
                match = found[k // 2]
                if retokenized:
                    first, last = _place_by_characters(text, tokens, chars, chars + len(piece))
                    start, phrase_tokens = first, tokens[first:last]
                else:
                    start, phrase_tokens = offset, piece_tokens[k]
                chain = match["chain"]
                phrases.append(EntityPhrase(
                    text=piece, tokens=phrase_tokens, start=start, chain_id=chain,
                    types=match["types"].split("/"),
                    # chain 0 phrases are separate unannotated singletons, never boxed
                    boxes=_no_boxes() if chain == NOTVISUAL else boxes.get(chain, _no_boxes()),
                    scene=chain != NOTVISUAL and chain in scene))
            offset += len(piece_tokens[k])
            chars += len(piece)
        sentences.append(EntitySentence(text=text, tokens=tokens, phrases=phrases, line=lineno,
                                        retokenized=retokenized))
    return sentences


def load_entities(root: str | os.PathLike, names: Iterable[str], missing: str = "error") -> EntityImages:
    """``{name: EntityImage}`` for the Flickr8K image ``names``, in their order.

    ``root`` is the ``flickr30k_entities`` folder. A name without both its XML and its
    sentences file is a ``DataError`` naming the missing file (``missing="error"``), or is left
    out and reported in the result's ``problems`` (``missing="skip"``). Malformed files are
    always errors.
    """
    if missing not in MISSING_MODES:
        raise ValueError(f"missing={missing!r}; expected one of {MISSING_MODES}")
    root = Path(root)
    images = EntityImages()
    for name in names:
        if name in images:
            continue
        flickr_id = flickr30k_id(name)
        xml_path = root / "Annotations" / f"{flickr_id}.xml"
        txt_path = root / "Sentences" / f"{flickr_id}.txt"
        absent = [p for p in (xml_path, txt_path) if not p.is_file()]
        if absent:
            if missing == "error":
                raise DataError(absent[0], f"file not found (Flickr30K Entities for image {name})")
            images.problems.append(f"{name}: skipped, {' and '.join(map(str, absent))} not found")
            continue
        width, height, boxes, scene, clipped = parse_annotation(xml_path)
        images[name] = EntityImage(name=name, width=width, height=height,
                                   sentences=parse_sentences(txt_path, boxes, scene), boxes=boxes,
                                   scene_chains=scene, clipped_boxes=clipped)
    return images


def summary(images: dict[str, EntityImage] | Iterable[EntityImage]) -> dict:
    """Counts: images, sentences, phrases (with boxes, notvisual, scene), boxes, per type."""
    items = list(images.values()) if isinstance(images, dict) else list(images)
    phrases = [p for im in items for s in im.sentences for p in s.phrases]
    per_type: dict[str, Counter] = {}
    for p in phrases:
        for t in p.types:  # a phrase with two types counts under both
            per_type.setdefault(t, Counter())["phrases"] += 1
            per_type[t]["with_boxes"] += len(p.boxes) > 0
    return {
        "images": len(items),
        "sentences": sum(len(im.sentences) for im in items),
        "phrases": len(phrases),
        "phrases_with_boxes": sum(len(p.boxes) > 0 for p in phrases),
        "notvisual_phrases": sum(p.chain_id == NOTVISUAL for p in phrases),
        "scene_phrases": sum(p.scene for p in phrases),
        # a box naming two chains counts once per chain
        "chain_boxes": sum(len(b) for im in items for b in im.boxes.values()),
        "clipped_boxes": sum(im.clipped_boxes for im in items),
        "retokenized_sentences": sum(s.retokenized for im in items for s in im.sentences),
        "types": {t: {"phrases": c["phrases"], "with_boxes": c["with_boxes"]}
                  for t, c in sorted(per_type.items(), key=lambda kv: -kv[1]["phrases"])},
    }
