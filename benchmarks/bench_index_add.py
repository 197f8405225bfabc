"""``index add`` against a rebuild (issue #19): adding new photos to an index reads and writes
only them, and search over the parts answers what the rebuilt index answers.

    python benchmarks/bench_index_add.py --root ../shared/data --work /tmp/bench-index-add

1. A folder of the first ``--photos`` Flickr8K photos (sorted by file name; links to the
   data, nothing copied) is indexed with the shipped alignment model (``index_folder``).
2. ``--add`` more photos appear in the folder; ``add_to_index`` indexes them as a part. Then
   ``add_to_index`` once more (nothing new: the cost of finding that out).
3. The alternative: a new index of the whole folder (``index_folder``), built from nothing.
4. Search: ``--queries`` Flickr8K val sentences on both indexes, k = 10, candidates = 1,000,
   re-ranked as the CLI does: the share of queries with the same hits in the same order and
   the largest score difference, and p50 latency of each (the index kept open).

The photos indexed are not an evaluation set (no metric is computed): which photos they are
does not matter. Prints the BENCHMARKS.md rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"), help="data root")
    parser.add_argument("--work", default="/tmp/bench-index-add", help="scratch folder (emptied)")
    parser.add_argument("--photos", type=int, default=1000, help="photos of the first index (default 1,000)")
    parser.add_argument("--add", type=int, default=100, help="photos added (default 100)")
    parser.add_argument("--queries", type=int, default=100, help="val sentences searched (default 100)")
    args = parser.parse_args()

    import scenetalk
    from scenetalk.data.registry import load_dataset
    from scenetalk.retrieval.index import add_to_index, index_folder

    images = (Path(args.root) / "flickr8k" / "images").resolve()   # the links must work from the scratch folder
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    photos = work / "photos"
    photos.mkdir(parents=True)
    every = sorted(p.name for p in images.iterdir() if p.suffix.lower() == ".jpg")[:args.photos + args.add]
    for name in every[:args.photos]:
        os.symlink(images / name, photos / name)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")
    first, built_s = timed(index_folder, photos, work / "index", progress=False)
    print(f"index of {first.photos} photos built in {built_s:.1f} s")
    for name in every[args.photos:]:
        os.symlink(images / name, photos / name)
    added, add_s = timed(add_to_index, work / "index", progress=False)
    print(f"index add of {added.added} photos ({added.already} already in it): {add_s:.1f} s, as {added.part}")
    again, again_s = timed(add_to_index, work / "index", progress=False)
    print(f"index add with nothing new ({again.already} photos found): {again_s:.2f} s")
    rebuilt, rebuild_s = timed(index_folder, photos, work / "rebuilt", progress=False)
    print(f"rebuilt index of {rebuilt.photos} photos: {rebuild_s:.1f} s")

    val = load_dataset("flickr8k", root=args.root).split("val")
    sentences = [image.sentences[0].raw for image in val][:args.queries]
    m = scenetalk.load()
    results, latency = {}, {}
    for label, index in (("parts", work / "index"), ("rebuilt", work / "rebuilt")):
        m.search(index, sentences[0], warn=False)   # opens the index and loads the models
        times, hits = [], []
        for text in sentences:
            start = time.perf_counter()
            result = m.search(index, text, k=10, warn=False)
            times.append(time.perf_counter() - start)
            hits.append(result.hits)
        results[label], latency[label] = hits, float(np.median(times) * 1000)
    same = sum([h.name for h in a] == [h.name for h in b] for a, b in zip(results["parts"], results["rebuilt"]))
    diff = max(abs(x.score - y.score) for a, b in zip(results["parts"], results["rebuilt"]) for x, y in zip(a, b))
    print(f"search, {len(sentences)} val sentences, k=10, re-ranked: same hits in the same order {same}/"
          f"{len(sentences)}, largest score difference {diff:.2g}; p50 {latency['parts']:.1f} ms over the parts, "
          f"{latency['rebuilt']:.1f} ms rebuilt")
    print("\n| step | photos read | time |\n|---|---|---|")
    print(f"| `index build` of the first {args.photos:,} | {args.photos:,} | {built_s:.1f} s |")
    print(f"| `index add` of {added.added} new ones | {added.added} | {add_s:.1f} s |")
    print(f"| `index add`, nothing new | 0 | {again_s:.2f} s |")
    print(f"| `index build` of all {rebuilt.photos:,} (the alternative) | {rebuilt.photos:,} | {rebuild_s:.1f} s |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
