"""``scenetalk index build DIR --out INDEX``: make a folder of photos searchable with sentences."""

from __future__ import annotations

import argparse

from scenetalk.commands import add_checkpoint, add_quiet, warn


def run(args: argparse.Namespace) -> int:
    from scenetalk.retrieval.index import index_folder

    summary = index_folder(args.folder, args.out, args.checkpoint, recursive=args.recursive,
                           sentence_file=args.sentences, progress=not args.quiet, overwrite=args.overwrite)
    if summary.blank_lines:
        warn("index", f"skipped {summary.blank_lines} blank line(s) of {args.sentences}")
    for name in summary.skipped:
        warn("index", f"skipped {name} (not readable as an image)")
    print(f"indexed {summary.photos} images of {args.folder} into {summary.out}"
          + (f" ({len(summary.skipped)} skipped)" if summary.skipped else "")
          + (f", with {summary.sentences} sentences for `scenetalk describe`" if summary.sentences else ""))
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
    add_checkpoint(b)
    b.add_argument("--recursive", action="store_true", help="look for images in sub-folders too")
    b.add_argument("--sentences", metavar="FILE",
                   help="sentences (one per line) to store in the index, embedded once, for `scenetalk describe`")
    b.add_argument("--overwrite", action="store_true",
                   help="start again when INDEX holds features of another extractor or photo list")
    add_quiet(b)
    b.set_defaults(func=run)
