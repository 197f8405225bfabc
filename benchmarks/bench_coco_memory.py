"""Peak memory of training at COCO's size (issue #19): 123,287 photos × 5 sentences of random
words and random features, one epoch, on the CPU.

    python benchmarks/bench_coco_memory.py --work /tmp/bench-coco --task caption
    python benchmarks/bench_coco_memory.py --work /tmp/bench-coco --task alignment --max-steps 300

1. Writes, once (reused when present), a Karpathy-format JSON of COCO's Karpathy split sizes
   (113,287 train, 5,000 val, 5,000 test photos; 5 sentences each, 8–16 words drawn from a
   Zipf law over 10,000 made-up words, so the vocabulary is COCO-like: ~10K words seen at
   least 5 times) and a feature store of random features for it: global 1280-d float32 (630
   MB) and, for ``--task alignment``, 20 regions of 1280 float16 each (6.3 GB).
2. Runs ``scenetalk train`` on it (``--task caption``: the shipped m-RNN config's model;
   ``alignment``: the shipped alignment config's model), under ``/usr/bin/time -v``, and
   prints its peak resident memory and wall time, and the time a step takes (the progress
   bar's last rate) with the epoch's time it implies. ``--max-steps N`` stops it early (its
   validation still runs): every step reads a batch the same way, so the epoch's peak is
   reached in its first steps and at validation, and the epoch's time is N steps' rate times
   its steps. What grows with COCO is the dataset's sentences, the vocabulary and the feature
   rows, not the model.
3. The same for loading the dataset and building the vocabulary alone (what every run pays
   before its first step).

The figures name the machine they ran on; the features are random, so no quality is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SPLITS = (("train", 113_287), ("val", 5_000), ("test", 5_000))


def write_dataset(path: Path, words: int = 10_000, per_photo: int = 5, seed: int = 0) -> list[str]:
    """The synthetic Karpathy JSON; returns the photo names in order."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(words)])
    p = 1.0 / np.arange(1, words + 1)
    p /= p.sum()
    images, names, sentid = [], [], 0
    for split, count in SPLITS:
        for _ in range(count):
            name = f"{len(names):06d}.jpg"
            sentences = []
            for _ in range(per_photo):
                raw = " ".join(vocab[rng.choice(words, size=int(rng.integers(8, 17)), p=p)])
                sentences.append({"raw": raw, "sentid": sentid})
                sentid += 1
            images.append({"filename": name, "split": split, "imgid": len(names), "sentences": sentences})
            names.append(name)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"dataset": "coco-synthetic", "images": images}))
    os.replace(tmp, path)
    return names


def write_store(folder: Path, names: list[str], regions: bool, seed: int = 0) -> None:
    """A feature store of random features for ``names`` (the layout ``features.store`` reads)."""
    from scenetalk.features.store import FORMAT, FORMAT_VERSION, INDEX_FILE, array_file, array_specs

    folder.mkdir(parents=True, exist_ok=True)
    specs = array_specs(len(names), 1280, None, 20 if regions else None)
    rng = np.random.default_rng(seed)
    for name, spec in specs.items():
        out = np.lib.format.open_memmap(folder / array_file(name), "w+", np.dtype(spec.dtype), spec.shape)
        for a in range(0, len(names), 4096):
            rows = out[a:a + 4096]
            if name == "box_classes":
                rows[:] = np.where(np.arange(20) == 0, 0, 1)
            elif name == "boxes":
                rows[:] = [0.0, 0.0, 1.0, 1.0]
            elif name == "box_scores":
                rows[:] = 1.0
            else:   # non-negative, as CNN features after a ReLU are
                rows[:] = np.abs(rng.standard_normal(rows.shape, dtype=np.float32)).astype(rows.dtype)
        out.flush()
        del out
    kind = "regions" if regions else "global"
    index = {"format": FORMAT, "version": FORMAT_VERSION, "extractor_id": f"synthetic-random-{kind}",
             "names": names, "arrays": {k: v.to_json() for k, v in specs.items()}, "bad": [],
             "class_names": {"0": "whole image", "1": "thing"}}
    (folder / INDEX_FILE).write_text(json.dumps(index))


