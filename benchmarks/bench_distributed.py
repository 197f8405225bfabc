"""Data-parallel training on one machine (issue #19): a shipped config's first steps on one
process and on ``--nproc 2`` (gloo over loopback, ``torchrun``), the same global batch, the
same cores in all; prints the BENCHMARKS.md section.

    python benchmarks/bench_distributed.py --root ../shared/data --work /tmp/bench-distributed \
        --config alignment_flickr8k --steps 300

Each run is ``scenetalk train CONFIG --max-steps STEPS`` (validation at the stop, on the whole
val split, by rank 0). One process gets ``--threads`` torch threads, each of the N processes
``threads / N``, so both use the same cores. The shipped configs train with dropout, whose
masks differ between the two (every rank draws its own), so the curves are compared by the
mean training loss over windows of ``--window`` steps and by the validation score at the
stop; the exact equality of the two (without dropout) is ``tests/test_distributed.py``'s.
Timings are only comparable when nothing else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def train(config: str, root: str, out: Path, steps: int, nproc: int, threads: int) -> tuple[dict, float]:
    if (out / "history.json").exists():
        history = json.loads((out / "history.json").read_text())
        return history, json.loads((out / "seconds.json").read_text())["seconds"]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scenetalk", "train", config, "--root", root, "--out", str(out),
                    "--max-steps", str(steps), "--nproc", str(nproc), "--quiet"], check=True, cwd=REPO,
                   env={**os.environ, "OMP_NUM_THREADS": str(threads // nproc)})
    seconds = time.perf_counter() - started
    (out / "seconds.json").write_text(json.dumps({"seconds": seconds}))
    return json.loads((out / "history.json").read_text()), seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--config", default="alignment_flickr8k")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--window", type=int, default=50)
    p.add_argument("--threads", type=int, default=2, help="cores in all (default 2)")
    p.add_argument("--nproc", type=int, default=2)
    args = p.parse_args()
    work = Path(args.work) / args.config
    runs = {n: train(args.config, args.root, work / f"nproc{n}", args.steps, n, args.threads)
            for n in (1, args.nproc)}
    one, many = (runs[n][0] for n in (1, args.nproc))
    metric = next(k for k in ("rsum", "cider", "perplexity") if k in one["val"][-1])
    print(f"`{args.config}`, its first {args.steps} steps (batch as configured, global), "
          f"{args.threads} cores in all; Flickr8K train, validation on val at step {args.steps}\n")
    print("| steps | mean training loss, 1 process | " + f"{args.nproc} processes | difference |")
    print("|---|---|---|---|")
    a, b = (np.array([h["loss"] for h in h_["train"]]) for h_ in (one, many))
    for start in range(0, args.steps, args.window):
        x, y = a[start:start + args.window].mean(), b[start:start + args.window].mean()
        print(f"| {start + 1}-{min(start + args.window, args.steps)} | {x:.4f} | {y:.4f} | {100 * (y - x) / x:+.2f}% |")
    print(f"\n| | 1 process × {args.threads} threads | {args.nproc} processes × {args.threads // args.nproc} |")
    print("|---|---|---|")
    print(f"| val {metric} at step {args.steps} | {one['val'][-1][metric]:.2f} | {many['val'][-1][metric]:.2f} |")
    print(f"| wall seconds (start-up, {args.steps} steps, validation) | {runs[1][1]:.0f} | "
          f"{runs[args.nproc][1]:.0f} |")


if __name__ == "__main__":
    main()
