"""Benchmark feature extraction on the real Flickr8K images.

    python benchmarks/bench_features.py                      # global features, all 8,091 images
    python benchmarks/bench_features.py --regions            # + detector and 20 region features
    python benchmarks/bench_features.py --limit 300          # a quick run; extrapolates to 8,091
    python benchmarks/bench_features.py --compare-regions    # RoI vs crop region features (200 images)

Extraction runs into a temporary folder (``--keep DIR`` keeps the store). It prints images/s,
wall seconds, peak memory (``ru_maxrss``) and the store's size on disk, and checks the budgets
for this project's 2-core machine: global features for all 8,091 images within 5 minutes,
detector + 20 region features within 30 minutes.

``--compare-regions`` measures, for each region method and size, the time for region
features alone (the detector and the global pass excluded) and their quality: the mean cosine
similarity of each detected box's feature to its crop feature at the backbone's full input
size (the R-CNN way, Karpathy & Fei-Fei §3.1.1), and how often that crop is the nearest
among the image's 19 crops (rank-1 match). The global feature is the no-region baseline.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from scenetalk.vision.images import list_images

FLICKR8K_IMAGES = 8091
BUDGET_GLOBAL_S = 5 * 60
BUDGET_REGIONS_S = 30 * 60


def default_images() -> Path:
    shared = Path(os.environ.get("SCENETALK_SHARED_DATA", REPO.parent / "shared" / "data"))
    return shared / "flickr8k" / "images"


def disk_usage(folder: str) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            total += os.stat(os.path.join(root, name)).st_blocks * 512
    return total


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def bench_extract(args, images: list[tuple[str, str]]) -> None:
    from scenetalk.features.extract import extract

    out_parent = tempfile.mkdtemp(prefix="scenetalk-bench-")
    out = args.keep or os.path.join(out_parent, "store")
    try:
        start = time.perf_counter()
        result = extract(images, out, backbone=args.backbone, regions=args.regions, grid=not args.no_grid,
                         batch_size=args.batch_size, region_method=args.region_method,
                         region_size=args.region_size, overwrite=True)
        wall = time.perf_counter() - start
        size = disk_usage(out)
    finally:
        shutil.rmtree(out_parent, ignore_errors=True)

    n = len(images)
    print(f"extractor id   {result.extractor_id}")
    print(f"images         {n}")
    print(f"wall seconds   {wall:.1f} (model loading included)")
    print(f"images/s       {n / wall:.1f}  ({1000 * wall / n:.1f} ms/image)")
    print(f"peak memory    {peak_rss_mb():.0f} MiB (ru_maxrss)")
    print(f"store on disk  {size / 2**20:.1f} MiB" + ("" if args.keep else " (deleted)"))
    budget = BUDGET_REGIONS_S if args.regions else BUDGET_GLOBAL_S
    estimate = wall * FLICKR8K_IMAGES / n
    verdict = "within" if estimate <= budget else "OVER"
    print(f"all {FLICKR8K_IMAGES} images: {'measured' if n >= FLICKR8K_IMAGES else 'extrapolated'} "
          f"{estimate / 60:.1f} min; budget {budget / 60:.0f} min: {verdict}")


def compare_regions(args, images: list[tuple[str, str]]) -> None:
    import numpy as np
    import torch

    from scenetalk.vision.backbones import create_backbone
    from scenetalk.vision.detector import create_detector
    from scenetalk.vision.images import load_image
    from scenetalk.vision.regions import RegionFeaturizer, select_regions

    backbone = create_backbone(args.backbone)
    detector = create_detector()
    pictures = [load_image(path) for _, path in images]
    n = len(pictures)
    bs = args.batch_size

    start = time.perf_counter()
    detections = [detector.detect(np.asarray(im)) for im in pictures]
    det_ms = 1000 * (time.perf_counter() - start) / n
    counts = np.array([len(d) for d in detections])
    boxes = np.stack([select_regions(d).boxes for d in detections])
    print(f"detector       {det_ms:.1f} ms/image; detections per image min {counts.min()}, "
          f"median {np.median(counts):.0f}, max {counts.max()}; fewer than 19: {(counts < 19).sum()} images")

    start = time.perf_counter()
    maps = [backbone.feature_map(backbone.preprocess(pictures[i:i + bs])) for i in range(0, n, bs)]
    global_ms = 1000 * (time.perf_counter() - start) / n
    print(f"global pass    {global_ms:.1f} ms/image")

    size = backbone.input_size
    methods = [("crop", size)] + [tuple(m.split("@")) for m in args.methods]
    features, times = {}, {}
    for method, region_size in methods:
        featurizer = RegionFeaturizer(backbone, method, int(region_size))
        start = time.perf_counter()
        out = [featurizer.features(pictures[i:i + bs], boxes[i:i + bs], m) for i, m in zip(range(0, n, bs), maps)]
        times[f"{method}@{region_size}"] = 1000 * (time.perf_counter() - start) / n
        features[f"{method}@{region_size}"] = torch.cat(out)[:, 1:]  # the 19 detected boxes
    reference = features[f"crop@{size}"]
    features["global"] = torch.cat([backbone.pooled(m) for m in maps])[:, None].expand_as(reference)

    ref_unit = torch.nn.functional.normalize(reference, dim=-1)
    print(f"\n{'method':<12}{'region ms/img':>15}{'all-in est. min':>17}{'cos to crop':>13}{'rank-1 match':>14}")
    for name, feats in features.items():
        unit = torch.nn.functional.normalize(feats, dim=-1)
        cos = (unit * ref_unit).sum(-1).mean().item()
        match = ((unit @ ref_unit.transpose(1, 2)).argmax(-1) == torch.arange(unit.shape[1])).float().mean().item()
        if name in times:
            total_min = (det_ms + global_ms + times[name]) * FLICKR8K_IMAGES / 60000
            print(f"{name:<12}{times[name]:>15.1f}{total_min:>17.1f}{cos:>13.3f}{match:>14.3f}")
        else:
            print(f"{name:<12}{'-':>15}{'-':>17}{cos:>13.3f}{match:>14.3f}")
    print("\n'all-in est.' = detector + global pass + region features for 8,091 images, without I/O or overlap.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=default_images(), help="folder of images (default: Flickr8K)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by name)")
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--regions", action="store_true", help="also detect and extract 20 region features")
    parser.add_argument("--region-method", default=None, choices=("roi", "crop"))
    parser.add_argument("--region-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-grid", action="store_true")
    parser.add_argument("--keep", default=None, help="write the store here and keep it")
    parser.add_argument("--compare-regions", action="store_true",
                        help="compare region methods instead (default --limit 200)")
    parser.add_argument("--methods", nargs="*", default=["roi@224", "roi@320", "roi@448", "crop@128", "crop@160", "crop@192"],
                        help="methods to compare with crop at full size, as method@size")
    args = parser.parse_args(argv)

    if not args.images.is_dir():
        print(f"images not found at {args.images} (pass --images or set SCENETALK_SHARED_DATA)", file=sys.stderr)
        return 2
    if args.region_method is None:
        from scenetalk.vision.regions import DEFAULT_REGION_METHOD

        args.region_method = DEFAULT_REGION_METHOD
    limit = args.limit if args.limit is not None else (200 if args.compare_regions else None)
    names = list_images(args.images)[:limit]
    images = [(name, str(args.images / name)) for name in names]
    print("reproduce: python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]]))
    print(f"machine: {os.cpu_count()} CPUs; torch threads {__import__('torch').get_num_threads()}\n")
    if args.compare_regions:
        compare_regions(args, images)
    else:
        bench_extract(args, images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
