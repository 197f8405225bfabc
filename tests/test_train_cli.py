"""``scenetalk train``: configs as data, clear errors, and a run end to end on a tiny
dataset written by the test (Karpathy JSON + a feature store of synthetic images)."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

import scenetalk
from scenetalk.cli import main
from scenetalk.errors import ScenetalkError
from scenetalk.metrics.captions import java_available
from scenetalk.models import GENERATORS
from scenetalk.results import to_data, to_json
from scenetalk.training.config import TrainResult, read_config, shipped_configs, train_config
from scenetalk.training.evaluation import CaptionEvaluation, RetrievalEvaluation

#: the keys of `scenetalk evaluate --out` before the evaluation moved into the library
CAPTION_REPORT_KEYS = {"split", "images", "scores", "in_training_set", "vocabulary_used", "mean_length", "perplexity",
                       "what", "dataset", "seconds", "examples", "char_scores"}
RETRIEVAL_REPORT_KEYS = {"what", "dataset", "split", "images", "sentences", "folds", "scoring_seconds",
                         "image_to_text", "text_to_image"}


def test_every_shipped_config_is_valid():
    configs = shipped_configs()
    assert {"multimodal_rnn_flickr8k", "mrnn_flickr8k", "mrnn_lstm_flickr8k", "mrnn_lstm_scst_flickr8k",
            "attention_lstm_flickr8k", "alignment_flickr8k", "alignment_hardest_flickr8k"} <= set(configs)
    # and the experiments BENCHMARKS.md names (benchmarks/configs)
    experiments = sorted(str(p) for p in (Path(__file__).parents[1] / "benchmarks" / "configs").glob("*.yaml"))
    assert experiments
    for name in list(configs) + experiments:
        path, data = read_config(name)
        task = data.get("task", "caption")
        cfg = train_config(path, data["train"], task)
        if task == "alignment":
            assert cfg.select_metric == "rsum"
            assert not cfg.init_from or cfg.init_from.startswith(("runs/alignment-", "runs/new-words/alignment/"))
        elif cfg.init_from:  # fine-tuning: the model comes from the run it names
            assert cfg.init_from.startswith("runs/") and cfg.objective == "scst"
        else:
            assert cfg.model["type"] in GENERATORS


def test_config_errors_name_the_file_and_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  learning_rate: 0.1\n")
    assert main(["train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "learning_rate" in err and "Traceback" not in err
    bad.write_text("train: [unclosed\n")
    assert main(["train", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["train", "no-such-config"]) == 2
    assert "shipped configs" in capsys.readouterr().err


@pytest.mark.slow
def test_train_end_to_end_on_a_tiny_dataset(squares, tmp_path, capsys):
    capsys.readouterr()
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(f"""
dataset: {squares / 'data.json'}
features: {squares / 'features'}
out: {tmp_path / 'run'}
train:
  model: {{type: multimodal_rnn, cell: lstm, word_dim: 16, hidden_dim: 16, dropout: 0.0}}
  min_count: 1
  batch_size: 6
  optimizer: adam
  lr: 0.01
  epochs: 40
  eval_every: 20
  checkpoint_every: 20
