"""``scenetalk caption IMAGE_OR_DIR ...``: describe photos with the shipped (or a given) captioner.

Folders are captioned image by image in batches; files that cannot be read (not an image,
corrupt, missing) are reported on stderr and skipped. The exit status is non-zero only when
nothing could be captioned.
"""

from __future__ import annotations

import argparse
import sys

from scenetalk.commands import add_checkpoint, add_json, add_quiet, print_json
from scenetalk.weights import CAPTION_LANGUAGES, CAPTIONER_NAMES


def run(args: argparse.Namespace) -> int:
    from scenetalk.api import load

    captioned = load(args.checkpoint, lang=args.lang).caption_files(
        args.inputs, recursive=args.recursive, beam_size=args.beam, n_best=args.n_best, max_len=args.max_len,
        length_penalty=args.length_penalty, batch_size=args.batch_size, on_problem=_note, progress=not args.quiet)
    if args.json:
        print_json(list(captioned))
    else:
        for item in captioned:
            _print_text(item)
    return 0


def _note(line: str) -> None:
    # tqdm.write, like every line printed while the progress bar may be drawn: it keeps the bar whole.
    from tqdm import tqdm

    tqdm.write(f"scenetalk caption: {line}", file=sys.stderr)


def _print_text(item) -> None:
    from tqdm import tqdm

    if len(item.captions) == 1:
        tqdm.write(f"{item.image}\t{item.captions[0].text}")
        return
    tqdm.write(item.image)
    for k, c in enumerate(item.captions, 1):
        tqdm.write(f"  {k}. {c.text}  (log p = {c.log_prob:.2f})")


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
    add_checkpoint(p, "a caption generator checkpoint folder, or a shipped English captioner by name: "
                      + " or ".join(CAPTIONER_NAMES), default=f"{next(iter(CAPTIONER_NAMES))} for English",
                   metavar="DIR|NAME")
    p.add_argument("--lang", default="en", metavar="|".join(CAPTION_LANGUAGES),
                   help="the language of the shipped captioner: "
                        + ", ".join(f"{k} {v}" for k, v in CAPTION_LANGUAGES.items()) + " (default en)")
    p.add_argument("--recursive", action="store_true", help="look for images in sub-folders too")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    add_quiet(p)
    p.set_defaults(func=run)
