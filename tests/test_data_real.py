"""The loaders on the real datasets in ../shared/data (skipped when it is absent).

The numbers asserted here are the published ones (see ../shared/data/README.md) or, for
the vocabulary, what our tokenizer gives, so that a change in a loader or the tokenizer is
noticed.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

import scenetalk.cli
from scenetalk.data.check import check_dataset
from scenetalk.data.registry import load_dataset
from scenetalk.data.text import Vocabulary, tokenize

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def karpathy8k(shared_data):
    return load_dataset("flickr8k", root=shared_data)


@pytest.fixture(scope="module")
def text8k(shared_data):
    return load_dataset("flickr8k-text", root=shared_data)


def test_flickr8k_karpathy_json(karpathy8k, shared_data):
    ds = karpathy8k
    assert len(ds) == 8000
    assert ds.split_counts() == {"train": 6000, "val": 1000, "test": 1000}
    assert all(len(im.sentences) == 5 for im in ds.images)
    ids = [s.sentence_id for s in ds.sentences()]
    assert sorted(ids) == list(range(40000))
    first = ds.images[0]
    assert (first.file_name, first.split, first.image_id) == ("2513260012_03d33305cf.jpg", "train", 0)
    assert first.sentences[0].tokens == "a black dog is running after a white dog in the snow".split()
    assert ds.image_dir == str(shared_data / "flickr8k" / "images")


def test_flickr8k_vocabulary_size(karpathy8k):
    # Our tokenizer on the raw sentences of the 6,000 training images, words seen >= 5 times.
    # (Karpathy's own tokens give 2,537: they keep "#", "&", "(" ... as words.)
    vocab = Vocabulary.build([s.tokens for s in karpathy8k.sentences("train")], min_count=5)
    assert vocab.num_words == 2534


def test_flickr8k_text_files(text8k, karpathy8k, shared_data):
    ds = text8k
    assert len(ds) == 8091 and len(ds.sentences()) == 40455
    assert ds.split_counts() == {"train": 6000, "val": 1000, "test": 1000, "unassigned": 91}
    assert all(len(im.sentences) == 5 for im in ds.images)
    assert any("2258277193_586949ec62.jpg.1" in p for p in ds.problems)
    assert "2258277193_586949ec62.jpg" not in ds.by_name()
    # the same photos as the image folder, and the same split as Karpathy's file
    assert set(ds.by_name()) == set(os.listdir(shared_data / "flickr8k" / "images"))
    json_splits = {im.file_name: im.split for im in karpathy8k.images}
    assert {im.file_name: im.split for im in ds.images if im.split != "unassigned"} == json_splits


def test_flickr8k_cn(shared_data, text8k):
    ds = load_dataset("flickr8k-cn", root=shared_data)  # jieba, the default
    assert len(ds) == 8091 and len(ds.sentences()) == 40455
    assert {s.language for s in ds.sentences()} == {"zh"}
    assert {im.file_name: im.split for im in ds.images} == {im.file_name: im.split for im in text8k.images}
    first = ds.images[0]
    assert first.file_name == "667626_18933d713e.jpg"
    assert "".join(first.sentences[0].tokens) == "".join(tokenize(first.sentences[0].raw, "zh", "char"))
    assert len(first.sentences[0].tokens) < len(tokenize(first.sentences[0].raw, "zh", "char"))


def test_flickr8k_cn_translations(shared_data, text8k):
    ds = load_dataset("flickr8k-cn-trans", root=shared_data, zh_mode="char")
    assert len(ds) == 1000 and len(ds.sentences()) == 5000
    assert ds.split_counts() == {"test": 1000}
    assert set(ds.by_name()) == {im.file_name for im in text8k.split("test")}
    assert ds.problems == []


def test_multi30k_german_on_flickr8k(shared_data, text8k):
    ds = load_dataset("multi30k-de", root=shared_data)
    assert len(ds) == 7478  # README: "about 7,480 of the 8,091 images"
    assert all(len(im.sentences) == 5 for im in ds.images)
    flickr8k_split = {im.file_name: im.split for im in text8k.images}
    assert all(im.split == flickr8k_split[im.file_name] for im in ds.images)
    assert ds.split_counts() == {"train": 5528, "val": 934, "test": 929, "unassigned": 87}
    # 1000268201_693b08cb0e.jpg is line 3 of Multi30K's train_images.txt
    girl = ds.by_name()["1000268201_693b08cb0e.jpg"]
    assert girl.sentences[0].raw == "Ein mädchen im rosa kleid klettert in eine stall"
    assert girl.sentences[0].tokens[:4] == ["ein", "mädchen", "im", "rosa"]
    assert any("613 of 8091" in p for p in ds.problems)


def test_check_command_on_flickr8k(shared_data, monkeypatch, capsys):
    available = tuple(c for c in scenetalk.cli.COMMANDS
                      if importlib.util.find_spec(f"scenetalk.commands.{c}") is not None)
    monkeypatch.setattr(scenetalk.cli, "COMMANDS", available)
    assert scenetalk.cli.main(["data", "check", "flickr8k", "--root", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert "8000 of 8000 files present" in out
    assert "train           6000      30000" in out and "total           8000      40000" in out
    assert "vocabulary: 2534 words" in out and "problems: none" in out


def test_check_report_on_flickr8k_text(text8k):
    report = check_dataset(text8k)
    assert report.vocabulary["words"] == 2534
    assert [p["kind"] for p in report.problems] == ["loader", "loader"]  # the two orphan ids
