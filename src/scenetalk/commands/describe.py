"""``scenetalk describe INDEX IMAGE``: the sentences of a collection that best match a photo."""

from __future__ import annotations

import argparse
import sys

from scenetalk.errors import ScenetalkError


def run(args: argparse.Namespace) -> int:
    from scenetalk.api import open_searcher
    from scenetalk.commands.search import print_ranking
    from scenetalk.retrieval.index import read_sentence_file

    if args.top < 1:
        raise ScenetalkError(f"--top must be at least 1 (got {args.top})")
    searcher = open_searcher(args.index, args.checkpoint)
    sentences = None
    if args.sentences:
        sentences, blank = read_sentence_file(args.sentences, searcher.vocab.language)
        if blank:
            print(f"scenetalk describe: skipped {blank} blank line(s) of {args.sentences}", file=sys.stderr)
    result = searcher.describe(args.image, k=args.top, sentences=sentences)
    print_ranking(args.json, {"image": result.image, "sentences": args.sentences or "index"}, "sentence",
                  [(h.sentence, h.score) for h in result.hits])
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("describe", help="find the sentences that match a photo",
                       description="Rank a collection of sentences by the alignment score S_kl (Karpathy & "
                                   "Fei-Fei eq. 8) of a photo: one of the index's photos, or an image file.")
    p.add_argument("index", metavar="INDEX")
    p.add_argument("image", metavar="IMAGE", help="a photo's name in the index, or an image file")
    p.add_argument("--sentences", metavar="FILE",
                   help="sentences to rank, one per line (default: the collection stored in the index with "
                        "`scenetalk index build --sentences`)")
    p.add_argument("--top", type=int, default=5, help="how many sentences (default 5)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--checkpoint", help="alignment checkpoint (default: the one the index was built with)")
    p.set_defaults(func=run)
