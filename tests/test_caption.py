"""The user's first minutes: the shipped captioner, ``scenetalk caption`` and ``scenetalk.load()``,
on the bundled sample photos, including the bad inputs a real folder holds."""

from __future__ import annotations

import json

import pytest
from conftest import copy_sample_photos, write_colour_squares
from PIL import Image

import scenetalk
from scenetalk.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from scenetalk.cli import main
from scenetalk.data.registry import load_dataset
from scenetalk.data.sample_photos import sample_photo_paths
from scenetalk.data.text import Vocabulary
from scenetalk.errors import ImageError, ScenetalkError
from scenetalk.features.jobs import extract_images
from scenetalk.features.store import FeatureStore
from scenetalk.results import to_data
from scenetalk.weights import shipped_captioner

PERSON_WORDS = {"man", "woman", "person", "boy", "girl", "men", "women", "people", "astronaut", "child", "guy", "lady"}


@pytest.fixture(scope="module")
def model():
    return scenetalk.load()


@pytest.fixture
def photos(tmp_path):
    return copy_sample_photos(tmp_path / "photos")


@pytest.mark.slow
def test_shipped_captioner_is_small_and_half_precision():
    folder = shipped_captioner()
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert size <= 30 * 2**20
    pytest.importorskip("torch", reason="reads the weights in PyTorch (the train extra)")
    tensors, meta = load_checkpoint(folder)
    assert meta["kind"] == "caption_generator" and meta["extractor_id"].startswith("efficientnet-lite")


@pytest.mark.slow
def test_api_captions_paths_and_pil_images_alike(model):
    paths = sample_photo_paths()
    by_path = model.caption([str(p) for p in paths], beam_size=3, n_best=2)
    assert len(by_path) == len(paths)
    vocabulary = set(model.captioner.vocab.itos) - set(Vocabulary.SPECIALS)  # no <unk>, <end> ...
    for caps in by_path:
        assert len(caps) == 2 and caps[0].score >= caps[1].score
        words = caps[0].text.split()
        assert words and set(words) <= vocabulary, caps[0].text
        assert caps[0].log_prob < 0
    # the words follow the photo: the astronaut is a person, and no two photos get the same caption
    assert paths[0].name == "astronaut.png" and PERSON_WORDS & set(by_path[0][0].text.split()), by_path[0][0].text
    assert len({caps[0].text for caps in by_path}) == len(paths), [caps[0].text for caps in by_path]
    pil = Image.open(paths[1])
    alone = model.caption(pil, beam_size=3, n_best=2)[0]  # batch of one: same captions, float noise aside
    assert [c.text for c in alone] == [c.text for c in by_path[1]]
    assert [c.log_prob for c in alone] == pytest.approx([c.log_prob for c in by_path[1]], abs=1e-4)


@pytest.mark.slow
def test_api_refuses_a_missing_image_by_name(model, tmp_path):
    with pytest.raises(ImageError, match="nope.jpg"):
        model.caption(str(tmp_path / "nope.jpg"))


