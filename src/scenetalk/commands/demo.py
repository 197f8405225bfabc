"""``scenetalk demo``: the main job on built-in defaults.

Captions the bundled sample photos with the shipped captioner (no dataset, no network),
then runs the feature pipeline on them: global features and the 20 regions of Karpathy &
Fei-Fei §3.1.1 for each photo, into a feature store; prints what the detector found and how
similar the photos are; and draws the regions, with each photo's caption, into a PNG.
"""

from __future__ import annotations

import argparse
import os

import numpy as np


def draw_regions(paths: list[str], store, out_png: str, per_image: int = 6,
                 captions: dict[str, str] | None = None) -> None:
    """A contact sheet: each photo with its best detected boxes and their class names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scenetalk.io import atomic_path
    from scenetalk.vision.images import load_image

    fig, axes = plt.subplots(1, len(paths), figsize=(4 * len(paths), 4.4))
    for ax, path in zip(np.atleast_1d(axes), paths):
        name = os.path.basename(path)
        image = load_image(path)
        w, h = image.size
        ax.imshow(image)
        row = store.row(name)
        classes = store.box_class_names(name)
        for k in reversed(range(1, 1 + per_image)):  # region 0 is the whole image; best box drawn last
            x1, y1, x2, y2 = store.boxes[row, k] * [w, h, w, h]
            colour = plt.cm.tab10(k % 10)
            ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=2, color=colour))
            ax.text(x1 + 2, y1 + 2, f"{classes[k]} {store.box_scores[row, k]:.2f}", va="top", fontsize=8,
                    color="white", bbox=dict(facecolor=colour, alpha=0.8, pad=1, lw=0))
        title = name if not captions else f"{name}\n{captions[path]}"
        ax.set_title(title, fontsize=9, wrap=True)
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    import scenetalk
    from scenetalk.data.sample_photos import SAMPLE_PHOTOS, sample_photo_paths
    from scenetalk.features.extract import extract
    from scenetalk.features.store import FeatureStore

    paths = [str(p) for p in sample_photo_paths()]
    captioner = scenetalk.load().captioner
    all_captions = captioner.caption(paths, beam_size=args.beam, n_best=min(3, args.beam))
    print(f"scenetalk demo: captions of {len(paths)} bundled sample photos (beam {args.beam}, "
          f"{captioner.meta['model']['type']} trained on Flickr8K)")
    for path, caps in zip(paths, all_captions):
        print(f"{os.path.basename(path)}")
        for k, c in enumerate(caps, 1):
            print(f"  {k}. {c.text}  (log p = {c.log_prob:.2f})")
    store_dir = os.path.join(args.out, "features")
    result = extract([(os.path.basename(p), p) for p in paths], store_dir, regions=True,
                     progress=not args.quiet)
    store = FeatureStore.open(store_dir)
    print(f"\nscenetalk demo: {len(paths)} bundled sample photos -> {store_dir}")
    print(f"extractor {store.extractor_id}")
    print(f"per photo: a {store.feature_dim}-d global vector, a {store.grid.shape[1]}-cell grid, "
          f"{store.regions.shape[1]} region vectors (whole image + top 19 detections)\n")
    for photo, path in zip(SAMPLE_PHOTOS, paths):
        name = os.path.basename(path)
        row = store.row(name)
        scores, classes = store.box_scores[row], store.box_class_names(name)
        found = [f"{c} {s:.2f}" for c, s in zip(classes[1:], scores[1:]) if s >= args.min_score]
        print(f"{name:15s} {photo.licence:28s} detected: {', '.join(found[:5]) or 'nothing above ' + str(args.min_score)}")
    g = np.asarray(store.global_features, dtype=np.float32)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    sims = g @ g.T
    names = [os.path.basename(p).split(".")[0] for p in paths]
    print("\ncosine similarity of global features:")
    print(" " * 11 + "".join(f"{n:>11s}" for n in names))
    for n, row in zip(names, sims):
        print(f"{n:>11s}" + "".join(f"{v:11.2f}" for v in row))
    png = os.path.join(args.out, "regions.png")
    draw_regions(paths, store, png, captions={p: c[0].text for p, c in zip(paths, all_captions)})
    took = "already extracted" if result.already_done else f"{result.seconds:.1f} s for feature extraction"
    print(f"\nregions drawn in {png} ({took})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the pipeline on the bundled sample photos",
                       description=__doc__.splitlines()[0])
    p.add_argument("--out", default="scenetalk-demo", help="output folder (default: ./scenetalk-demo)")
    p.add_argument("--min-score", type=float, default=0.3, help="detections to list (default: score >= 0.3)")
    p.add_argument("--beam", type=int, default=7, help="beam size for the captions (default 7)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
