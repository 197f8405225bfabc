"""The services below the task packages: folders swapped into place whole (``io.atomic_folder``),
the checkpoint format version, and ``models.eval_mode``, which gives a caller's model back as it was."""

from __future__ import annotations

import json
import os

import pytest

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

from scenetalk.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, load_generator, read_meta, save_checkpoint
from scenetalk.errors import CheckpointError
from scenetalk.io import atomic_folder, umask
from scenetalk.models import eval_mode
from scenetalk.models.alignment import AlignmentConfig, AlignmentModel
from scenetalk.models.mrnn import MRNN, MRNNConfig
from scenetalk.retrieval.scoring import SentenceSet, score_split
from scenetalk.training.caption_trainer import perplexity
from scenetalk.training.loop import Trainer
from scenetalk.weights import region_generator, shipped_alignment, shipped_captioner, shipped_reranker


def entries(folder) -> list[str]:
    return sorted(os.listdir(folder))


# -- io.atomic_folder ------------------------------------------------------------------------

def test_atomic_folder_puts_the_filled_folder_in_place(tmp_path):
    target = tmp_path / "out" / "report"
    with atomic_folder(target) as tmp:
        assert tmp.parent == target.parent and tmp.is_dir() and not target.exists()
        (tmp / "index.html").write_text("new")
        (tmp / "pictures").mkdir()
        (tmp / "pictures" / "a.png").write_bytes(b"png")
    assert (target / "index.html").read_text() == "new"
    assert (target / "pictures" / "a.png").read_bytes() == b"png"
    assert entries(tmp_path / "out") == ["report"]  # no temporary folder left beside it


