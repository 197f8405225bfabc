"""Bad training configs and damaged checkpoint configs are refused before anything is
allocated: one line naming the file and key, exit 2 from ``scenetalk train``, a
``ScenetalkError`` from ``scenetalk.train``, no traceback and no run folder left behind."""

import copy
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

from safetensors.torch import load_file

import scenetalk
from scenetalk.checkpoint import load_alignment, load_generator, save_checkpoint
from scenetalk.cli import main
from scenetalk.data.text import Vocabulary
from scenetalk.errors import CheckpointError, ScenetalkError
from scenetalk.models import build_alignment, build_generator
from scenetalk.training.config import read_config, shipped_configs, train_config

GOOD_CAPTION = {"model": {"type": "mrnn", "embed1_dim": 8, "embed2_dim": 8, "multimodal_dim": 8}, "epochs": 1}
GOOD_ALIGN = {"model": {"embed_dim": 8, "word_dim": 8, "hidden_dim": 8}, "epochs": 1}

# (task, changes to the good train: section, the key the message must name)
BAD_TRAIN = [
    ("caption", {"lr": float("nan")}, "train.lr"),
    ("caption", {"lr": float("inf")}, "train.lr"),
    ("caption", {"lr": -1}, "train.lr"),
    ("caption", {"lr": 0}, "train.lr"),
    ("caption", {"lr": "abc"}, "train.lr"),
    ("caption", {"lr": True}, "train.lr"),
    ("caption", {"lr": [0.1]}, "train.lr"),
    ("caption", {"lr": None}, "train.lr"),
    ("caption", {"epochs": 0}, "train.epochs"),
    ("caption", {"epochs": -1}, "train.epochs"),
    ("caption", {"epochs": 2.5}, "train.epochs"),
    ("caption", {"epochs": "3"}, "train.epochs"),
    ("caption", {"epochs": True}, "train.epochs"),
    ("caption", {"epochs": 10**7}, "train.epochs"),
    ("caption", {"batch_size": 0}, "train.batch_size"),
    ("caption", {"batch_size": -5}, "train.batch_size"),
    ("caption", {"batch_size": 1.5}, "train.batch_size"),
    ("caption", {"batch_size": "big"}, "train.batch_size"),
    ("caption", {"batch_size": 10**6}, "train.batch_size"),
    ("caption", {"eval_every": 0}, "train.eval_every"),
    ("caption", {"checkpoint_every": 0}, "train.checkpoint_every"),
    ("caption", {"max_steps": 0}, "train.max_steps"),
    ("caption", {"max_steps": 1.5}, "train.max_steps"),
    ("caption", {"seed": -1}, "train.seed"),
    ("caption", {"seed": 2**40}, "train.seed"),
    ("caption", {"clip": 0}, "train.clip"),
    ("caption", {"clip": float("nan")}, "train.clip"),
    ("caption", {"weight_decay": -0.1}, "train.weight_decay"),
    ("caption", {"optimizer": "adamw"}, "train.optimizer"),
    ("caption", {"optimizer": 3}, "train.optimizer"),
    ("caption", {"lr_schedule": "linear"}, "train.lr_schedule"),
    ("caption", {"precision": "fp16"}, "train.precision"),
    ("caption", {"select_metric": "rouge"}, "train.select_metric"),
    ("caption", {"objective": "rl"}, "train.objective"),
    ("caption", {"min_count": 0}, "train.min_count"),
    ("caption", {"max_words": 0}, "train.max_words"),
    ("caption", {"max_words": 1000}, "train.max_words"),
    ("caption", {"val_images": 0}, "train.val_images"),
    ("caption", {"scst_samples": 0}, "train.scst_samples"),
    ("caption", {"scst_max_len": 0}, "train.scst_max_len"),
    ("caption", {"learning_rate": 0.1}, "learning_rate"),
    ("caption", {"model": "mrnn"}, "train.model"),
    ("caption", {"model": {"type": "transformer"}}, "train.model.type"),
    ("caption", {"model": {"hidden_dim": 16}}, "train.model.type"),
    ("caption", {"model": {"type": "multimodal_rnn", "hidden_dim": 10**9}}, "train.model.hidden_dim"),
    ("caption", {"model": {"type": "multimodal_rnn", "hidden_dim": 512.0}}, "train.model.hidden_dim"),
    ("caption", {"model": {"type": "multimodal_rnn", "word_dim": "512"}}, "train.model.word_dim"),
    ("caption", {"model": {"type": "multimodal_rnn", "cell": "gru"}}, "train.model.cell"),
    ("caption", {"model": {"type": "mrnn", "embed1_dim": -3}}, "train.model.embed1_dim"),
    ("caption", {"model": {"type": "mrnn", "embed1_dim": True}}, "train.model.embed1_dim"),
    ("caption", {"model": {"type": "mrnn", "dropout": 1.5}}, "train.model.dropout"),
    ("caption", {"model": {"type": "mrnn", "dropout": float("nan")}}, "train.model.dropout"),
    ("caption", {"model": {"type": "mrnn", "recurrent_dim": 64}}, "train.model.recurrent_dim"),
    ("caption", {"model": {"type": "mrnn", "foo": 1}}, "train.model.foo"),
    ("caption", {"model": {"type": "mrnn", "embed2_dim": 65_536, "multimodal_dim": 65_536}}, "parameters"),
    ("caption", {"model": {"type": "attention_lstm", "attention_dim": 0}}, "train.model.attention_dim"),
    ("alignment", {"margin": -1}, "train.margin"),
    ("alignment", {"hardest": "yes"}, "train.hardest"),
    ("alignment", {"select_metric": "cider"}, "train.select_metric"),
    ("alignment", {"model": {"score": "sum"}}, "train.model.score"),
    ("alignment", {"model": {"embed_dim": 0}}, "train.model.embed_dim"),
    ("alignment", {"model": {"hidden_dim": 100_000}}, "train.model.hidden_dim"),
    ("alignment", {"model": {"hidden_dim": 40_000, "embed_dim": 40_000}}, "parameters"),
]


