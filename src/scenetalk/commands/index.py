"""``scenetalk index build DIR --out INDEX``: make a folder of photos searchable with sentences."""

from __future__ import annotations

import argparse

from scenetalk.commands import add_checkpoint, add_quiet, add_ray, ray_target, warn


def run(args: argparse.Namespace) -> int:
    from scenetalk.retrieval.index import index_folder

    summary = index_folder(args.folder, args.out, args.checkpoint, recursive=args.recursive,
                           sentence_file=args.sentences, progress=not args.quiet, overwrite=args.overwrite,
                           ray=ray_target(args), **faiss_codes(args))
    if summary.blank_lines:
        warn("index", f"skipped {summary.blank_lines} blank line(s) of {args.sentences}")
    for name in summary.skipped:
        warn("index", f"skipped {name} (not readable as an image)")
    print(f"indexed {summary.photos} images of {args.folder} into {summary.out}"
          + (f" ({len(summary.skipped)} skipped)" if summary.skipped else "")
          + (f", with {summary.sentences} sentences for `scenetalk describe`" if summary.sentences else ""))
    return 0


def run_add(args: argparse.Namespace) -> int:
    from scenetalk.retrieval.index import add_to_index

    summary = add_to_index(args.index, args.folder, args.checkpoint, recursive=args.recursive,
                           progress=not args.quiet, ray=ray_target(args), **faiss_codes(args))
    for name in summary.skipped:
        warn("index", f"skipped {name} (not readable as an image)")
    if not summary.added:
        print(f"nothing to add: {summary.index} holds the {summary.already} images of {summary.folder} already"
              + (f", and {len(summary.skipped)} more could not be read" if summary.skipped else "")
              + f" ({summary.photos} images in all)")
    else:
        print(f"added {summary.added} images of {summary.folder} to {summary.index} as {summary.part}"
              + (f" ({summary.already} were in it already)" if summary.already else "")
              + f"; it holds {summary.photos} images")
    return 0


def run_attach(args: argparse.Namespace) -> int:
    from scenetalk.retrieval.index import attach_index

    summary = attach_index(args.index, args.other, args.folder, progress=not args.quiet)
    if summary.sentences_left:
        warn("index", f"{summary.attached}: its {summary.sentences_left} sentences are not attached (describe reads "
                      f"the collection of {summary.index})")
    where = "" if summary.prefix == "." else f" (its photos as {summary.prefix}/...)"
    print(f"attached {summary.attached} to {summary.index} as {summary.part}: {summary.added} images{where}; "
          f"it holds {summary.photos} images")
    return 0


def add_faiss_codes(p: argparse.ArgumentParser) -> None:
    # No default here: the library's (candidates.DEFAULT_FAISS_CODES) applies, and --help stays light.
    p.add_argument("--faiss-codes", metavar="CODES",
                   help="what the candidate lists of a large collection (FAISS, from 100,000 photos) store: SQfp16 "
                        "(float16, ~2 KB a photo; the default) or PQm (m bytes a photo, e.g. PQ100: 1/18 of the "
                        "memory for 92%% of the candidate recall at 1M photos, less at 10M: docs/scale.md)")


def faiss_codes(args: argparse.Namespace) -> dict:
    return {"faiss_codes": args.faiss_codes} if args.faiss_codes else {}


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
    add_faiss_codes(b)
    add_ray(b)
    add_quiet(b)
    b.set_defaults(func=run)
    a = actions.add_parser("add", help="add new photos to an index, without rebuilding it",
                           description="Index the photos of the index's folder (or of a sub-folder, DIR) that it does "
                                       "not hold yet, as a new part of it; what it holds is not read again.")
    a.add_argument("index", metavar="INDEX", help="index folder (`scenetalk index build`)")
    a.add_argument("folder", metavar="DIR", nargs="?",
                   help="where the new photos are: the index's folder (the default) or a folder inside it")
    add_checkpoint(a, default="the one INDEX was built with, else the shipped one")
    a.add_argument("--recursive", action="store_true", help="look for images in sub-folders too")
    add_faiss_codes(a)
    add_ray(a)
    add_quiet(a)
    a.set_defaults(func=run_add)
    t = actions.add_parser("attach", help="search an index built elsewhere as part of this one",
                           description="Copy OTHER, an index built on another machine or of another folder with the "
                                       "same alignment model, into INDEX as a part of it, its photos' names rebased on "
                                       "INDEX's folder: one search then answers over both. OTHER is not changed.")
    t.add_argument("index", metavar="INDEX", help="index folder (`scenetalk index build`)")
    t.add_argument("other", metavar="OTHER", help="the index folder to attach")
    t.add_argument("--folder", metavar="DIR",
                   help="where OTHER's photos are as this machine sees them (default: the folder OTHER records); "
                        "INDEX's folder or a folder inside it")
    add_quiet(t)
    t.set_defaults(func=run_attach)