""")
    # 40 epochs: at 20 the tiny model's captions were right but on some CPUs it had barely
    # learned to condition their likelihood on the photo (median rank 2.5 below)
    assert main(["train", str(cfg), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["steps"] == 160
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()
    # a second run into the same folder must say --resume, not overwrite
    assert main(["train", str(cfg), "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    # the trained generator ranks images and sentences (m-RNN's retrieval) on the val split
    assert main(["evaluate", str(tmp_path / "run" / "best"), "--retrieval", "--dataset", str(squares / "data.json"),
                 "--features", str(squares / "features"), "--split", "val", "--out", str(tmp_path / "r.json")]) == 0
    assert "+12 training images for the prior" in capsys.readouterr().out  # all 12: fewer than 100
    report = json.loads((tmp_path / "r.json").read_text())
    assert RETRIEVAL_REPORT_KEYS <= set(report) and report["method"] == "generative"
    assert report["images"] == 6 and report["sentences"] == 12
    # two val images of each colour: a model that knows colours puts the right image in the top 2
    # (chance: 1 in 3); print what it got if not
    assert report["text_to_image"]["median_rank"] <= 2, report
    assert report["image_to_text"]["median_rank"] <= 4, report


# -- the same, from Python: scenetalk.train and scenetalk.evaluate ----------------------------
def tiny_config(squares: Path, task: str = "caption") -> dict:
    if task == "alignment":
        model = {"embed_dim": 16, "word_dim": 8, "hidden_dim": 16, "dropout": 0.0}
    else:
        model = {"type": "multimodal_rnn", "cell": "lstm", "word_dim": 16, "hidden_dim": 16, "dropout": 0.0}
    return {"task": task, "dataset": str(squares / "data.json"), "features": str(squares / "features"),
            "train": {"model": model, "min_count": 1, "batch_size": 6, "optimizer": "adam", "lr": 0.01,
                      "epochs": 5, "eval_every": 10, "checkpoint_every": 10}}


@pytest.fixture(scope="module")
def caption_run(squares, tmp_path_factory):
    return scenetalk.train(tiny_config(squares), out=tmp_path_factory.mktemp("runs") / "caption", progress=False)


@pytest.mark.slow
def test_train_from_python_returns_the_run(squares, caption_run):
    run = caption_run
    assert isinstance(run, TrainResult) and run.task == "caption" and run.resumed_from_step is None
    assert run.steps == 20  # 24 training sentences in batches of 6, 5 epochs
    assert (run.best / "model.safetensors").is_file() and run.best == run.out / "best"
    history = json.loads(run.history.read_text())
    assert [h["step"] for h in history["val"]] == [4, 8, 10, 12, 16, 20]  # every epoch and every 10 steps
    assert run.best_val == max(history["val"], key=lambda h: h["cider"])  # chosen on val CIDEr-D
    data = json.loads(to_json(run))
    assert data["out"] == str(run.out) and data["steps"] == 20 and data["best_val"]["step"] == run.best_val["step"]
    assert data["history"] == str(run.out / "history.json")
    # the run folder is refused for a new run; resume=True continues it (here: nothing left to do)
    with pytest.raises(ScenetalkError, match="holds a run already.*--resume"):
        scenetalk.train(tiny_config(squares), out=run.out, progress=False)
    again = scenetalk.train(tiny_config(squares), out=run.out, resume=True, progress=False)
    assert again.resumed_from_step == 20 and again.steps == 20


def test_train_config_given_as_a_dict_is_checked_like_a_file():
    with pytest.raises(ScenetalkError, match=r"^config: train: unknown key 'learning_rate'"):
        scenetalk.train({"train": {"learning_rate": 0.1}})
    with pytest.raises(ScenetalkError, match=r"^config: unknown key 'epochs'"):
        scenetalk.train({"epochs": 3})
    with pytest.raises(ScenetalkError, match="task must be one of"):
        scenetalk.train({"task": "translation"})
    with pytest.raises(ScenetalkError, match="needs 'features' and 'out'"):
        scenetalk.train({"train": {"model": {"type": "mrnn"}}})


@pytest.mark.slow
@pytest.mark.skipif(not java_available(), reason="Java not installed: the PTB tokenizer needs it")
def test_evaluate_from_python_gives_the_command_s_report(squares, caption_run, tmp_path, capsys):
    common = {"features": str(squares / "features"), "dataset": str(squares / "data.json"), "split": "val"}
    result = scenetalk.evaluate(caption_run.best, beam_size=1, meteor=False, progress=False, **common)
    assert isinstance(result, CaptionEvaluation) and result.images == 6
    assert len(result.captions) == 6 and result.examples == result.captions  # fewer than 10: all of them
    assert result.perplexity > 1 and "beam 1" in result.what
    data = to_data(result)
    assert set(data) == CAPTION_REPORT_KEYS and "METEOR" not in data["scores"]
    assert main(["evaluate", str(caption_run.best), "--features", common["features"], "--dataset", common["dataset"],
                 "--split", "val", "--beam", "1", "--no-meteor", "--quiet", "--out", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert f"perplexity {result.perplexity:.2f}" in out and f"saved {tmp_path / 'c.json'}" in out
    report = json.loads((tmp_path / "c.json").read_text())
    assert set(report) == CAPTION_REPORT_KEYS
    assert report["scores"] == data["scores"] and report["examples"] == data["examples"]


@pytest.mark.slow
@pytest.mark.skipif(not java_available(), reason="Java not installed: the PTB tokenizer needs it")
def test_evaluate_the_nearest_neighbour_baseline_from_python(squares):
    result = scenetalk.evaluate(nearest_neighbour=True, features=str(squares / "features"),
                                dataset=str(squares / "data.json"), split="val", meteor=False)
    assert result.perplexity is None and to_data(result)["perplexity"] is None
    assert result.what.startswith("nearest-neighbour") and result.in_training_set == 1.0
    colours = ("red", "blue", "green")  # image i of write_colour_squares is colours[i % 3]
    assert result.captions == {f"{i}.jpg": f"a {colours[i % 3]} square" for i in range(12, 18)}


@pytest.mark.slow
def test_evaluate_needs_a_checkpoint_or_the_baseline(squares):
    with pytest.raises(ScenetalkError, match="one of a CHECKPOINT, --nearest-neighbour or --human-agreement"):
        scenetalk.evaluate(features=str(squares / "features"))
    with pytest.raises(ScenetalkError, match="--retrieval needs a CHECKPOINT"):
        scenetalk.evaluate(nearest_neighbour=True, retrieval=True, features=str(squares / "features"),
                           dataset=str(squares / "data.json"))


@pytest.mark.slow
def test_generative_retrieval_from_python(squares, caption_run):
    result = scenetalk.evaluate(caption_run.best, retrieval=True, features=str(squares / "features"),
                                dataset=str(squares / "data.json"), split="val", progress=False)
    assert isinstance(result, RetrievalEvaluation) and result.method == "generative"
    assert (result.images, result.sentences, result.prior_images, result.folds) == (6, 12, 12, 1)
    assert RETRIEVAL_REPORT_KEYS <= set(json.loads(to_json(result)))
    assert 1 <= result.text_to_image["median_rank"] <= 6 and 1 <= result.image_to_text["median_rank"] <= 12


@pytest.mark.slow
def test_alignment_trained_and_evaluated_from_python(squares, tmp_path, capsys):
    run = scenetalk.train(tiny_config(squares, "alignment"), out=tmp_path / "align", progress=False)
    assert run.task == "alignment" and "rsum" in run.best_val and run.steps == 20
    common = {"features": str(squares / "features"), "dataset": str(squares / "data.json"), "split": "val"}
    result = scenetalk.evaluate(run.best, **common)
    assert isinstance(result, RetrievalEvaluation) and result.method == "alignment" and result.prior_images is None
    assert (result.images, result.sentences, result.folds) == (6, 12, 1)
    assert set(json.loads(to_json(result))) == RETRIEVAL_REPORT_KEYS | {"method", "prior_images"}
    # two folds of three val images: ranks are within a fold, so no rank is above 3 images / 6 sentences
    folds = scenetalk.evaluate(run.best, folds=2, **common)
    assert folds.folds == 2 and folds.text_to_image["mean_rank"] <= 3 and folds.image_to_text["mean_rank"] <= 6
    assert folds.text_to_image["R@5"] == 100.0
    assert main(["evaluate", str(run.best), "--features", common["features"], "--dataset", common["dataset"],
                 "--split", "val", "--folds", "2"]) == 0
    assert "val, 6 images, 12 sentences, mean of 2 folds" in capsys.readouterr().out


@pytest.mark.slow
def test_resume_from_a_damaged_run_state_is_one_line(squares, caption_run, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(caption_run.out, out)
    meta_file = out / "last" / "config.json"
    meta = json.loads(meta_file.read_text())
    del meta["trainer"]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ScenetalkError, match="damaged run state"):
        scenetalk.train(tiny_config(squares), out=out, resume=True, progress=False)


@pytest.mark.slow
def test_a_region_attention_captioner_trains_and_captions_photo_files_in_both_engines(squares, tmp_path, monkeypatch):
    """The up-down model reads the store's regions and grid in training and, for a new photo,
    the detector's regions and the grid the captioner extracts itself: the same vectors (up to
    the store's float16), so the same captions; exported, ONNX Runtime captions alike."""
    from scenetalk.features.store import FeatureStore
    from scenetalk.training.export import export_checkpoint
    from scenetalk.vision.images import load_image

    config = tiny_config(squares)
    config["train"].update(model={"type": "updown", "feature_dim": 16, "word_dim": 8, "hidden_dim": 16,
                                  "attention_dim": 8, "dropout": 0.0}, epochs=20)
    run = scenetalk.train(config, out=tmp_path / "updown", progress=False)
    photos = [squares / "images" / f"{i}.jpg" for i in (12, 13, 14)]    # val: red, blue, green
    monkeypatch.setenv("SCENETALK_ENGINE", "torch")
    captioner = scenetalk.load(run.best).captioner
    store = FeatureStore.open(squares / "features")
    stored = store.model_input("regions+grid").numpy()[store.rows(["12.jpg", "13.jpg", "14.jpg"])]
    extracted = captioner.features([load_image(p) for p in photos])
    assert extracted.shape == stored.shape == (3, 20 + store.grid.shape[1], store.feature_dim)
    assert np.abs(extracted - stored).max() < 0.05
    said = [c[0].text for c in scenetalk.load(run.best).caption(photos, beam_size=3)]
    assert [next(w for w in ("red", "blue", "green") if w in s) for s in said] == ["red", "blue", "green"], said
    export_checkpoint(run.best)
    monkeypatch.delenv("SCENETALK_ENGINE")
    onnx_said = [c[0].text for c in scenetalk.load(run.best).caption(photos, beam_size=3)]
    assert onnx_said == said