def config_dict(tmp_path: Path, task: str, changes: dict) -> dict:
    section = {**copy.deepcopy(GOOD_ALIGN if task == "alignment" else GOOD_CAPTION), **changes}
    return {"task": task, "features": str(tmp_path / "no-features"), "out": str(tmp_path / "run"), "train": section}


def case_id(case) -> str:
    task, changes, _ = case
    return f"{task}-" + "-".join(f"{k}={v!r}"[:40] for k, v in changes.items())


def assert_one_line(err: str, *names: str) -> None:
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0, err
    for name in names:
        assert name in err, (name, err)


@pytest.mark.parametrize("case", BAD_TRAIN, ids=[case_id(c) for c in BAD_TRAIN])
def test_bad_yaml_config_exits_2_naming_file_and_key(case, tmp_path, capsys):
    task, changes, key = case
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(config_dict(tmp_path, task, changes)))
    assert main(["train", str(config)]) == 2
    captured = capsys.readouterr()
    assert_one_line(captured.err, str(config), key)
    assert captured.out == ""
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("case", BAD_TRAIN, ids=[case_id(c) for c in BAD_TRAIN])
def test_bad_dict_config_raises_naming_key(case, tmp_path):
    task, changes, key = case
    with pytest.raises(ScenetalkError) as caught:
        scenetalk.train(config_dict(tmp_path, task, changes), progress=False)
    assert_one_line(str(caught.value), "config", key)
    assert not (tmp_path / "run").exists()


BAD_TOP = [
    ({"out": 5}, "out"),
    ({"features": ["a", "b"]}, "features"),
    ({"dataset": ""}, "dataset"),
    ({"task": "detect"}, "task"),
    ({"train": [1, 2]}, "train"),
    ({"epochs": 1}, "epochs"),  # a train: setting at the top level
]


