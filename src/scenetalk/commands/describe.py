"""``scenetalk describe INDEX IMAGE``: the sentences of a collection that best match a photo."""

from __future__ import annotations

import argparse

from scenetalk.commands import add_checkpoint, add_json, add_rerank, print_json, print_ranking, rerank_choice, warn
from scenetalk.errors import ScenetalkError


def run(args: argparse.Namespace) -> int:
    from scenetalk.api import load

    if args.top < 1:
        raise ScenetalkError(f"--top must be at least 1 (got {args.top})")
    from scenetalk.retrieval.search import DESCRIBE_GENERATED, GENERATED
    from scenetalk.retrieval.sentence_ranking import DESCRIBE_RERANK_TOP

    rerank = rerank_choice(args, DESCRIBE_RERANK_TOP, "sentences")
    result = load(captioner=args.captioner, alignment=args.checkpoint).describe(
        args.index, args.image, k=args.top, sentence_file=args.sentences, rerank=rerank, warn=False,
        hub_weight=args.hub_weight)
    if result.sentences == GENERATED:
        warn("describe", f"the index holds no sentences: ranked the captioner's {DESCRIBE_GENERATED} best captions "
                         "of the photo (`scenetalk index build ... --sentences FILE` stores a collection to rank)")
    if result.not_reranked:
        warn("describe", f"ranked by match score alone, not re-ranked: {result.not_reranked} "
                         "(--captioner to name one that reads them; --no-rerank to skip this)")
    if result.blank_lines:
        warn("describe", f"skipped {result.blank_lines} blank line(s) of {args.sentences}")
    for sentence, words in (result.unknown_words or {}).items():
        warn("describe", f"{sentence!r}: ignored words the model does not know: {', '.join(words)}")
    if args.json:
        print_json(result)  # the result's one JSON form, as the web API answers it
    else:
        print(f"scores: {result.scores}")
        print_ranking([(h.sentence, h.score) for h in result.hits])
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("describe", help="find the sentences that match a photo",
                       description="Rank a collection of sentences by their match score with a photo (how well "
                                   "the photo's regions fit the sentence's words, each word on the region it fits "
                                   "best, summed; higher is better), re-ranked by the captioner: one of the "
                                   "index's photos, or an image file. The output says which, and what the scores "
                                   "mean.")
    p.add_argument("index", metavar="INDEX")
    p.add_argument("image", metavar="IMAGE", help="a photo's name in the index, or an image file")
    p.add_argument("--sentences", metavar="FILE",
                   help="sentences to rank, one per line (default: the collection stored in the index with "
                        "`scenetalk index build --sentences`)")
    p.add_argument("--top", type=int, default=5, help="how many sentences (default 5)")
    add_rerank(p, "sentences", 100, "match score plus how much likelier the captioner finds the sentence for this "
                                    "photo than for an average one, per word")
    p.add_argument("--hub-weight", type=float, metavar="W",
                   help="lower each match score by W × how well the sentence fits photos in general, so that "
                        "sentences that fit any photo count less (default: the value chosen on Flickr8K val; "
                        "0: not)")
    add_json(p, "the ranking")
    add_checkpoint(p, default="the one the index was built with")
    p.set_defaults(func=run)
