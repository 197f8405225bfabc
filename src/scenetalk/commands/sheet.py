"""``scenetalk sheet INDEX "red shirt" "dog" --out sheet.png``: the regions of a collection
that best match each text snippet, as a contact sheet (Karpathy & Fei-Fei Figures 9-10).

A region i scores a snippet by Σ_t v_iᵀ s_t over the snippet's words (its words' BRNN
vectors against the region vectors the index stores). The whole photo (region 0) is left
out unless --include-whole, and by default a photo gives at most one region per row, so a
row shows --top different photos rather than overlapping boxes of one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from scenetalk.errors import ScenetalkError

#: Index photos scored per step, so a large memory-mapped index is read in pieces.
CHUNK = 4096


def best_regions(vectors: np.ndarray, query: np.ndarray, top: int, include_whole: bool = False,
                 per_photo: int = 1) -> list[tuple[int, int, float]]:
    """The ``top`` best (photo row, region, score) of ``vectors`` (N, R, h) for the summed word
    vectors ``query`` (h,): Σ_t v_iᵀ s_t = v_iᵀ Σ_t s_t, one matrix-vector product."""
    scores = np.concatenate([np.asarray(vectors[i:i + CHUNK], dtype=np.float32) @ query
                             for i in range(0, len(vectors), CHUNK)])          # (N, R)
    first = 0 if include_whole else 1
    scores = scores[:, first:]
    flat = scores.ravel()
    # Among the best top * R regions there are at least `top` photos (a photo has R regions),
    # so the per-photo limit can be met without sorting every region.
    keep = min(len(flat), top * scores.shape[1] * max(1, per_photo))
    candidates = np.argpartition(-flat, keep - 1)[:keep]
    out, taken = [], {}
    for j in candidates[np.argsort(-flat[candidates], kind="stable")]:
        row, region = divmod(int(j), scores.shape[1])
        if taken.get(row, 0) >= per_photo:
            continue
        taken[row] = taken.get(row, 0) + 1
        out.append((row, region + first, float(flat[j])))
        if len(out) == top:
            break
    return out


def images_folder(args: argparse.Namespace, meta: dict) -> Path:
    """Where the index's photos are: --images, else the folder the index records (if any)."""
    folder = args.images or meta.get("folder")
    if not folder:
        raise ScenetalkError(f"{args.index}: the index does not record where its photos are; "
                             "pass --images DIR (the folder it was built from)")
    if not Path(folder).is_dir():
        raise ScenetalkError(f"{folder}: not a folder (pass --images DIR, the folder the index was built from)")
    return Path(folder)


def run(args: argparse.Namespace) -> int:
    import torch

    from scenetalk.api import open_searcher
    from scenetalk.features.store import FeatureStore
    from scenetalk.presentation.pictures import crop_region, save_png, snippet_sheet
    from scenetalk.retrieval.index import FEATURES_DIR
    from scenetalk.vision.images import load_image

    if args.top < 1 or args.per_photo < 1:
        raise ScenetalkError(f"--top and --per-photo must be at least 1 (got {args.top} and {args.per_photo})")
    searcher = open_searcher(args.index, args.checkpoint)
    folder = images_folder(args, searcher.meta)
    store = FeatureStore.open(Path(args.index) / FEATURES_DIR)
    results = []
    with torch.no_grad():
        for snippet in args.snippets:   # every snippet is checked before anything is drawn
            s, unknown = searcher.embed_query(snippet)
            if unknown:
                print(f"scenetalk sheet: {snippet!r}: ignored words the model does not know: {', '.join(unknown)}",
                      file=sys.stderr)
            hits = best_regions(searcher.vectors, s.sum(dim=0).numpy(), args.top, args.include_whole, args.per_photo)
            results.append((snippet, hits))
    photos: dict[str, object] = {}
    rows, records = [], []
    for snippet, hits in results:
        crops, found = [], []
        for row, region, score in hits:
            name = searcher.names[row]
            if name not in photos:
                photos[name] = load_image(folder / name)
            box = store.boxes[store.row(name), region]
            crops.append((crop_region(photos[name], box), f"{score:.2f}"))
            found.append({"image": name, "region": region,
                          "class": store.class_name(store.box_classes[store.row(name), region]),
                          "box": [round(float(x), 4) for x in box], "score": round(score, 4)})
        rows.append((snippet, crops))
        records.append({"snippet": snippet, "regions": found})
    title = f"best regions of {len(searcher.names):,} photos for each snippet (Σ_t v_iᵀ s_t)"
    save_png(snippet_sheet(rows, title=title), args.out)
    if args.json:
        json.dump({"index": args.index, "out": args.out, "snippets": records}, sys.stdout, indent=1,
                  ensure_ascii=False)
        print()
        return 0
    for rec in records:
        print(rec["snippet"])
        for k, r in enumerate(rec["regions"], 1):
            print(f"  {k:2d}. {r['score']:8.3f}  {r['image']}  #{r['region']} {r['class']}")
    print(f"sheet: {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sheet", help="contact sheet of the regions that best match text snippets",
                       description="For each snippet, the regions of an index (`scenetalk index build`) with "
                                   "the highest alignment score, cropped from the photos (Karpathy & Fei-Fei "
                                   "Figures 9-10).")
    p.add_argument("index", metavar="INDEX")
    p.add_argument("snippets", nargs="+", metavar="SNIPPET")
    p.add_argument("--out", required=True, metavar="SHEET.png", help="the contact sheet to write")
    p.add_argument("--top", type=int, default=8, help="regions per snippet (default 8)")
    p.add_argument("--per-photo", type=int, default=1, help="regions one photo may give a row (default 1)")
    p.add_argument("--include-whole", action="store_true", help="let region 0, the whole photo, compete too")
    p.add_argument("--images", metavar="DIR", help="the folder the index was built from (where its photos are)")
    p.add_argument("--json", action="store_true", help="print JSON: each snippet's regions, boxes and scores")
    p.add_argument("--checkpoint", help="alignment checkpoint (default: the one the index was built with)")
    p.set_defaults(func=run)
