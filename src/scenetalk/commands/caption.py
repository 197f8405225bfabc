"""``scenetalk caption IMAGE_OR_DIR ...``: describe photos with the shipped (or a given) captioner.

Folders are captioned image by image in batches; files that cannot be read (not an image,
corrupt, missing) are reported on stderr and skipped. The exit status is non-zero only when
nothing could be captioned.
"""

from __future__ import annotations

import argparse
import os
import sys

from scenetalk.commands import add_checkpoint, add_json, add_quiet, print_json, warn
from scenetalk.errors import ImageError, ScenetalkError


def collect_inputs(targets: list[str], recursive: bool) -> tuple[list[str], list[str]]:
    """Image paths named by ``targets`` (files, or folders listed by extension), and one
    line for each target that gave nothing (missing path, empty folder, other files)."""
    from scenetalk.vision.images import is_image_file, list_images

    paths, problems = [], []
    for target in targets:
        if os.path.isdir(target):
            found = list_images(target, recursive=recursive)
            others = _other_files(target, recursive, is_image_file)
            if others:
                problems.append(f"{target}: skipped {len(others)} file(s) that are not images by name "
                                f"(e.g. {others[0]})")
            if not found:
                problems.append(f"{target}: no images in this folder"
                                + ("" if recursive else " (use --recursive to look in sub-folders)"))
            paths.extend(os.path.join(target, rel) for rel in found)
        elif os.path.exists(target):
            paths.append(target)
        else:
            problems.append(f"{target}: no such file or folder")
    return paths, problems


def _other_files(folder: str, recursive: bool, is_image) -> list[str]:
    if recursive:
        return sorted(os.path.relpath(os.path.join(root, n), folder) for root, dirs, files in os.walk(folder)
                      for n in files if not n.startswith(".") and not is_image(n))
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")
                  and not is_image(e.name))


def run(args: argparse.Namespace) -> int:
    from scenetalk.api import load
    from scenetalk.progress import progress_bar
    from scenetalk.vision.images import load_image

    if args.beam < 1 or args.n_best < 1 or args.n_best > args.beam:
        raise ScenetalkError(f"need 1 <= --n-best <= --beam (got --beam {args.beam}, --n-best {args.n_best})")
    if args.batch_size < 1 or args.max_len < 1:
        raise ScenetalkError(f"--batch-size and --max-len must be at least 1 (got {args.batch_size} and {args.max_len})")
    paths, problems = collect_inputs(args.inputs, args.recursive)
    for line in problems:
        warn("caption", line)
    if not paths:
        raise ScenetalkError("nothing to caption")
    model = load(args.checkpoint).captioner
    results, failed = [], 0
    bar = progress_bar(total=len(paths), unit="image", disable=args.quiet or len(paths) <= args.batch_size)
    for start in range(0, len(paths), args.batch_size):
        batch_paths, batch_images = [], []
        for path in paths[start:start + args.batch_size]:
            try:
                batch_images.append(load_image(path))
                batch_paths.append(path)
            except ImageError as exc:
                failed += 1
                bar.write(f"scenetalk caption: skipped {exc}", file=sys.stderr)
        if batch_images:
            captions = model.caption(batch_images, beam_size=args.beam, n_best=args.n_best, max_len=args.max_len,
                                     length_penalty=args.length_penalty, batch_size=args.batch_size)
            for path, caps in zip(batch_paths, captions):
                results.append((path, caps))
                if not args.json:
                    _print_text(path, caps, bar)
        bar.update(len(paths[start:start + args.batch_size]))
    bar.close()
    if args.json:
        print_json([{"image": path, "captions": caps} for path, caps in results])
    if failed:
        warn("caption", f"{failed} of {len(paths)} image(s) could not be read")
    if not results:
        raise ScenetalkError("no image could be captioned")
    return 0


def _print_text(path: str, captions, bar) -> None:
    if len(captions) == 1:
        bar.write(f"{path}\t{captions[0].text}")
        return
    bar.write(path)
    for k, c in enumerate(captions, 1):
        bar.write(f"  {k}. {c.text}  (log p = {c.log_prob:.2f})")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("caption", help="describe images with a sentence",
                       description="Caption image files and folders of images with the shipped captioner "
                                   "(or --checkpoint). Unreadable files are reported and skipped.")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    p.add_argument("--beam", type=int, default=7, help="beam size (default 7, as in both papers; 1 = greedy)")
    p.add_argument("--n-best", type=int, default=1, help="captions per image (default 1)")
    p.add_argument("--max-len", type=int, default=20, help="longest caption in words (default 20)")
    p.add_argument("--length-penalty", type=float, default=None,
                   help="beam scores = log p / length**this (default: the checkpoint's, chosen on validation)")
    add_json(p, "each image with its captions (text, log-probability, beam score)")
    add_checkpoint(p, "a caption generator checkpoint folder")
    p.add_argument("--recursive", action="store_true", help="look for images in sub-folders too")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    add_quiet(p)
    p.set_defaults(func=run)
