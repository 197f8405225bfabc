"""``scenetalk search INDEX "a dog runs on the beach"``: the photos that best match a sentence."""

from __future__ import annotations

import argparse

from scenetalk.commands import add_checkpoint, add_json, add_rerank, print_json, print_ranking, rerank_choice, warn
from scenetalk.errors import ScenetalkError
from scenetalk.weights import CAPTION_LANGUAGES


def run(args: argparse.Namespace) -> int:
    from scenetalk.api import load
    from scenetalk.retrieval.search import RERANK_TOP

    if args.top < 1 or args.candidates < 1:
        raise ScenetalkError(f"--top and --candidates must be at least 1 (got {args.top} and {args.candidates})")
    rerank = rerank_choice(args, RERANK_TOP, "photos")
    result = load(captioner=args.captioner, alignment=args.checkpoint).search(
        args.index, args.query, k=args.top, candidates=args.candidates, rerank=rerank, warn=False, lang=args.lang)
    if result.not_reranked:
        warn("search", f"ranked by match score alone, not re-ranked: {result.not_reranked} "
                       "(--captioner to name one that reads them; --no-rerank to skip this)")
    for p in result.placed_words:
        warn("search", f"{p.word!r} is not in the model's vocabulary: placed near {', '.join(p.near)} "
                       "by pretrained word vectors")
    if result.unknown_words:
        warn("search", f"ignored words the model does not know: {', '.join(result.unknown_words)}")
    if args.json:  # the result's one JSON form, as the web API answers it
        print_json(result)
        return 0
    print(f"scores: {result.scores}")
    print_ranking([(h.name, h.score) for h in result.hits])
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="find the photos of an index that match a sentence",
                       description="Rank the photos of an index (`scenetalk index build`) by how well they match a "
                                   "sentence: by default the match score (how well the photo's regions fit the "
                                   "sentence's words, each word on the region it fits best), re-ranked by the "
                                   "captioner. The output says which, and what the scores mean.")
    p.add_argument("index", metavar="INDEX")
    p.add_argument("query", metavar="SENTENCE")
    p.add_argument("--top", type=int, default=10, help="how many photos (default 10)")
    p.add_argument("--lang", metavar="|".join(CAPTION_LANGUAGES), default=None,
                   help="the sentence's language, for an index whose model reads several (default: detected)")
    p.add_argument("--candidates", type=int, default=1000,
                   help="photos given their exact match score after a quick first pass (default 1000)")
    add_rerank(p, "photos", 100, "match score plus how likely the captioner finds the sentence for the photo "
                                 "(on Flickr8K test the right photo comes first for 25.6%% of sentences instead of "
                                 "14.9%%)")
    add_json(p, "the ranking")
    add_checkpoint(p, default="the one the index was built with")
    p.set_defaults(func=run)
