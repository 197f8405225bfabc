"""``scenetalk search INDEX "a dog runs on the beach"``: the photos that best match a sentence."""

from __future__ import annotations

import argparse
import json
import sys

from scenetalk.errors import ScenetalkError


def run(args: argparse.Namespace) -> int:
    from scenetalk.api import open_searcher
    from scenetalk.retrieval.search import RERANK_TOP, RERANK_WEIGHT

    if args.top < 1 or args.candidates < 1:
        raise ScenetalkError(f"--top and --candidates must be at least 1 (got {args.top} and {args.candidates})")
    rerank = 0 if args.no_rerank else None  # None: re-rank when the captioner can read the index
    if args.rerank is not None:  # "--rerank" alone: the default K
        try:
            rerank = int(args.rerank) if args.rerank else RERANK_TOP
        except ValueError:
            rerank = 0
        if rerank < 1:
            raise ScenetalkError(f"--rerank must be a whole number of photos, at least 1 (got {args.rerank!r})")
    result = open_searcher(args.index, args.checkpoint).search(
        args.query, k=args.top, candidates=args.candidates, rerank=rerank, captioner=args.captioner)
    if result.not_reranked:
        print(f"scenetalk search: ranked by S_kl alone, not re-ranked: {result.not_reranked} "
              "(--captioner to name one that reads them; --no-rerank to skip this)", file=sys.stderr)
    if result.unknown_words:
        print(f"scenetalk search: ignored words the model does not know: {', '.join(result.unknown_words)}",
              file=sys.stderr)
    payload = {"query": result.query, "unknown_words": result.unknown_words, "exact": result.exact}
    if result.hits and result.hits[0].log_likelihood is not None:
        payload["reranked"] = {"top": rerank or RERANK_TOP, "weight": RERANK_WEIGHT,
                               "log_likelihood": [round(h.log_likelihood, 4) for h in result.hits],
                               "alignment_score": [round(h.alignment_score, 4) for h in result.hits]}
    print_ranking(args.json, payload, "image", [(h.name, h.score) for h in result.hits])
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
    rerank = p.add_mutually_exclusive_group()
    rerank.add_argument("--rerank", nargs="?", const="", metavar="K",
                        help="rank the best K photos (default 100) again by S_kl + λ·log P(sentence | photo) of the "
                             "m-RNN captioner (the default when the captioner reads the index's features; on "
                             "Flickr8K test the right photo comes first for 25.6%% of sentences instead of 14.9%%)")
    rerank.add_argument("--no-rerank", action="store_true", help="rank by the alignment score S_kl alone")
    p.add_argument("--captioner", help="m-RNN captioner for --rerank (default: the shipped one)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--checkpoint", help="alignment checkpoint (default: the one the index was built with)")
    p.set_defaults(func=run)
