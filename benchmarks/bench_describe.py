"""Image -> text through the public API (issue #18): ``scenetalk.load().describe`` over an index
of a Flickr8K split's 1,000 photos holding the split's 5,000 sentences, as users call it
(re-ranked by the captioner by default) and by S_kl alone; prints the BENCHMARKS.md section.

    python benchmarks/bench_describe.py --root ../shared/data --work /tmp/bench-describe --split val --weights 3,5,7 --hub-weights 0.75,1
    python benchmarks/bench_describe.py --root ../shared/data --work /tmp/bench-describe --split test --weights 5 --hub-weights 1

1. ``index build PHOTOS --sentences FILE`` (the CLI, timed: features, region vectors, the
   sentences' word vectors and their prior log P(s) under the shipped captioner).
2. For every photo, ``describe(index, photo, k=10)``: re-ranked (the best 100 by S_kl ordered by
   S_kl + λ·(log P(s | I) − log P(s)) / words) at each ``--weights`` λ, and with ``rerank=0``.
   Each with S_kl first lowered by α × the sentence's hubness (``retrieval.hubness``, stored by
   the build) at each ``--hub-weights`` α, and without (α 0).
   The rank of the photo's first right sentence is recorded (beyond the top 10: 11), so R@1,
   R@5 and R@10 are exact. λ and α are chosen on val (R@1+5+10); test is run once at the
   chosen pair.

The median describe latency (re-ranked, the photo in the index) is printed beside; timings
are only comparable when nothing else runs.
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
sys.path.insert(0, str(REPO / "src"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--weights", default="5", help="λ values, comma-separated (val: several; test: the chosen one)")
    p.add_argument("--hub-weights", default="1", help="α values, comma-separated (val: several; test: the chosen one)")
    args = p.parse_args()
    import scenetalk
    from scenetalk.data.registry import load_dataset
    from scenetalk.retrieval.hubness import HUB_NEIGHBOURS, HUB_WEIGHT
    from scenetalk.retrieval.sentence_ranking import DESCRIBE_RERANK_TOP, DESCRIBE_RERANK_WEIGHT

    dataset = load_dataset("flickr8k", root=args.root)
    photos = dataset.split(args.split)
    work = Path(args.work) / args.split
    folder = work / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    for im in photos:
        target = folder / os.path.basename(im.relpath)
        if not target.exists():
            os.symlink(os.path.abspath(os.path.join(dataset.image_dir, im.relpath)), target)
    sentences = [s.raw for im in photos for s in im.sentences]
    owner = [k for k, im in enumerate(photos) for _ in im.sentences]
    (work / "sentences.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    index = work / "index"
    built = work / "build.json"
    if not built.is_file():
        started = time.time()
        subprocess.run([sys.executable, "-m", "scenetalk.cli", "index", "build", str(folder), "--out", str(index),
                        "--sentences", str(work / "sentences.txt"), "--quiet", "--overwrite"], check=True)
        built.write_text(json.dumps({"seconds": round(time.time() - started, 1)}))
    build_s = json.loads(built.read_text())["seconds"]
    m = scenetalk.load()
    position = {s: i for i, s in enumerate(sentences)}

    def ranks(describe, **options) -> tuple[list[int], list[float]]:
        found, times = [], []
        for k, im in enumerate(photos):
            start = time.perf_counter()
            hits = describe(os.path.basename(im.relpath), k=10, **options).hits
            times.append(1000 * (time.perf_counter() - start))
            owners = [owner[position[h.sentence]] for h in hits]
            found.append(owners.index(k) + 1 if k in owners else 11)
        return found, times

    def recall(found: list[int]) -> dict:
        r = np.asarray(found)
        return {f"R@{q}": round(100 * float((r <= q).mean()), 1) for q in (1, 5, 10)}

    def facade(name, **options):
        return m.describe(str(index), name, warn=False, **options)

    rows = {}
    plain, plain_ms = ranks(facade, rerank=0, hub_weight=0)
    rows["S_kl alone (`rerank=0, hub_weight=0`)"] = (recall(plain), float(np.median(plain_ms)))
    found, ms = ranks(facade, hub_weight=0)
    rows[f"re-ranked, K {DESCRIBE_RERANK_TOP}, λ {DESCRIBE_RERANK_WEIGHT:g}, no hubness (`hub_weight=0`)"] = (
        recall(found), float(np.median(ms)))
    found, ms = ranks(facade)
    rows[f"as users call it: hubness α {HUB_WEIGHT:g} (k {HUB_NEIGHBOURS}), re-ranked, K {DESCRIBE_RERANK_TOP}, "
         f"λ {DESCRIBE_RERANK_WEIGHT:g} (the defaults)"] = (recall(found), float(np.median(ms)))
    searcher = m.open_index(str(index))   # the same open index, other λ and α
    weights = [float(w) for w in args.weights.split(",")]
    for hub in (float(a) for a in args.hub_weights.split(",")):
        found, ms = ranks(searcher.describe, rerank=0, hub_weight=hub)
        rows[f"hubness α {hub:g} alone (`rerank=0`)"] = (recall(found), float(np.median(ms)))
        for weight in weights:
            if (hub, weight) == (HUB_WEIGHT, DESCRIBE_RERANK_WEIGHT):
                continue
            found, ms = ranks(searcher.describe, rerank=DESCRIBE_RERANK_TOP, rerank_weight=weight, hub_weight=hub)
            rows[f"hubness α {hub:g}, re-ranked, K {DESCRIBE_RERANK_TOP}, λ {weight:g}"] = (recall(found),
                                                                                           float(np.median(ms)))
    print(f"{len(photos)} {args.split} photos, {len(sentences)} sentences; `index build --sentences` "
          f"{build_s:.0f} s (features, vectors, the sentences' prior)\n")
    print("| describe (Flickr8K " + args.split + ") | image→text R@1 | R@5 | R@10 | R@1+5+10 | median ms |")
    print("|---|---|---|---|---|---|")
    for label, (r, ms) in rows.items():
        print(f"| {label} | {r['R@1']} | {r['R@5']} | {r['R@10']} | {sum(r.values()):.1f} | {ms:.0f} |")


if __name__ == "__main__":
    main()
