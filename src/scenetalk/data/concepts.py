"""Held-out visual concepts: the words a base captioner is kept from learning, so that
learning them afterwards (``training/new_words.py``) can be measured (issue #14's protocol,
after NVCL's few-shot setting and DCC's held-out objects).

A photo *mentions* a concept when any of its reference sentences has one of the concept's
words (the head word, its plural and the forms that name the object's user: "skateboarder").
The base model is trained on the training photos that mention none of the concepts, so none
of these words is in its vocabulary.

Photos that mention each concept on Flickr8K's Karpathy split (``concept_counts``; checked
by ``tests/test_concepts.py`` on the real data):

    concept     train  val  test   words
    skateboard    166   29    23   skateboard(s), skateboarder(s), skateboarding
    surfboard      62    6    14   surfboard(s), surfboarder(s), surfboarding
    snowboard      72   11    18   snowboard(s), snowboarder(s), snowboarding
    frisbee        69   16    13   frisbee(s)
    motorcycle     89   14    17   motorcycle(s), motorbike(s)
    boat           93   20    18   boat(s), sailboat(s), motorboat(s), speedboat(s), rowboat(s)
    bench         105   15    18   bench, benches
    sunglasses     92   18    23   sunglasses
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping

from scenetalk.data.schema import CaptionDataset, ImageRecord

#: concept -> the words that mention it (all lower case, as the tokenizer gives them)
HELD_OUT_CONCEPTS: dict[str, tuple[str, ...]] = {
    "skateboard": ("skateboard", "skateboards", "skateboarder", "skateboarders", "skateboarding"),
    "surfboard": ("surfboard", "surfboards", "surfboarder", "surfboarders", "surfboarding"),
    "snowboard": ("snowboard", "snowboards", "snowboarder", "snowboarders", "snowboarding"),
    "frisbee": ("frisbee", "frisbees"),
    "motorcycle": ("motorcycle", "motorcycles", "motorbike", "motorbikes"),
    "boat": ("boat", "boats", "sailboat", "sailboats", "motorboat", "motorboats", "speedboat", "speedboats",
             "rowboat", "rowboats"),
    "bench": ("bench", "benches"),
    "sunglasses": ("sunglasses",),
}


def mentions(tokens: Iterable[str], words: Iterable[str]) -> bool:
    """Whether a sentence's tokens use any of ``words``."""
    return not set(words).isdisjoint(tokens)


def image_mentions(image: ImageRecord, words: Iterable[str]) -> bool:
    """Whether any reference sentence of ``image`` uses any of ``words``."""
    words = set(words)
    return any(mentions(s.tokens, words) for s in image.sentences)


def concept_photos(dataset: CaptionDataset, split: str,
                   concepts: Mapping[str, Iterable[str]] = HELD_OUT_CONCEPTS) -> dict[str, list[ImageRecord]]:
    """concept -> the photos of ``split`` that mention it, in the dataset's order."""
    return {name: [im for im in dataset.split(split) if image_mentions(im, words)] for name, words in concepts.items()}


def concept_counts(dataset: CaptionDataset, concepts: Mapping[str, Iterable[str]] = HELD_OUT_CONCEPTS
                   ) -> dict[str, dict[str, int]]:
    """concept -> {split: photos that mention it} for train, val and test."""
    per_split = {split: concept_photos(dataset, split, concepts) for split in ("train", "val", "test")}
    return {name: {split: len(per_split[split][name]) for split in per_split} for name in concepts}


def all_words(concepts: Mapping[str, Iterable[str]] = HELD_OUT_CONCEPTS) -> set[str]:
    return {w for words in concepts.values() for w in words}


def without_concepts(dataset: CaptionDataset, concepts: Mapping[str, Iterable[str]] = HELD_OUT_CONCEPTS,
                     held_out_split: str = "restval") -> CaptionDataset:
    """The dataset with every *training* photo that mentions a concept moved to
    ``held_out_split`` (so a trainer never sees it and its words stay out of the vocabulary);
    val and test are unchanged."""
    words = all_words(concepts)
    images = [ImageRecord(im.file_name, held_out_split if im.split == "train" and image_mentions(im, words)
                          else im.split, im.image_id, im.sentences, im.subdir) for im in dataset.images]
    return CaptionDataset(f"{dataset.name}-without-concepts", images, dataset.image_dir, list(dataset.sources))


def write_karpathy(dataset: CaptionDataset, path: str | os.PathLike) -> None:
    """``dataset`` as a Karpathy-format JSON file (the form ``load_dataset`` reads back), so a
    derived split can be trained with ``scenetalk train``; written atomically."""
    from scenetalk.io import atomic_write_text

    entries = [{"filename": im.file_name, "filepath": im.subdir, "imgid": i, "split": im.split,
                "sentences": [{"raw": s.raw, "tokens": s.tokens, "sentid": s.sentence_id} for s in im.sentences]}
               for i, im in enumerate(dataset.images)]
    atomic_write_text(path, json.dumps({"dataset": dataset.name, "images": entries}))
