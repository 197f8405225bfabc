"""The user's first minutes: the shipped captioner, ``scenetalk caption`` and ``scenetalk.load()``,
on the bundled sample photos, including the bad inputs a real folder holds."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

import scenetalk
from scenetalk.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from scenetalk.cli import main
from scenetalk.data.sample_photos import sample_photo_paths
from scenetalk.errors import ImageError
from scenetalk.weights import shipped_captioner


@pytest.fixture(scope="module")
def model():
    return scenetalk.load()


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sample_photo_paths():
        shutil.copy(p, folder / p.name)
    return folder


def test_shipped_captioner_is_small_and_half_precision():
    folder = shipped_captioner()
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert size <= 30 * 2**20
    tensors, meta = load_checkpoint(folder)
    assert meta["kind"] == "caption_generator" and meta["extractor_id"].startswith("efficientnet-lite")


def test_api_captions_paths_and_pil_images_alike(model):
    paths = sample_photo_paths()
    by_path = model.caption([str(p) for p in paths], beam_size=3, n_best=2)
    assert len(by_path) == len(paths)
    for caps in by_path:
        assert len(caps) == 2 and caps[0].score >= caps[1].score
        assert caps[0].text and "<unk>" not in caps[0].text.split()
        assert caps[0].log_prob < 0
    pil = Image.open(paths[1])
    alone = model.caption(pil, beam_size=3, n_best=2)[0]  # batch of one: same captions, float noise aside
    assert [c.text for c in alone] == [c.text for c in by_path[1]]
    assert [c.log_prob for c in alone] == pytest.approx([c.log_prob for c in by_path[1]], abs=1e-4)


def test_api_refuses_a_missing_image_by_name(model, tmp_path):
    with pytest.raises(ImageError, match="nope.jpg"):
        model.caption(str(tmp_path / "nope.jpg"))


def test_cli_captions_a_folder_as_json(photos, capsys):
    assert main(["caption", str(photos), "--beam", "3", "--n-best", "2", "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["image"].split("/")[-1] for r in out] == sorted(p.name for p in sample_photo_paths())
    assert all(len(r["captions"]) == 2 and r["captions"][0]["text"] for r in out)


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


def test_cli_all_images_corrupt_is_an_error(tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(b"not a jpeg")
    assert main(["caption", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "a.jpg" in err and "no image could be captioned" in err


def test_cli_unknown_checkpoint(photos, tmp_path, capsys):
    assert main(["caption", str(photos), "--checkpoint", str(tmp_path / "nowhere")]) == 2
    assert "not a scenetalk checkpoint" in capsys.readouterr().err


def test_checkpoint_for_other_features_is_refused_naming_both_ids(tmp_path):
    tensors, meta = load_checkpoint(shipped_captioner())
    meta["extractor_id"] = "efficientnet-lite0-224-000000000000"
    save_checkpoint(tmp_path / "other", tensors, meta)
    with pytest.raises(CheckpointError, match="000000000000.*installed backbone gives 'efficientnet-lite0-224-"):
        scenetalk.load(tmp_path / "other").caption(sample_photo_paths()[0])