@pytest.mark.parametrize("changes,key", BAD_TOP, ids=[k for _, k in BAD_TOP])
def test_bad_top_level_keys(changes, key, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({**config_dict(tmp_path, "caption", {}), **changes}))
    assert main(["train", str(config)]) == 2
    assert_one_line(capsys.readouterr().err, str(config), key)
    assert not (tmp_path / "run").exists()


def test_exponent_floats_that_yaml_reads_as_strings_are_numbers(tmp_path):
    # PyYAML reads `lr: 1e-3` as the string "1e-3" (YAML 1.1 wants 1.0e-3); a float field takes it
    config = tmp_path / "ok.yaml"
    config.write_text("train:\n  model: {type: mrnn}\n  lr: 1e-3\n  weight_decay: 0\n")
    path, data = read_config(config)
    cfg = train_config(path, data["train"])
    assert cfg.lr == 0.001 and isinstance(cfg.weight_decay, float)


def test_every_shipped_config_parses_to_its_own_values():
    experiments = sorted((Path(__file__).parents[1] / "benchmarks" / "configs").glob("*.yaml"))
    for name in list(shipped_configs()) + experiments:
        path, data = read_config(name)
        cfg = asdict(train_config(path, data["train"], data.get("task", "caption")))
        assert {k: cfg[k] for k in data["train"]} == data["train"], name


# -- the run folder ---------------------------------------------------------------------------
def write_good(tmp_path: Path) -> Path:
    config = tmp_path / "good.yaml"
    config.write_text(yaml.safe_dump(config_dict(tmp_path, "caption", {})))
    return config


def test_resume_without_a_run_says_so(tmp_path, capsys):
    config = write_good(tmp_path)
    assert main(["train", str(config), "--resume"]) == 2          # no such folder
    assert_one_line(capsys.readouterr().err, str(tmp_path / "run"), "nothing to resume", "--resume")
    assert not (tmp_path / "run").exists()
    (tmp_path / "run").mkdir()                                     # an empty folder
    with pytest.raises(ScenetalkError, match="nothing to resume: no run in this folder"):
        scenetalk.train(config, resume=True, progress=False)
    (tmp_path / "run" / "notes.txt").write_text("mine")             # a folder of something else
    assert main(["train", str(config), "--resume"]) == 2
    assert_one_line(capsys.readouterr().err, "nothing to resume")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["notes.txt"]


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    config = write_good(tmp_path)
    (tmp_path / "run").write_text("not a folder")
    assert main(["train", str(config)]) == 2
    assert_one_line(capsys.readouterr().err, str(tmp_path / "run"), "is a file")
    assert (tmp_path / "run").read_text() == "not a folder"


