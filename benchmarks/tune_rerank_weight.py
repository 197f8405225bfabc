"""Choose the search re-ranker's weight λ on val, through the public API and its default engine:

    python benchmarks/tune_rerank_weight.py --root ../shared/data --work /tmp/tune-rerank

Builds an index of the 1,000 Flickr8K val photos (``scenetalk index build``, kept in
``--work``), then asks ``scenetalk.load().search`` each of the 5,000 val sentences once with
``k = rerank = RERANK_TOP``: every hit carries S_kl and log P(query | photo), so the ranking
S_kl + λ·log P of the best ``RERANK_TOP`` can be re-done for every λ of the grid without
searching again (a photo outside them keeps S_kl's order below, as ``search`` does).
Prints text→image R@1 / R@5 / R@10 per λ and the best by their sum (ties: the smaller λ).
The engine is whatever ``SCENETALK_ENGINE`` says (default ONNX Runtime, float32); the test
split is never read.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import scenetalk  # noqa: E402
from scenetalk import runtime  # noqa: E402
from scenetalk.data.registry import load_dataset  # noqa: E402
from scenetalk.progress import progress_bar  # noqa: E402
from scenetalk.retrieval.search import RERANK_TOP, RERANK_WEIGHT  # noqa: E402

GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--work", required=True)
    args = p.parse_args()
    val = load_dataset("flickr8k", root=args.root)
    image_dir = val.image_dir
    val = val.split("val")
    work = Path(args.work)
    folder, index = work / "val-photos", work / "val-index"
    folder.mkdir(parents=True, exist_ok=True)
    for im in val:
        target = folder / os.path.basename(im.relpath)
        if not target.exists():
            os.symlink(os.path.abspath(os.path.join(image_dir, im.relpath)), target)
    if not (index / "index.json").exists():
        subprocess.run([sys.executable, "-m", "scenetalk.cli", "index", "build", str(folder), "--out", str(index),
                        "--quiet"], check=True)

    m = scenetalk.load()
    queries = [(s.raw, os.path.basename(im.relpath)) for im in val for s in im.sentences]
    alignment, likelihood, truth = [], [], []
    for sentence, name in progress_bar(queries, desc="val queries"):
        hits = m.search(str(index), sentence, k=RERANK_TOP, rerank=RERANK_TOP).hits
        alignment.append([h.alignment_score for h in hits])
        likelihood.append([h.log_likelihood for h in hits])
        truth.append(next((i for i, h in enumerate(hits) if h.name == name), -1))
    S, L, truth = np.array(alignment), np.array(likelihood), np.array(truth)

    print(f"`python benchmarks/tune_rerank_weight.py --root {args.root} --work {args.work}` "
          f"(engine {runtime.engine()}; {len(val)} val photos, {len(queries)} val sentences; "
          f"the best {RERANK_TOP} by S_kl re-ranked):\n")
    print("| λ | text→image R@1 | R@5 | R@10 | sum |\n|---|---|---|---|---|")
    best = None
    for weight in GRID:
        fused = S + weight * L
        found = truth >= 0
        rank = np.full(len(truth), RERANK_TOP + 1)
        rank[found] = (fused[found] > fused[found, truth[found]][:, None]).sum(1) + 1
        recall = [100 * float(np.mean(rank <= k)) for k in (1, 5, 10)]
        mark = " (today's default)" if weight == RERANK_WEIGHT else ""
        print(f"| {weight:g}{mark} | {recall[0]:.1f} | {recall[1]:.1f} | {recall[2]:.1f} | {sum(recall):.1f} |")
        if best is None or sum(recall) > best[1] + 1e-9:
            best = (weight, sum(recall))
    print(f"\nBest on val by R@1+5+10: λ = {best[0]:g} (sum {best[1]:.1f}).")


if __name__ == "__main__":
    main()
