"""``scenetalk search INDEX "a dog runs on the beach"``: the photos that best match a sentence."""

from __future__ import annotations

import argparse
import json
import sys

from scenetalk.errors import ScenetalkError


def run(args: argparse.Namespace) -> int:
    from scenetalk.api import open_searcher

    if args.top < 1 or args.candidates < 1:
        raise ScenetalkError(f"--top and --candidates must be at least 1 (got {args.top} and {args.candidates})")
    searcher = open_searcher(args.index, args.checkpoint)
    result = searcher.search(args.query, k=args.top, candidates=args.candidates)
    if result.unknown_words:
        print(f"scenetalk search: ignored words the model does not know: {', '.join(result.unknown_words)}",
              file=sys.stderr)
    print_ranking(args.json, {"query": result.query, "unknown_words": result.unknown_words, "exact": result.exact},
                  "image", [(h.name, h.score) for h in result.hits])
    return 0


def print_ranking(as_json: bool, payload: dict, key: str, hits: list[tuple[str, float]]) -> None:
    """Ranked (item, score) pairs on stdout: numbered lines, or JSON (``payload`` plus the hits,
    each item under ``key``); shared by ``search`` and ``describe``."""
    if as_json:
        json.dump({**payload, "hits": [{key: item, "score": round(score, 4)} for item, score in hits]},
                  sys.stdout, indent=1, ensure_ascii=False)
        print()
    else:
        for rank, (item, score) in enumerate(hits, 1):
            print(f"{rank:3d}. {score:9.3f}  {item}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="find the photos of an index that match a sentence",
                       description="Rank the photos of an index (`scenetalk index build`) by the alignment "
                                   "score S_kl of the sentence (Karpathy & Fei-Fei eq. 8).")
    p.add_argument("index", metavar="INDEX")
    p.add_argument("query", metavar="SENTENCE")
    p.add_argument("--top", type=int, default=10, help="how many photos (default 10)")
    p.add_argument("--candidates", type=int, default=1000,
                   help="photos scored exactly after the bound stage (default 1000)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--checkpoint", help="alignment checkpoint (default: the one the index was built with)")
    p.set_defaults(func=run)