# -- damaged checkpoint config.json ------------------------------------------------------------
VOCAB = Vocabulary.build([["a", "red", "square"], ["a", "blue", "circle"]], min_count=1)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny caption generator and a tiny alignment model, saved with save_checkpoint."""
    folder = tmp_path_factory.mktemp("checkpoints")
    gen_config = {"type": "mrnn", "recurrent": "lstm", "embed1_dim": 8, "embed2_dim": 8, "recurrent_dim": 8,
                  "multimodal_dim": 8, "dropout": 0.0, "vocab_size": len(VOCAB), "image_dim": 6}
    save_checkpoint(folder / "generator", build_generator(gen_config).state_dict(),
                    {"kind": "caption_generator", "model": gen_config, "vocabulary": VOCAB.to_dict(),
                     "extractor_id": "test"})
    align_config = {"embed_dim": 8, "word_dim": 8, "hidden_dim": 8, "dropout": 0.0, "score": "max",
                    "vocab_size": len(VOCAB), "region_dim": 6}
    save_checkpoint(folder / "alignment", build_alignment(align_config).state_dict(),
                    {"kind": "alignment", "model": align_config, "vocabulary": VOCAB.to_dict(), "extractor_id": "test"})
    return folder


def set_model(**fields):
    return lambda meta: meta["model"].update(fields)


def drop_model_key(key):
    return lambda meta: meta["model"].pop(key)


# (which checkpoint, how config.json is damaged, what the message must name)
DAMAGED = [
    ("generator", set_model(type="transformer"), "model.type"),
    ("generator", drop_model_key("type"), "model.type"),
    ("generator", set_model(embed1_dim=-4), "model.embed1_dim"),
    ("generator", set_model(embed1_dim=10**9), "model.embed1_dim"),
    ("generator", set_model(embed2_dim=65_536, multimodal_dim=65_536, recurrent_dim=65_536), "parameters"),
    ("generator", set_model(vocab_size=999), "vocab_size"),
    ("generator", lambda meta: meta["vocabulary"]["words"].append("extra"), "vocab_size"),
    ("generator", set_model(dropout="x"), "model.dropout"),
    ("generator", set_model(embed1_dim=8.0), "model.embed1_dim"),
    ("generator", set_model(embed1_dim=True), "model.embed1_dim"),
    ("generator", set_model(image_dim=0), "model.image_dim"),
    ("generator", set_model(recurrent="gru"), "model.recurrent"),
    ("generator", set_model(extra_layer=3), "model.extra_layer"),
    ("generator", lambda meta: meta.update(model="mrnn"), "'model'"),
    ("generator", lambda meta: meta.update(vocabulary=[]), "vocabulary"),
    ("generator", lambda meta: meta["vocabulary"].update(words="abc"), "vocabulary.words"),
    ("generator", lambda meta: meta.update(kind="alignment"), "not a caption generator"),
    ("generator", lambda meta: meta.update(format=99), "newer"),
    ("generator", set_model(embed1_dim=16), "'E_I.weight' has shape (9, 8)"),
    ("generator", set_model(image_dim=7), "(8, 6)"),
    ("generator", set_model(recurrent="relu", recurrent_dim=None), "'U_r.weight'"),
    ("alignment", set_model(score="sum"), "model.score"),
    ("alignment", set_model(hidden_dim=-1), "model.hidden_dim"),
    ("alignment", set_model(type="alignment"), "model.type"),
    ("alignment", set_model(vocab_size=10**12), "vocab_size"),
]


@pytest.mark.parametrize("case", DAMAGED, ids=[f"{c[0]}-{c[2]}" for c in DAMAGED])
def test_damaged_checkpoint_config_names_folder_and_key(case, checkpoints, tmp_path):
    which, damage, name = case
    folder = tmp_path / which
    shutil.copytree(checkpoints / which, folder)
    meta = json.loads((folder / "config.json").read_text())
    damage(meta)
    (folder / "config.json").write_text(json.dumps(meta))
    load = load_generator if which == "generator" else load_alignment
    with pytest.raises(CheckpointError) as caught:
        load(folder)
    assert_one_line(str(caught.value), str(folder), name)


def test_shape_message_names_the_tensor_and_both_shapes(checkpoints, tmp_path):
    folder = tmp_path / "generator"
    shutil.copytree(checkpoints / "generator", folder)
    meta = json.loads((folder / "config.json").read_text())
    meta["model"]["multimodal_dim"] = 12
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"tensor 'V_w.weight' has shape \(8, 8\) but .* needs \(12, 8\)"):
        load_generator(folder)


def test_tiny_checkpoints_load_back(checkpoints):
    model, vocab, _ = load_generator(checkpoints / "generator")
    assert len(vocab) == len(VOCAB) and model.config.embed1_dim == 8
    model, vocab, _ = load_alignment(checkpoints / "alignment")
    assert len(vocab) == len(VOCAB) and model.config.hidden_dim == 8


@pytest.mark.parametrize("name,load", [("captioner", load_generator), ("regions", load_generator),
                                       ("alignment", load_alignment)])
def test_shipped_checkpoints_load_exactly_as_before(name, load):
    folder = Path(scenetalk.__file__).parent / "weights" / name
    model, vocab, meta = load(folder)
    saved = load_file(str(folder / "model.safetensors"))
    assert set(model.state_dict()) == set(saved)
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key].float()), key
    assert len(vocab) == meta["model"]["vocab_size"]