def timed_run(cmd: list[str], env: dict) -> dict:
    """Peak RSS (GiB), wall seconds and output of ``cmd`` under /usr/bin/time -v."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return {"peak_gib": peak_kb / 2**20, "wall_s": wall, "out": proc.stdout + proc.stderr}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/bench-coco", help="scratch folder (kept: the data is reused)")
    parser.add_argument("--task", choices=("caption", "alignment"), default="caption")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--max-steps", type=int, help="stop after N steps (default: one whole epoch)")
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    dataset = work / "coco_synthetic.json"
    start = time.perf_counter()
    if not dataset.is_file():
        write_dataset(dataset)
        print(f"dataset written in {time.perf_counter() - start:.0f} s: {dataset.stat().st_size / 2**20:.0f} MB")
    names = [f"{i:06d}.jpg" for i in range(sum(n for _, n in SPLITS))]
    store = work / ("features-regions" if args.task == "alignment" else "features")
    if not (store / "index.json").is_file():
        start = time.perf_counter()
        write_store(store, names, regions=args.task == "alignment")
        print(f"feature store written in {time.perf_counter() - start:.0f} s")
    size = sum(f.stat().st_size for f in store.iterdir()) / 2**30
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}

    load = timed_run([sys.executable, "-c", textwrap.dedent(f"""
        from scenetalk.data.registry import load_dataset
        from scenetalk.data.text import Vocabulary
        d = load_dataset({str(dataset)!r})
        train = d.sentences("train")
        v = Vocabulary.build([s.tokens for s in train], min_count=5)
        print(len(train), "training sentences,", len(v), "words")
        """)], env)
    print(f"load the dataset and build the vocabulary: peak {load['peak_gib']:.2f} GiB, {load['wall_s']:.0f} s "
          f"({load['out'].splitlines()[0]})")

    model = ("{embed_dim: 1000, word_dim: 300, hidden_dim: 1000, dropout: 0.1, score: max}"
             if args.task == "alignment" else
             "{type: mrnn, embed1_dim: 128, embed2_dim: 256, multimodal_dim: 512, dropout: 0.5}")
    config = work / f"{args.task}.yaml"
    config.write_text(f"""task: {args.task}
dataset: {dataset}
features: {store}
out: {work / ('run-' + args.task)}
train:
  model: {model}
  optimizer: adam
  lr: 0.0002
  batch_size: {args.batch_size}
  epochs: 1
  eval_every: 1000000
  checkpoint_every: 1000000
""" + ("  val_images: 1000\n" if args.task == "caption" else "  precision: bf16\n"))
    run = timed_run([sys.executable, "-m", "scenetalk", "train", str(config)]
                    + (["--max-steps", str(args.max_steps)] if args.max_steps else []), env)
    # the progress bar's last rate: the time a step takes once running
    rates = re.findall(r"([\d.]+)(s/step|step/s)", run["out"])
    step_s = (float(rates[-1][0]) if rates[-1][1] == "s/step" else 1 / float(rates[-1][0])) if rates else None
    epoch_steps = -(-SPLITS[0][1] * 5 // args.batch_size)
    print(f"scenetalk train ({args.task}, batch {args.batch_size}, "
          f"{'1 epoch' if not args.max_steps else f'{args.max_steps} steps'}; feature store {size:.2f} GiB): "
          f"peak {run['peak_gib']:.2f} GiB, {run['wall_s'] / 60:.1f} min")
    if step_s:
        print(f"a step takes {step_s:.2f} s (the progress bar's last rate): one epoch of {epoch_steps:,} steps "
              f"would take {epoch_steps * step_s / 3600:.1f} h on this machine")


if __name__ == "__main__":
    main()
