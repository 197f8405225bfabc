"""The held-out concepts of issue #14's protocol (data/concepts.py): which photos mention a
concept, the base split that hides them, its round trip through a Karpathy file, and the
counts the module's docstring states, checked on the real Flickr8K split."""

import pytest

from scenetalk.data.concepts import (
    HELD_OUT_CONCEPTS,
    concept_counts,
    concept_photos,
    image_mentions,
    without_concepts,
    write_karpathy,
)
from scenetalk.data.karpathy import load_karpathy
from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence


def photo(name, split, *texts):
    return ImageRecord(name, split, 0, [Sentence(t, t.split(), "en", k) for k, t in enumerate(texts)])


def toy():
    return CaptionDataset("toy", [
        photo("a.jpg", "train", "a man on a skateboard", "a man rides"),
        photo("b.jpg", "train", "a dog runs", "a brown dog"),
        photo("c.jpg", "train", "two skateboarders jump", "boys play"),
        photo("d.jpg", "val", "a boy on a skateboard"),
        photo("e.jpg", "test", "a man on a bench"),
    ])


def test_a_photo_mentions_a_concept_when_any_reference_uses_one_of_its_words():
    data = toy()
    assert image_mentions(data.images[2], HELD_OUT_CONCEPTS["skateboard"])   # a plural form, second sentence
    assert not image_mentions(data.images[1], HELD_OUT_CONCEPTS["skateboard"])
    photos = concept_photos(data, "train")
    assert [im.file_name for im in photos["skateboard"]] == ["a.jpg", "c.jpg"] and photos["bench"] == []


def test_the_base_split_moves_only_training_photos_out(tmp_path):
    base = without_concepts(toy())
    assert [im.file_name for im in base.split("train")] == ["b.jpg"]
    assert [im.file_name for im in base.split("restval")] == ["a.jpg", "c.jpg"]
    assert [im.file_name for im in base.split("val")] == ["d.jpg"] and len(base.split("test")) == 1
    write_karpathy(base, tmp_path / "base.json")
    back = load_karpathy(tmp_path / "base.json")
    assert back.split_counts() == base.split_counts()
    assert [s.tokens for s in back.sentences()] == [s.tokens for s in base.sentences()]


@pytest.mark.slow
def test_the_stated_counts_on_flickr8k(shared_data):
    from scenetalk.data.registry import load_dataset

    counts = concept_counts(load_dataset("flickr8k", root=shared_data))
    stated = {"skateboard": (166, 29, 23), "surfboard": (62, 6, 14), "snowboard": (72, 11, 18),
              "frisbee": (69, 16, 13), "motorcycle": (89, 14, 17), "boat": (93, 20, 18), "bench": (105, 15, 18),
              "sunglasses": (92, 18, 23)}
    assert {c: (n["train"], n["val"], n["test"]) for c, n in counts.items()} == stated
