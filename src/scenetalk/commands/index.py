"""``scenetalk index build DIR --out INDEX``: make a folder of photos searchable with sentences."""

from __future__ import annotations

import argparse
import os
import sys

from scenetalk.errors import ScenetalkError


def run(args: argparse.Namespace) -> int:
    from scenetalk.retrieval.index import build_index
    from scenetalk.vision.images import list_images
    from scenetalk.weights import shipped_alignment

    found = list_images(args.folder, recursive=args.recursive)
    if not found:
        raise ScenetalkError(f"{args.folder}: no images in this folder"
                             + ("" if args.recursive else " (use --recursive to look in sub-folders)"))
    checkpoint = args.checkpoint or shipped_alignment()
    sentences = None
    if args.sentences:  # read before the (long) feature extraction, so a bad file fails fast
        from scenetalk.checkpoint import read_meta
        from scenetalk.retrieval.index import read_sentence_file

        language = read_meta(checkpoint).get("vocabulary", {}).get("language", "en")
        sentences, blank = read_sentence_file(args.sentences, language)
        if blank:
            print(f"scenetalk index: skipped {blank} blank line(s) of {args.sentences}", file=sys.stderr)
    out = build_index([(rel, os.path.join(args.folder, rel)) for rel in found], args.out, checkpoint,
                      progress=not args.quiet, sentences=sentences,
                      overwrite=args.overwrite)
    from scenetalk.retrieval.search import Searcher

    searcher = Searcher(out, checkpoint)
    skipped = searcher.meta.get("bad", [])
    for name in skipped:
        print(f"scenetalk index: skipped {name} (not readable as an image)", file=sys.stderr)
    print(f"indexed {len(searcher.names)} images of {args.folder} into {out}"
          + (f" ({len(skipped)} skipped)" if skipped else "")
          + (f", with {len(sentences)} sentences for `scenetalk describe`" if sentences else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="build a search index of a folder of photos",
                       description="Extract features and 20 regions of every photo in a folder (resumable) and "
                                   "embed them with the alignment model, for `scenetalk search`.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    b = actions.add_parser("build", help="index a folder of photos")
    b.add_argument("folder", metavar="DIR")
    b.add_argument("--out", required=True, metavar="INDEX", help="index folder to write")
    b.add_argument("--checkpoint", help="alignment checkpoint (default: the shipped one)")
    b.add_argument("--recursive", action="store_true", help="look for images in sub-folders too")
    b.add_argument("--sentences", metavar="FILE",
                   help="sentences (one per line) to store in the index, embedded once, for `scenetalk describe`")
    b.add_argument("--overwrite", action="store_true",
                   help="start again when INDEX holds features of another extractor or photo list")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=run)