@pytest.mark.slow
def test_a_captioner_of_the_grid_alone_needs_no_detector_and_reads_a_store_without_regions(squares, tmp_path):
    from scenetalk.captioning.captioner import load_generator_for
    from scenetalk.errors import CheckpointError
    from scenetalk.features.store import FeatureStore

    config = tiny_config(squares)
    small = {"feature_dim": 16, "word_dim": 8, "hidden_dim": 16, "attention_dim": 8, "dropout": 0.0}
    runs = {}
    for kind in ("updown", "updown_grid"):    # both trained on the store with regions
        config["train"].update(model={"type": kind, **small}, epochs=2)
        runs[kind] = scenetalk.train(config, out=tmp_path / kind, progress=False).best
    assert main(["features", str(squares / "data.json"), "--images", str(squares / "images"),
                 "--out", str(tmp_path / "grid-store"), "--quiet"]) == 0
    grid_store = FeatureStore.open(tmp_path / "grid-store")
    assert not grid_store.has_regions
    load_generator_for(runs["updown_grid"], grid_store)           # the same grid features: accepted
    with pytest.raises(CheckpointError, match="made for image features .*ssd"):
        load_generator_for(runs["updown"], grid_store)            # it reads regions this store lacks
    # evaluation reads the store the same way: the grid model from the store without regions
    scores = scenetalk.evaluate(runs["updown_grid"], features=tmp_path / "grid-store", dataset=str(squares / "data.json"),
                                split="val", meteor=False, progress=False).scores
    assert 0 <= scores["BLEU-4"] <= 1
    with pytest.raises(CheckpointError, match="made for image features .*ssd"):
        scenetalk.evaluate(runs["updown"], features=tmp_path / "grid-store", dataset=str(squares / "data.json"),
                           split="val", meteor=False, progress=False)
    assert scenetalk.load(runs["updown_grid"]).captioner.extractor.detector is None
    assert scenetalk.load(runs["updown"]).captioner.extractor.detector is not None


@pytest.mark.slow
def test_evaluate_decodes_with_the_checkpoint_length_penalty_unless_told(squares, caption_run, tmp_path):
    from scenetalk.checkpoint import load_checkpoint, save_checkpoint

    tensors, meta = load_checkpoint(caption_run.best)
    meta["decoding"] = {"length_penalty": 0.75}          # as scripts/ship_checkpoint.py records it
    shipped = save_checkpoint(tmp_path / "shipped", tensors, meta)
    common = {"features": squares / "features", "dataset": str(squares / "data.json"), "split": "val",
              "beam_size": 3, "meteor": False, "progress": False}
    assert "length penalty 0.75" in scenetalk.evaluate(shipped, **common).what
    assert "length penalty" not in scenetalk.evaluate(shipped, length_penalty=0, **common).what
    assert "length penalty" not in scenetalk.evaluate(caption_run.best, **common).what   # none recorded
