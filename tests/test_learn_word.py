"""`scenetalk learn-word` and `scenetalk.learn_words`: the captions file in both formats, every
bad request refused on one line (exit 2) with nothing written to --out, and the whole path on
the shipped captioner: photos + sentences -> a checkpoint that `caption --checkpoint` uses."""

import json
import re

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="learning words is training (the train extra)")

import scenetalk
from scenetalk.cli import main
from scenetalk.data.captions_file import read_captions
from scenetalk.errors import DataError, ScenetalkError

NEW_WORD = "zorblat"   # in no captioner's vocabulary


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Four photos of orange squares whose sentences call them zorblats, as a tab file."""
    root = tmp_path_factory.mktemp("learn")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(4):
        pixels = np.clip(np.array((240, 140, 20)) + rng.normal(0, 10, (64, 64, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"{i}.jpg")
        lines += [f"{i}.jpg\ta {NEW_WORD} on a table", f"{i}.jpg#1\tan orange {NEW_WORD}"]
    (root / "captions.tsv").write_text("# photo<TAB>sentence\n" + "\n".join(lines) + "\n")
    return root


def test_tab_file_groups_sentences_by_photo(photos):
    data = read_captions(photos / "captions.tsv")
    assert [im.file_name for im in data.images] == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]
    assert [s.tokens for s in data.images[0].sentences] == [["a", NEW_WORD, "on", "a", "table"],
                                                           ["an", "orange", NEW_WORD]]
    assert {im.split for im in data.images} == {"train"}


def test_karpathy_json_gives_every_image_whatever_its_split(tmp_path):
    records = [{"filename": f"{i}.jpg", "imgid": i, "split": split, "sentences": [{"raw": "a dog", "sentid": i}]}
               for i, split in enumerate(["train", "val", "test"])]
    (tmp_path / "d.json").write_text(json.dumps({"images": records}))
    data = read_captions(tmp_path / "d.json")
    assert [im.file_name for im in data.images] == ["0.jpg", "1.jpg", "2.jpg"]
    assert {im.split for im in data.images} == {"train"}


@pytest.mark.parametrize("text, says", [
    ("a.jpg a dog\n", "line 1: expected 'photo name<TAB>sentence'"),
    ("a.jpg\ta dog\n\tno name\n", "line 2: the photo name (before the tab) is empty"),
    ("a.jpg\t!!!\n", "line 1: the sentence for a.jpg has no words"),
    ("# only a comment\n", "holds no sentences"),
])
def test_bad_captions_files_name_the_line(tmp_path, text, says):
    (tmp_path / "c.tsv").write_text(text)
    with pytest.raises(DataError, match=re.escape(says)):
        read_captions(tmp_path / "c.tsv")


@pytest.mark.parametrize("text, says", [
    ('{"images": [', "line 1 column 13: invalid JSON"),
    ('{"images": []}', "holds no sentences"),
    ('{"images": [{"filename": "a.jpg", "split": "val", "sentences": [{"raw": "a dog"}]}]}', "missing field 'imgid'"),
])
def test_bad_karpathy_json_is_one_line_naming_the_file(tmp_path, text, says):
    (tmp_path / "d.json").write_text(text)
    with pytest.raises(DataError, match=re.escape(says)) as err:
        read_captions(tmp_path / "d.json")
    assert "d.json" in str(err.value) and "\n" not in str(err.value)


def test_captions_that_are_not_utf8_name_the_byte(tmp_path):
    (tmp_path / "c.tsv").write_bytes("a.jpg\tun caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="cannot decode byte 0xe9"):
        read_captions(tmp_path / "c.tsv")


def bad_cases(photos, tmp_path):
    images, captions, out = str(photos / "images"), str(photos / "captions.tsv"), str(tmp_path / "out")
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "missing.tsv").write_text("nowhere.jpg\ta zorblat\n")
    return [
        (["dog", "--images", images, "--captions", captions, "--out", out], "knows this word already; pass --relearn"),
        (["giraffe", "--images", images, "--captions", captions, "--out", out], "no sentence uses 'giraffe'"),
        (["red panda", "--images", images, "--captions", captions, "--out", out], "not one word"),
        ([NEW_WORD, "--images", str(tmp_path / "nope"), "--captions", captions, "--out", out], "no such folder"),
        ([NEW_WORD, "--images", images, "--captions", str(tmp_path / "nope.tsv"), "--out", out], "file not found"),
        ([NEW_WORD, "--images", images, "--captions", str(tmp_path / "missing.tsv"), "--out", out],
         "nowhere.jpg: no such photo (1 of the 1 photos"),
        ([NEW_WORD, "--images", images, "--captions", captions, "--out", str(tmp_path / "a-file")], "is a file"),
        ([NEW_WORD, "--images", images, "--captions", captions, "--out", str(tmp_path / "full")],
         "exists already; pass --overwrite"),
        ([NEW_WORD, "--images", images, "--captions", captions, "--out", out, "--base", str(tmp_path)],
         "not a scenetalk checkpoint"),
        ([NEW_WORD, "--images", images, "--captions", captions, "--out", out, "--steps", "0"], "--steps must be"),
        ([NEW_WORD, "--out", out], "give the photos (--images) and their sentences (--captions), or --from-detector"),
        ([NEW_WORD, "--images", images, "--out", out], "give the photos (--images) and their sentences"),
        ([NEW_WORD, "--from-detector", "--out", out], "not one of the detector's classes"),
        (["dog", "--from-detector", "--out", out], "knows this word already"),
        (["giraffe", "--from-detector", "--out", str(tmp_path / "full")], "exists already; pass --overwrite"),
    ]


def test_every_bad_request_is_one_line_and_writes_nothing(photos, tmp_path, capsys):
    for argv, says in bad_cases(photos, tmp_path):
        assert main(["learn-word", *argv]) == 2, argv
        out, err = capsys.readouterr()
        assert out == "" and says in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        assert not (tmp_path / "out").exists()


def test_a_captioner_without_word_rows_is_refused(photos, tmp_path):
    import torch

    from scenetalk.checkpoint import read_meta, save_checkpoint
    from scenetalk.data.text import Vocabulary
    from scenetalk.models import build_generator
    from scenetalk.weights import shipped_reranker

    config = {"type": "multimodal_rnn", "word_dim": 8, "hidden_dim": 8, "vocab_size": 7, "image_dim": 1280}
    save_checkpoint(tmp_path / "rnn", build_generator(config).state_dict(),
                    {"kind": "caption_generator", "model": config, "vocabulary": Vocabulary(["a", "b", "c"]).to_dict(),
                     "extractor_id": read_meta(shipped_reranker())["extractor_id"]})
    torch.manual_seed(0)
    with pytest.raises(ScenetalkError, match="cannot learn new words"):
        scenetalk.learn_words([NEW_WORD], photos / "images", photos / "captions.tsv", tmp_path / "out",
                              base=tmp_path / "rnn", progress=False)
    assert not (tmp_path / "out").exists()


def test_unknown_option_is_refused(photos, tmp_path):
    with pytest.raises(ScenetalkError, match="unknown argument 'epochs'"):
        scenetalk.load().learn_words(NEW_WORD, photos / "images", photos / "captions.tsv", tmp_path / "o", epochs=3)


def test_a_photo_that_is_not_an_image_is_named_and_nothing_written(photos, tmp_path, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "broken.jpg").write_text("not a picture")
    (tmp_path / "c.tsv").write_text(f"broken.jpg\ta {NEW_WORD} on a table\n")
    assert main(["learn-word", NEW_WORD, "--images", str(tmp_path / "images"), "--captions", str(tmp_path / "c.tsv"),
                 "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "broken.jpg" in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_learn_word_then_caption_with_it(photos, tmp_path, capsys):
    out = tmp_path / "captioner"
    assert main(["learn-word", NEW_WORD, "--images", str(photos / "images"), "--captions",
                 str(photos / "captions.tsv"), "--out", str(out), "--steps", "40", "--quiet", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["words"] == [NEW_WORD] and result["photos"] == 4 and result["sentences"] == 8
    assert result["uses"] == {NEW_WORD: 8} and result["method"] == "nvcl"
    assert main(["caption", "--checkpoint", str(out), str(photos / "images" / "0.jpg"), "--json", "--quiet"]) == 0
    [item] = json.loads(capsys.readouterr().out)
    assert NEW_WORD in item["captions"][0]["text"].split()   # it says the word it was taught, on its photos
    [[best]] = scenetalk.load(captioner=out).caption([photos / "images" / "1.jpg"])
    assert NEW_WORD in best.text.split()
    # the same through Python, and a second run refuses the word it now knows
    with pytest.raises(ScenetalkError, match="knows this word already"):
        scenetalk.learn_words(NEW_WORD, photos / "images", photos / "captions.tsv", tmp_path / "again", base=out)


class FakeDetector:
    """Sees a giraffe (score 0.9) in every image wider than it is tall, nothing in the others."""

    def detect(self, rgb):
        from scenetalk.vision.detector import Detections

        wide = rgb.shape[1] > rgb.shape[0]
        giraffe = 25
        return Detections(np.zeros((1, 4), np.float32), np.array([0.9 if wide else 0.1], np.float32),
                          np.array([giraffe]))


@pytest.mark.slow
def test_words_from_the_detector_are_said_where_it_sees_them(tmp_path, capsys):
    """learn-word --from-detector without photos: the shipped captioner gains the detector's
    words it lacks; a caption says "giraffe" exactly when the detector sees one."""
    out = tmp_path / "zero-shot"
    assert main(["learn-word", "giraffe", "--from-detector", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["words"] == ["giraffe"] and result["photos"] == 0 and result["perplexity"] is None
    assert len(result["analogues"]["giraffe"]) == 3
    m = scenetalk.load(captioner=out)
    captioner = m.captioner
    captioner.gate._detector = FakeDetector()
    wide, tall = Image.new("RGB", (96, 64), (200, 180, 90)), Image.new("RGB", (64, 96), (200, 180, 90))
    [[w], [t]] = captioner.caption([wide, tall])
    assert "giraffe" in w.text.split() and "giraffe" not in t.text.split()
    # every class word the captioner lacks, when no word is named
    assert main(["learn-word", "--from-detector", "--out", str(tmp_path / "all"), "--json", "--quiet"]) == 0
    every = json.loads(capsys.readouterr().out)["words"]
    assert "giraffe" in every and "dog" not in every and len(every) > 5


@pytest.mark.slow
def test_a_damaged_detector_words_entry_is_one_line(tmp_path):
    import shutil

    from scenetalk.checkpoint import CheckpointError
    from scenetalk.weights import shipped_reranker

    folder = tmp_path / "ckpt"
    shutil.copytree(shipped_reranker(), folder)
    config = json.loads((folder / "config.json").read_text())
    config["detector_words"] = {"words": "giraffe"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="damaged config \\(detector_words\\)"):
        scenetalk.load(captioner=folder).caption([Image.new("RGB", (32, 32))])