def test_atomic_folder_replaces_an_old_folder_whole(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_folder(target) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").read_text() == "old"  # the old one stays until the new one is whole
    assert entries(target) == ["new.txt"]
    assert entries(tmp_path) == ["ckpt"]
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask()  # the usual mode, not mkdtemp's private one


def test_atomic_folder_leaves_the_old_folder_intact_on_error(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_folder(target) as tmp:
            (tmp / "new.txt").write_text("half")
            raise RuntimeError("half way")
    assert entries(target) == ["old.txt"] and (target / "old.txt").read_text() == "old"
    assert entries(tmp_path) == ["ckpt"]


def test_atomic_folder_makes_nothing_on_error_when_there_was_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(tmp_path / "new") as tmp:
            (tmp / "a.txt").write_text("a")
            raise KeyboardInterrupt
    assert entries(tmp_path) == []


# -- checkpoints: atomic, with a format version ----------------------------------------------

def test_save_checkpoint_writes_the_format_version(tmp_path):
    folder = save_checkpoint(tmp_path / "ckpt", {"w": torch.ones(2)}, {"kind": "test", "format": 99})
    written = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert written["format"] == CHECKPOINT_FORMAT == 1  # this code's version, whatever meta said
    assert next(iter(written)) == "format"
    assert read_meta(folder)["kind"] == "test"
    assert entries(tmp_path) == ["ckpt"]
    # readable by whoever may read the user's files, like any file they write (not private)
    assert {f: (folder / f).stat().st_mode & 0o777 for f in entries(folder)} == \
        {"config.json": 0o666 & ~umask(), "model.safetensors": 0o666 & ~umask()}


def test_a_failed_save_keeps_the_old_checkpoint(tmp_path):
    folder = save_checkpoint(tmp_path / "ckpt", {"w": torch.ones(2)}, {"kind": "test"})
    with pytest.raises(TypeError):
        save_checkpoint(folder, {"w": torch.zeros(2)}, {"kind": "test", "bad": object()})  # not JSON
    tensors, meta = load_checkpoint(folder)
    assert torch.equal(tensors["w"], torch.ones(2)) and meta["kind"] == "test"
    assert entries(tmp_path) == ["ckpt"]


def test_a_checkpoint_without_a_format_is_read_as_format_1(tmp_path):
    folder = save_checkpoint(tmp_path / "ckpt", {"w": torch.ones(2)}, {"kind": "test"})
    meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    del meta["format"]  # as every checkpoint written before the field existed
    (folder / "config.json").write_text(json.dumps(meta), encoding="utf-8")
    assert read_meta(folder) == {"kind": "test"}


@pytest.mark.parametrize("shipped", [shipped_reranker, shipped_alignment, lambda: region_generator()[0]])
def test_the_shipped_checkpoints_still_load(shipped):
    folder = shipped()
    assert "format" not in json.loads((folder / "config.json").read_text(encoding="utf-8"))  # written before
    assert read_meta(folder)["kind"] in ("caption_generator", "alignment")


@pytest.mark.slow
def test_the_shipped_captioner_loads_as_a_generator():
    model, vocab, meta = load_generator(shipped_captioner())
    assert not model.training and len(vocab) == meta["model"]["vocab_size"]


def test_a_checkpoint_from_a_newer_scenetalk_is_refused_in_one_line(tmp_path):
    folder = save_checkpoint(tmp_path / "ckpt", {"w": torch.ones(2)}, {"kind": "test"})
    meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    meta["format"] = CHECKPOINT_FORMAT + 1
    (folder / "config.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(folder)
    message = str(caught.value)
    assert "made by a newer scenetalk" in message and str(folder) in message and "\n" not in message


def test_a_format_that_is_not_a_version_is_damage(tmp_path):
    folder = save_checkpoint(tmp_path / "ckpt", {"w": torch.ones(2)}, {"kind": "test"})
    (folder / "config.json").write_text(json.dumps({"format": "one", "kind": "test"}), encoding="utf-8")
    with pytest.raises(CheckpointError, match="damaged"):
        read_meta(folder)


# -- models.eval_mode ------------------------------------------------------------------------

def small_mrnn() -> MRNN:
    return MRNN(MRNNConfig(vocab_size=12, image_dim=6, embed1_dim=4, embed2_dim=8, multimodal_dim=8))


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_gives_the_model_back_as_it_was(training):
    model = small_mrnn().train(training)
    with eval_mode(model) as inside:
        assert inside is model and not any(m.training for m in model.modules())
    assert all(m.training == training for m in model.modules())


def test_eval_mode_restores_each_submodule_even_after_an_error():
    model = small_mrnn().train()
    model.dropout.eval()  # a caller's own mix: dropout off, the rest in training mode
    with pytest.raises(ValueError), eval_mode(model):
        raise ValueError
    assert model.training and model.E_I.training and not model.dropout.training


def test_validation_helpers_leave_a_training_model_training():
    torch.manual_seed(0)
    model = small_mrnn().train()
    features = torch.randn(3, 6)
    from scenetalk.captioning.examples import CaptionExamples

    ids = torch.tensor([[1, 4, 5, 2, 0], [1, 6, 2, 0, 0], [1, 7, 8, 9, 2]])
    examples = CaptionExamples(torch.tensor([0, 1, 2]), ids, {0: ["x"], 1: ["y"], 2: ["z"]})
    first = perplexity(model, features, examples, pad_id=0)
    assert model.training and all(m.training for m in model.modules())
    assert perplexity(model, features, examples, pad_id=0) == first  # dropout was off inside

    aligner = AlignmentModel(AlignmentConfig(vocab_size=10, region_dim=6, embed_dim=8, word_dim=4, hidden_dim=8)).train()
    sentences = SentenceSet(ids=torch.tensor([[3, 4, 0], [5, 0, 0]]), image_rows=torch.tensor([0, 1]),
                            image_of=torch.tensor([0, 1]), images=torch.tensor([0, 1]))
    scores = score_split(aligner, torch.randn(2, 4, 6), sentences)
    assert scores.shape == (2, 2) and aligner.training


def test_trainer_formats_validation_scores_for_the_log():
    assert Trainer.format_scores(None, {"perplexity": 12.3456, "step": 300, "cider": 0.5}) == \
        "perplexity 12.346, cider 0.500"
