"""``scenetalk sheet INDEX "red shirt" "dog" --out sheet.png``: the regions of a collection
that best match each text snippet, as a contact sheet (Karpathy & Fei-Fei Figures 9-10; the
retrieval is ``scenetalk.load().best_regions``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scenetalk.commands import add_checkpoint, add_json, print_json, warn
from scenetalk.errors import ScenetalkError


def run(args: argparse.Namespace) -> int:
    from scenetalk.api import load
    from scenetalk.presentation.pictures import crop_region, save_png, snippet_sheet
    from scenetalk.vision.images import load_image

    if args.top < 1 or args.per_photo < 1:
        raise ScenetalkError(f"--top and --per-photo must be at least 1 (got {args.top} and {args.per_photo})")
    result = load(alignment=args.checkpoint).best_regions(args.index, args.snippets, top=args.top,
                                                          per_photo=args.per_photo, include_whole=args.include_whole)
    folder = args.images or result.folder
    if not folder:
        raise ScenetalkError(f"{args.index}: the index does not record where its photos are; "
                             "pass --images DIR (the folder it was built from)")
    if not Path(folder).is_dir():
        raise ScenetalkError(f"{folder}: not a folder (pass --images DIR, the folder the index was built from)")
    for found in result.snippets:
        if found.unknown_words:
            warn("sheet", f"{found.snippet!r}: ignored words the model does not know: {', '.join(found.unknown_words)}")
    photos = {name: load_image(Path(folder) / name) for name in {r.image for s in result.snippets for r in s.regions}}
    rows = [(s.snippet, [(crop_region(photos[r.image], r.box), f"{r.score:.2f}") for r in s.regions])
            for s in result.snippets]
    save_png(snippet_sheet(rows, title=f"best regions of {result.photos:,} photos for each snippet (match score)"),
             args.out)
    if args.json:
        print_json({"index": args.index, "out": args.out, "snippets": [
            {"snippet": s.snippet, "regions": [{"image": r.image, "region": r.region, "class": r.class_name,
                                                "box": r.box, "score": r.score} for r in s.regions]}
            for s in result.snippets]})
        return 0
    for s in result.snippets:
        print(s.snippet)
        for k, r in enumerate(s.regions, 1):
            print(f"  {k:2d}. {r.score:8.3f}  {r.image}  #{r.region} {r.class_name}")
    print(f"sheet: {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sheet", help="contact sheet of the regions that best match text snippets",
                       description="For each snippet, the regions of an index's photos (`scenetalk index build`) "
                                   "with the best match score (how well the region fits the snippet's words; higher "
                                   "is better), cropped from the photos (Karpathy & Fei-Fei Figures 9-10). The "
                                   "whole photo is left out unless --include-whole, and a photo gives one region a "
                                   "row unless --per-photo.")
    p.add_argument("index", metavar="INDEX")
    p.add_argument("snippets", nargs="+", metavar="SNIPPET")
    p.add_argument("--out", required=True, metavar="SHEET.png", help="the contact sheet to write")
    p.add_argument("--top", type=int, default=8, help="regions per snippet (default 8)")
    p.add_argument("--per-photo", type=int, default=1, help="regions one photo may give a row (default 1)")
    p.add_argument("--include-whole", action="store_true", help="let region 0, the whole photo, compete too")
    p.add_argument("--images", metavar="DIR",
                   help="the folder the index was built from (default: the one the index records)")
    add_json(p, "each snippet's regions, boxes and scores")
    add_checkpoint(p, default="the one the index was built with")
    p.set_defaults(func=run)
