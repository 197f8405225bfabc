"""Benchmark training speed: wall time until the model passes the Karpathy & Fei-Fei row on
Flickr8K validation.

    python benchmarks/bench_train.py                            # the shipped best config
    python benchmarks/bench_train.py mrnn_flickr8k --measure-every 300

Trains a config on cached features (``--features``, default features/flickr8k) exactly as
``scenetalk train`` does, and every ``--measure-every`` steps pauses the clock to caption
the 1,000 validation images with beam 7 and score them with the official coco-caption code
(PTB tokenizer, 5 references), as ``scenetalk evaluate --split val`` does. It prints, for
each milestone (the Karpathy row's BLEU-1..4, METEOR and CIDEr), the training wall time at
which validation first passed it, plus tokens/s. Training time includes the trainer's own
periodic validation (model selection); only the benchmark's beam-7 measurements are
excluded, and their time is printed too. Stops when every milestone is passed or after
``--max-minutes`` of training. Budget: BLEU-4 >= 16.0 within 15 minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

#: Karpathy & Fei-Fei, Flickr8K (their Table 2), the row to pass.
MILESTONES = {"BLEU-1": 0.579, "BLEU-2": 0.383, "BLEU-3": 0.245, "BLEU-4": 0.160, "METEOR": 0.167, "CIDEr-D": 0.318}
BUDGET_MIN = 15.0
DEFAULT_CONFIG = "mrnn_lstm_flickr8k"


class Stop(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help="YAML file or shipped config name")
    parser.add_argument("--features", default=str(REPO / "features" / "flickr8k"))
    parser.add_argument("--root", help="data root (default: ../shared/data)")
    parser.add_argument("--measure-every", type=int, default=300, help="steps between beam-7 measurements")
    parser.add_argument("--max-minutes", type=float, default=30.0, help="stop after this much training time")
    args = parser.parse_args()

    import torch

    from scenetalk.captioning.captioner import caption_features
    from scenetalk.captioning.evaluation import caption_report
    from scenetalk.data.registry import load_dataset
    from scenetalk.features.store import FeatureStore
    from scenetalk.models import GENERATORS
    from scenetalk.training.caption_trainer import CaptionTrainer
    from scenetalk.training.config import read_config, train_config

    path, data = read_config(args.config)
    cfg = train_config(path, data.get("train") or {})
    dataset = load_dataset(data.get("dataset", "flickr8k"), root=args.root)
    store = FeatureStore.open(args.features)
    feats = store.model_input(GENERATORS[cfg.model["type"]][0].image_input)
    val = dataset.split("val")
    val_rows = torch.tensor([store.row_index[im.relpath] for im in val])

    clock = {"start": time.perf_counter(), "paused": 0.0}
    reached: dict[str, tuple[float, int, float]] = {}
    rows = []

    def train_minutes() -> float:
        return (time.perf_counter() - clock["start"] - clock["paused"]) / 60

    with tempfile.TemporaryDirectory() as out:
        trainer = CaptionTrainer(cfg, dataset, feats, store.row_index, store.extractor_id, os.path.join(out, "run"),
                                 progress=False)
        tokens_per_step = float((trainer.train.ids[:, 1:] != trainer.vocab.pad_id).sum()) / len(trainer.train.ids)

        def measure(step: int) -> None:
            minutes = train_minutes()
            if step % args.measure_every and minutes < args.max_minutes:
                return
            paused = time.perf_counter()
            trainer.model.eval()
            caps = caption_features(trainer.model, trainer.vocab, feats[val_rows], beam_size=7)
            trainer.model.train()
            report = caption_report({im.relpath: c[0].text for im, c in zip(val, caps)}, dataset, "val")
            scores = report["scores"]
            for name, target in MILESTONES.items():
                if name not in reached and scores[name] >= target:
                    reached[name] = (minutes, step, scores[name])
            tok_s = step * cfg.batch_size * tokens_per_step / (minutes * 60)
            rows.append((step, minutes, tok_s, scores))
            print(f"step {step:5d}  train {minutes:5.1f} min  ~{tok_s:5.0f} tokens/s  "
                  + "  ".join(f"{k} {100 * scores[k]:.1f}" for k in MILESTONES), flush=True)
            clock["paused"] += time.perf_counter() - paused
            if len(reached) == len(MILESTONES) or minutes >= args.max_minutes:
                raise Stop

        trainer.on_step = measure
        try:
            trainer.run()
        except Stop:
            pass

    measured = sum(1 for _ in rows)
    print(f"\nconfig {path.name} ({cfg.model['type']}), features {store.extractor_id}, torch threads "
          f"{torch.get_num_threads()}; {measured} beam-7 measurements took {clock['paused'] / 60:.1f} min "
          "(not counted)")
    print(f"{'milestone (val, beam 7)':<26}{'Karpathy':>9}{'train min':>11}{'step':>7}{'ours then':>11}")
    for name, target in MILESTONES.items():
        if name in reached:
            minutes, step, value = reached[name]
            print(f"{name + ' >= ' + format(100 * target, '.1f'):<26}{100 * target:>9.1f}{minutes:>11.1f}"
                  f"{step:>7d}{100 * value:>11.1f}")
        else:
            print(f"{name + ' >= ' + format(100 * target, '.1f'):<26}{100 * target:>9.1f}{'not reached':>11}")
    b4 = reached.get("BLEU-4")
    verdict = "within" if b4 and b4[0] <= BUDGET_MIN else "OVER"
    print(f"budget: BLEU-4 >= 16.0 within {BUDGET_MIN:.0f} min of training: {verdict}")


if __name__ == "__main__":
    main()
