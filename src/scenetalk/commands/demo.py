"""``scenetalk demo``: the main job on built-in defaults (``presentation.demo.run_demo``).

Captions the bundled sample photos with the shipped captioner (no dataset, no network),
then runs the feature pipeline on them: global features and the 20 regions of Karpathy &
Fei-Fei §3.1.1 for each photo, into a feature store; prints what the detector found and how
similar the photos are; and draws the regions, with each photo's caption, into a PNG.
"""

from __future__ import annotations

import argparse

from scenetalk.commands import add_json, add_quiet, print_json


def run(args: argparse.Namespace) -> int:
    from scenetalk.presentation.demo import run_demo

    r = run_demo(args.out, beam_size=args.beam, min_score=args.min_score, progress=not args.quiet)
    if args.json:
        print_json(r)
        return 0
    print(f"scenetalk demo: captions of {len(r.photos)} bundled sample photos (beam {r.beam_size}, "
          f"{r.generator} trained on Flickr8K)")
    for photo in r.photos:
        print(photo.name)
        for k, c in enumerate(photo.captions, 1):
            print(f"  {k}. {c.text}  (log p = {c.log_prob:.2f})")
    print(f"\nscenetalk demo: {len(r.photos)} bundled sample photos -> {r.store}")
    print(f"extractor {r.extractor_id}")
    print(f"per photo: a {r.feature_dim}-d global vector, a {r.grid_cells}-cell grid, "
          f"{r.regions_per_photo} region vectors (whole image + top 19 detections)\n")
    for photo in r.photos:
        found = ", ".join(f"{d['class']} {d['score']:.2f}" for d in photo.detections)
        print(f"{photo.name:15s} {photo.licence:28s} detected: {found or 'nothing above ' + str(r.min_score)}")
    names = [p.name.split(".")[0] for p in r.photos]
    print("\ncosine similarity of global features:")
    print(" " * 11 + "".join(f"{n:>11s}" for n in names))
    for n, row in zip(names, r.similarity):
        print(f"{n:>11s}" + "".join(f"{v:11.2f}" for v in row))
    took = "already extracted" if r.extraction_seconds is None else f"{r.extraction_seconds:.1f} s for feature extraction"
    print(f"\nregions drawn in {r.picture} ({took})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from scenetalk.presentation import MIN_DETECTOR_SCORE

    p = sub.add_parser("demo", help="run the pipeline on the bundled sample photos",
                       description=__doc__.splitlines()[0])
    p.add_argument("--out", default="scenetalk-demo", help="output folder (default: ./scenetalk-demo)")
    p.add_argument("--min-score", type=float, default=MIN_DETECTOR_SCORE,
                   help=f"detector confidence a box needs to be listed and drawn (0-1, default {MIN_DETECTOR_SCORE})")
    p.add_argument("--beam", type=int, default=7, help="beam size for the captions (default 7)")
    add_json(p, "captions, detections and similarities")
    add_quiet(p)
    p.set_defaults(func=run)
