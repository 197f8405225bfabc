"""Benchmark captioning end to end: JPEG file in, sentence out.

    python benchmarks/bench_caption.py                        # the shipped captioner
    python benchmarks/bench_caption.py --checkpoint runs/X/best

Two measurements, both with the model loaded and warmed up (the first call, which may
export the backbone to ONNX, is timed separately):

* single image: ``m.caption(path, beam_size=7)`` one JPEG at a time (decode, resize,
  features, beam search), over ``--single`` different Flickr8K test JPEGs (224x224 as
  shipped in ../shared/data) and over the sample photos re-encoded as full-size JPEGs;
  prints the median and 90th percentile. Budget: median <= 100 ms.
* folder: ``m.caption(paths, beam_size=3)`` over ``--folder`` test JPEGs in batches of
  ``--batch-size``; prints images/s. Budget: >= 30 images/s.

Without ../shared/data, both run on the sample photos only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

BUDGET_SINGLE_MS = 100.0
BUDGET_FOLDER_IPS = 30.0


def test_jpegs(limit: int) -> list[str]:
    """Flickr8K Karpathy test images (paths), or [] when the data is absent."""
    from scenetalk.data.registry import default_root, load_dataset

    root = default_root()
    if root is None or not (Path(root) / "flickr8k").is_dir():
        return []
    dataset = load_dataset("flickr8k", root=root)
    return [os.path.join(dataset.image_dir, im.relpath) for im in dataset.split("test")][:limit]


def sample_jpegs(folder: str) -> list[str]:
    """The bundled sample photos at full size, re-encoded as JPEG (quality 90)."""
    from PIL import Image

    from scenetalk.data.sample_photos import sample_photo_paths

    out = []
    for path in sample_photo_paths():
        target = os.path.join(folder, path.stem + ".jpg")
        Image.open(path).convert("RGB").save(target, quality=90)
        out.append(target)
    return out


def time_single(model, paths: list[str], beam: int, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        for path in paths:
            start = time.perf_counter()
            model.caption(path, beam_size=beam)
            times.append(1000 * (time.perf_counter() - start))
    return times


def describe(times: list[float]) -> str:
    q = statistics.quantiles(times, n=10)
    return f"median {statistics.median(times):.1f} ms, p90 {q[-1]:.1f} ms, min {min(times):.1f} ms ({len(times)} calls)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="caption generator folder (default: the shipped captioner)")
    parser.add_argument("--single", type=int, default=100, help="test JPEGs for the one-at-a-time timing")
    parser.add_argument("--folder", type=int, default=1000, help="test JPEGs for the folder timing")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import scenetalk
    from scenetalk import runtime

    start = time.perf_counter()
    model = scenetalk.load(args.checkpoint).captioner
    load_s = time.perf_counter() - start
    print(f"captioner      {model.checkpoint} ({model.meta['model']['type']}, features {model.extractor_id})")
    print(f"engine         {runtime.engine()} ({type(model.generator).__name__}), {runtime.cpu_threads()} threads, "
          f"backbone engine {model.extractor.backbone.engine}")
    with tempfile.TemporaryDirectory() as tmp:
        samples = sample_jpegs(tmp)
        start = time.perf_counter()
        model.caption(samples[0], beam_size=7)
        print(f"load           {load_s:.2f} s; first caption {1000 * (time.perf_counter() - start):.0f} ms "
              "(includes the one-time ONNX export when the cache is empty)")
        tests = test_jpegs(max(args.single, args.folder))
        time_single(model, (tests or samples)[:5], 7, 1)  # warm-up
        print("\nsingle image, beam 7, end to end (decode + features + beam search):")
        if tests:
            single = time_single(model, tests[:args.single], 7, 1)
            print(f"  Flickr8K test JPEGs (224x224):     {describe(single)}")
        full = time_single(model, samples, 7, 10)
        print(f"  sample photos (full-size JPEGs):   {describe(full)}")
        headline = statistics.median(single if tests else full)
        print(f"  budget median <= {BUDGET_SINGLE_MS:.0f} ms: {'within' if headline <= BUDGET_SINGLE_MS else 'OVER'}")

        folder = tests[:args.folder] if tests else samples * 50
        start = time.perf_counter()
        model.caption(folder, beam_size=3, batch_size=args.batch_size)
        wall = time.perf_counter() - start
        ips = len(folder) / wall
        what = "Flickr8K test JPEGs" if tests else "sample photos (repeated)"
        print(f"\nfolder, beam 3, batches of {args.batch_size}: {len(folder)} {what} in {wall:.1f} s = {ips:.1f} images/s")
        print(f"  budget >= {BUDGET_FOLDER_IPS:.0f} images/s: {'within' if ips >= BUDGET_FOLDER_IPS else 'OVER'}")


if __name__ == "__main__":
    main()
