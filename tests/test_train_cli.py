"""``scenetalk train``: configs as data, clear errors, and a run end to end on a tiny
dataset written by the test (Karpathy JSON + a feature store of synthetic images)."""

import json
from pathlib import Path

from conftest import write_colour_squares

from scenetalk.cli import main
from scenetalk.commands.train import read_config, shipped_configs, train_config
from scenetalk.models import GENERATORS


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
            assert not cfg.init_from or cfg.init_from.startswith("runs/alignment-")
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


def test_train_end_to_end_on_a_tiny_dataset(tmp_path, capsys):
    write_colour_squares(tmp_path)
    assert main(["features", str(tmp_path / "data.json"), "--images", str(tmp_path / "images"),
                 "--out", str(tmp_path / "features"), "--quiet"]) == 0
    capsys.readouterr()
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(f"""
dataset: {tmp_path / 'data.json'}
features: {tmp_path / 'features'}
out: {tmp_path / 'run'}
train:
  model: {{type: multimodal_rnn, cell: lstm, word_dim: 16, hidden_dim: 16, dropout: 0.0}}
  min_count: 1
  batch_size: 6
  optimizer: adam
  lr: 0.01
  epochs: 20
  eval_every: 20
  checkpoint_every: 20
""")
    assert main(["train", str(cfg), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["steps"] == 80
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()
    # a second run into the same folder must say --resume, not overwrite
    assert main(["train", str(cfg), "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    # the trained generator ranks images and sentences (m-RNN's retrieval) on the val split
    assert main(["evaluate", str(tmp_path / "run" / "best"), "--retrieval", "--dataset", str(tmp_path / "data.json"),
                 "--features", str(tmp_path / "features"), "--split", "val", "--out", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["images"] == 6 and report["sentences"] == 12
    # two val images of each colour: a model that knows colours puts the right image in the top 2
    # (chance: 1 in 3); print what it got if not
    assert report["text_to_image"]["median_rank"] <= 2, report
    assert report["image_to_text"]["median_rank"] <= 4, report
