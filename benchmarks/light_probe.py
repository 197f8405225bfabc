"""What one install does, measured from inside it: run by ``bench_light.py`` with each venv's
Python (the light install, the full one, or an older checkout through ``PYTHONPATH``). Uses
only the public API (``scenetalk.load()`` and the command line), so any version answers the
same questions; prints one JSON object.

    python benchmarks/light_probe.py speed --root ../shared/data --work /tmp/probe
    python benchmarks/light_probe.py quality --root ../shared/data --work /tmp/probe

speed: ``scenetalk --help`` and ``scenetalk caption ONE.jpg`` wall time (new processes),
caption latency at beam 7 one JPEG at a time (Flickr8K test), a folder at beam 3 (images/s),
``index build`` of test photos (photos/s) and search latency through ``scenetalk.load().search``.
quality: the captions of the 1,000 Flickr8K test photos (beam 7, the checkpoint's defaults),
and retrieval R@1/5/10 through the public API: an index of the 1,000 test photos with the
5,000 test sentences, ``describe`` for every photo (image -> text, every sentence ranked) and
``search`` for every sentence (text -> image, the top 10 as users get them, re-ranked).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def test_split(root: str, split: str = "test"):
    from scenetalk.data.registry import load_dataset

    dataset = load_dataset("flickr8k", root=root)
    return dataset, dataset.split(split)


def wall(args: list[str], runs: int) -> list[float]:
    """Seconds each of ``runs`` new processes of ``scenetalk ARGS`` took."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "scenetalk.cli", *args], check=True, capture_output=True)
        out.append(time.perf_counter() - start)
    return out


def speed(args) -> dict:
    import scenetalk

    dataset, test = test_split(args.root)
    paths = [os.path.join(dataset.image_dir, im.relpath) for im in test]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    result = {"help_s": wall(["--help"], 10), "caption_one_s": wall(["caption", paths[0]], 5)}
    m = scenetalk.load()
    m.caption(paths[0])                                   # load and warm up
    times = []
    for path in paths[:100]:
        start = time.perf_counter()
        m.caption(path, beam_size=7)
        times.append(1000 * (time.perf_counter() - start))
    result["caption_beam7_ms"] = times
    start = time.perf_counter()
    m.caption(paths[:1000], beam_size=3, batch_size=32)
    result["folder_beam3_images_per_s"] = 1000 / (time.perf_counter() - start)
    folder = work / "photos"
    folder.mkdir(exist_ok=True)
    for path in paths[:args.index_photos]:
        target = folder / os.path.basename(path)
        if not target.exists():
            os.symlink(path, target)
    index = work / "speed-index"
    shutil.rmtree(index, ignore_errors=True)          # built from scratch: features, regions and all
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scenetalk.cli", "index", "build", str(folder), "--out", str(index),
                    "--quiet", "--overwrite"], check=True, capture_output=True)
    result["index_build_photos_per_s"] = args.index_photos / (time.perf_counter() - start)
    queries = [s.raw for im in dataset.split("val")[:args.queries] for s in im.sentences[:1]]
    m.search(str(index), queries[0], k=10)                # opens the index and the re-ranker
    times = []
    for q in queries:
        start = time.perf_counter()
        m.search(str(index), q, k=10)
        times.append(1000 * (time.perf_counter() - start))
    result["search_ms"] = times
    result["search_photos"] = args.index_photos
    return result


def quality(args) -> dict:
    import scenetalk

    dataset, test = test_split(args.root, args.split)
    paths = [os.path.join(dataset.image_dir, im.relpath) for im in test]
    m = scenetalk.load()
    captions = {im.relpath: caps[0].text for im, caps in zip(test, m.caption(paths, beam_size=7, batch_size=32))}
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    folder = work / "test-photos"
    folder.mkdir(exist_ok=True)
    for path in paths:
        target = folder / os.path.basename(path)
        if not target.exists():
            os.symlink(path, target)
    sentences = [s.raw for im in test for s in im.sentences]
    owner = [k for k, im in enumerate(test) for _ in im.sentences]
    (work / "test-sentences.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    index = work / "test-index"
    shutil.rmtree(index, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "scenetalk.cli", "index", "build", str(folder), "--out", str(index),
                    "--sentences", str(work / "test-sentences.txt"), "--quiet", "--overwrite"], check=True,
                   capture_output=True)
    position = {s: i for i, s in enumerate(sentences)}
    i2t = []
    for k, im in enumerate(test):
        try:
            hits = m.describe(str(index), os.path.basename(im.relpath), k=len(sentences), rerank=0).hits   # S_kl
        except TypeError:  # the code before issue #18's re-ranked describe ranked by S_kl only
            hits = m.describe(str(index), os.path.basename(im.relpath), k=len(sentences)).hits
        ranked = [owner[position[h.sentence]] for h in hits]
        i2t.append(ranked.index(k) + 1)
    # search as users call it: the top 10, re-ranked by default (the best 100 by S_kl ordered
    # again by the captioner); a photo beyond the top 10 is recorded as rank 11
    t2i = []
    names = [os.path.basename(im.relpath) for im in test]
    for sentence, k in zip(sentences, owner):
        found = [h.name for h in m.search(str(index), sentence, k=10).hits]
        t2i.append(found.index(names[k]) + 1 if names[k] in found else 11)
    return {"captions": captions, "i2t_ranks": i2t, "t2i_ranks": t2i}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("speed", "quality"))
    p.add_argument("--root", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--index-photos", type=int, default=200)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--split", default="test", choices=("val", "test"), help="quality: the split (default test)")
    args = p.parse_args()
    out = speed(args) if args.what == "speed" else quality(args)
    import scenetalk

    out["engine"] = os.environ.get("SCENETALK_ENGINE", "onnxruntime")
    out["scenetalk_from"] = os.path.dirname(scenetalk.__file__)
    out["torch_importable"] = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