@pytest.mark.slow
def test_cli_captions_a_folder_as_json(photos, capsys):
    assert main(["caption", str(photos), "--beam", "3", "--n-best", "2", "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["image"].split("/")[-1] for r in out] == sorted(p.name for p in sample_photo_paths())
    assert all(len(r["captions"]) == 2 and r["captions"][0]["text"] for r in out)


@pytest.mark.slow
def test_cli_mixed_folder_captions_the_images_and_reports_the_rest(photos, capsys):
    (photos / "notes.txt").write_text("not a photo")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    assert main(["caption", str(photos), "--beam", "2", "--quiet"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == len(sample_photo_paths()) and all("\t" in line for line in lines)
    assert "notes.txt" in captured.err and "broken.jpg" in captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.jpg", "no such file"),
    (lambda d: d, "no images in this folder"),
])
def test_cli_fails_only_when_nothing_can_be_captioned(tmp_path, capsys, make, message):
    assert main(["caption", str(make(tmp_path)), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "nothing to caption" in err and "Traceback" not in err


@pytest.mark.slow
def test_cli_all_images_corrupt_is_an_error(tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(b"not a jpeg")
    assert main(["caption", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "a.jpg" in err and "no image could be captioned" in err


def test_cli_unknown_checkpoint(photos, tmp_path, capsys):
    assert main(["caption", str(photos), "--checkpoint", str(tmp_path / "nowhere")]) == 2
    assert "not a scenetalk checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_checkpoint_for_other_features_is_refused_naming_both_ids(tmp_path):
    pytest.importorskip("torch", reason="writes a checkpoint with PyTorch (the train extra)")
    tensors, meta = load_checkpoint(shipped_captioner())
    meta["extractor_id"] = "efficientnet-lite0-224-000000000000"
    save_checkpoint(tmp_path / "other", tensors, meta)
    with pytest.raises(CheckpointError, match="000000000000.*installed backbone gives 'efficientnet-lite0-224-"):
        scenetalk.load(tmp_path / "other").caption(sample_photo_paths()[0])


@pytest.fixture(scope="module")
def squares(tmp_path_factory):
    """A small generator trained on the installed backbone's features of noisy red, blue and
    green squares (conftest's toy dataset): a checkpoint ``scenetalk.load`` opens like any other."""
    pytest.importorskip("torch", reason="trains a captioner (the train extra)")
    from scenetalk.training.caption_trainer import CaptionTrainer, TrainConfig

    folder = tmp_path_factory.mktemp("squares")
    data_json = write_colour_squares(folder)
    extract_images(str(data_json), folder / "features", images_dir=folder / "images", progress=False)
    store = FeatureStore.open(folder / "features")
    cfg = TrainConfig(model={"type": "mrnn", "dropout": 0.0, "embed1_dim": 16, "embed2_dim": 32, "multimodal_dim": 64},
                      min_count=1, batch_size=6, optimizer="adam", lr=0.01, epochs=30, eval_every=1000,
                      checkpoint_every=1000)
    dataset = load_dataset(str(data_json))
    CaptionTrainer(cfg, dataset, store.model_input("global"), store.row_index, store.extractor_id, folder / "run",
                   progress=False).run()
    return folder, dataset


@pytest.mark.slow
def test_a_trained_captioner_names_the_colour_of_each_photo(squares, capsys):
    folder, dataset = squares
    val = dataset.split("val")
    paths = [str(folder / "images" / im.relpath) for im in val]
    colours = {"red", "blue", "green"}
    captions = scenetalk.load(folder / "run" / "best").caption(paths, beam_size=1)
    for im, caps in zip(val, captions):
        colour = im.sentences[0].tokens[1]  # "a <colour> square"
        assert [w for w in caps[0].text.split() if w in colours] == [colour], (im.relpath, caps[0].text)
    # and the command prints the same words
    assert main(["caption", *paths[:3], "--checkpoint", str(folder / "run" / "best"), "--beam", "1", "--quiet"]) == 0
    printed = [line.split("\t")[1] for line in capsys.readouterr().out.strip().splitlines()]
    assert printed == [caps[0].text for caps in captions[:3]]


# -- captioning a folder from Python: the same skipping rules as ``scenetalk caption`` ------------------------

def test_collect_inputs_lists_folders_and_names_what_it_leaves_out(tmp_path):
    from scenetalk.vision.images import collect_inputs

    (tmp_path / "sub").mkdir()
    for name in ("a.png", "sub/b.JPG", ".hidden.jpg"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub" / "notes.txt").write_text("not a photo")
    assert collect_inputs([tmp_path]) == ([str(tmp_path / "a.png")], [])
    paths, problems = collect_inputs([tmp_path, tmp_path / "sub" / "notes.txt"], recursive=True)
    assert paths == [str(tmp_path / "a.png"), str(tmp_path / "sub" / "b.JPG"), str(tmp_path / "sub" / "notes.txt")]
    assert problems == [f"{tmp_path}: skipped 1 file(s) that are not images by name (e.g. sub/notes.txt)"]
    assert collect_inputs([tmp_path / "sub", tmp_path / "nope.jpg"]) == ([str(tmp_path / "sub" / "b.JPG")], [
        f"{tmp_path / 'sub'}: skipped 1 file(s) that are not images by name (e.g. notes.txt)",
        f"{tmp_path / 'nope.jpg'}: no such file or folder"])


@pytest.mark.slow
def test_api_captions_a_folder_skipping_what_it_cannot_read(model, photos):
    (photos / "notes.txt").write_text("not a photo")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    lines = []
    done = list(model.caption_files(photos, beam_size=2, n_best=2, on_problem=lines.append, progress=False))
    assert lines == [f"{photos}: skipped 1 file(s) that are not images by name (e.g. notes.txt)",
                     f"skipped {photos / 'broken.jpg'}: not an image file (or a format Pillow cannot read)",
                     "1 of 5 image(s) could not be read"]
    names = sorted(p.name for p in sample_photo_paths())
    assert [d.image for d in done] == [str(photos / n) for n in names]
    # The very captions ``caption`` gives these photos.
    alone = model.caption([photos / n for n in names], beam_size=2, n_best=2)
    assert [[c.text for c in d.captions] for d in done] == [[c.text for c in caps] for caps in alone]
    assert list(to_data(done[0])) == ["image", "captions"]
    assert list(to_data(done[0])["captions"][0]) == ["text", "log_prob", "score", "complete", "words"]


@pytest.mark.parametrize("settings, message", [
    ({"beam_size": 2, "n_best": 3}, r"need 1 <= --n-best <= --beam \(got --beam 2, --n-best 3\)"),
    ({"beam_size": 0}, "need 1 <= --n-best <= --beam"),
    ({"batch_size": 0}, r"--batch-size and --max-len must be at least 1 \(got 0 and 20\)"),
    ({"max_len": 0}, r"--batch-size and --max-len must be at least 1 \(got 32 and 0\)"),
])
def test_api_caption_files_refuses_settings_before_any_work(tmp_path, settings, message):
    lines = []
    m = scenetalk.load(tmp_path / "no-checkpoint")  # never opened: the settings are refused first
    with pytest.raises(ScenetalkError, match=message):
        m.caption_files(tmp_path / "missing.jpg", on_problem=lines.append, **settings)
    assert lines == []


def test_api_caption_files_with_nothing_to_caption_says_why(tmp_path):
    lines = []
    m = scenetalk.load(tmp_path / "no-checkpoint")  # never opened: nothing to caption is found first
    with pytest.raises(ScenetalkError, match="nothing to caption"):
        m.caption_files([tmp_path / "missing.jpg", tmp_path], on_problem=lines.append)
    assert lines == [f"{tmp_path / 'missing.jpg'}: no such file or folder",
                     f"{tmp_path}: no images in this folder (use --recursive to look in sub-folders)"]


def test_api_caption_files_warns_by_default_and_fails_when_nothing_is_read(model, tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning) as warned, pytest.raises(ScenetalkError, match="no image could be captioned"):
        list(model.caption_files(tmp_path, progress=False))
    assert [str(w.message) for w in warned] == [
        f"skipped {tmp_path / 'a.jpg'}: not an image file (or a format Pillow cannot read)",
        "1 of 1 image(s) could not be read"]


@pytest.mark.slow
def test_cli_json_has_the_keys_of_every_caption(photos, capsys):
    assert main(["caption", str(photos / "rocket.jpg"), "--beam", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["image"] == str(photos / "rocket.jpg")
    assert list(out[0]) == ["image", "captions"]
    assert list(out[0]["captions"][0]) == ["text", "log_prob", "score", "complete", "words"]


def test_the_shipped_english_captioners_are_chosen_by_name(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from scenetalk.weights import CAPTIONER_NAMES, shipped_reranker

    assert list(CAPTIONER_NAMES) == ["updown", "mrnn-lstm"]
    default = scenetalk.load().captioner
    assert default.checkpoint == shipped_captioner() and default.generator.image_input == "grid"
    assert default.extractor.detector is None           # the grid alone: no detector for a new photo
    named = scenetalk.load(captioner="mrnn-lstm").captioner
    assert named.checkpoint == shipped_reranker() and named.generator.image_input == "global"
    photo = sample_photo_paths()[0]
    assert main(["caption", str(photo), "--checkpoint", "mrnn-lstm", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["captions"][0]["text"] == named.caption(photo)[0][0].text
    # a folder of that name is a folder, not the shipped model
    monkeypatch.chdir(tmp_path)
    Path("mrnn-lstm").mkdir()
    assert main(["caption", str(photo), "--checkpoint", "mrnn-lstm", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "mrnn-lstm" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
