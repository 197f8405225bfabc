"""Feature extraction on Ray against one process (issue #19): the same store, and the speed-up
from 1 to 2 workers of a local cluster.

    python benchmarks/bench_ray.py --root ../shared/data --work /tmp/bench-ray

The first ``--photos`` Flickr8K photos (sorted by file name) with the features ``index build``
extracts for the shipped alignment model (global + 20 regions, no grid), extracted:

1. in one process, as ``scenetalk features`` / ``index build`` run without ``--ray`` (every
   core: the backbone and the detector split them);
2. by ``extract_on_ray`` on a local Ray cluster of 1 worker, then of 2 workers (each task
   one thread for the backbone and one for the detector; shards of ``--shard`` photos).

Prints each one's time and images/s (cluster start-up included) and whether its store equals
the one-process store array for array. Which photos they are does not matter: nothing is
evaluated.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def same_store(a, b) -> bool:
    from scenetalk.features.store import FeatureStore

    one, other = FeatureStore.open(a), FeatureStore.open(b)
    return one.names == other.names and one.bad == other.bad and all(
        np.array_equal(one.array(name), other.array(name)) for name in one.index["arrays"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"), help="data root")
    parser.add_argument("--work", default="/tmp/bench-ray", help="scratch folder (emptied)")
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--shard", type=int, default=128, help="photos a Ray task extracts (default 128)")
    args = parser.parse_args()

    import ray

    from scenetalk.checkpoint import read_meta
    from scenetalk.features.extract import extract, extractor_for
    from scenetalk.features.jobs import extract_on_ray
    from scenetalk.weights import shipped_alignment

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    images_dir = Path(args.root) / "flickr8k" / "images"
    names = sorted(p.name for p in images_dir.iterdir() if p.suffix.lower() == ".jpg")[:args.photos]
    images = [(name, str(images_dir / name)) for name in names]
    checkpoint = shipped_alignment()
    make = partial(extractor_for, read_meta(checkpoint)["extractor_id"], os.fspath(checkpoint), grid=False)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {len(images)} photos, shards of "
          f"{args.shard}")

    start = time.perf_counter()
    extract(images, work / "single", extractor=make(), progress=False)
    single = time.perf_counter() - start
    rows = [("one process (every core)", single, True)]
    print(f"one process: {single:.1f} s, {len(images) / single:.2f} images/s", flush=True)
    for workers in (1, 2):
        start = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 _temp_dir=str(work / f"ray{workers}"))
        try:
            extract_on_ray(images, work / f"ray{workers}-store", make, shard_photos=args.shard, progress=False)
        finally:
            ray.shutdown()
        seconds = time.perf_counter() - start
        same = same_store(work / "single", work / f"ray{workers}-store")
        rows.append((f"Ray, local cluster of {workers} worker{'s' if workers > 1 else ''}", seconds, same))
        print(f"Ray, {workers} workers: {seconds:.1f} s, {len(images) / seconds:.2f} images/s, same store: {same}",
              flush=True)
    one_worker = rows[1][1]
    print("\n| run | time | images/s | speed-up over 1 worker | store equals one process's |\n|---|---|---|---|---|")
    for label, seconds, same in rows:
        print(f"| {label} | {seconds:.1f} s | {len(images) / seconds:.2f} | {one_worker / seconds:.2f}× | "
              f"{'yes' if same else 'NO'} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
