"""``scenetalk snippets CHECKPOINT``: align every training sentence to its image's regions with
the chain MRF (Karpathy & Fei-Fei §3.1.4) and save the region-snippet corpus that the region
generator trains on."""

from __future__ import annotations

import argparse
from pathlib import Path

from scenetalk.commands import add_beta, add_features, add_quiet, add_root


def run(args: argparse.Namespace) -> int:
    from scenetalk.grounding.snippets import build_corpus

    s = build_corpus(args.checkpoint, args.features, args.out, dataset=args.dataset, root=args.root,
                     splits=[s for s in args.splits.split(",") if s], beta=args.beta, progress=not args.quiet)
    print(f"{s.snippets} snippets ({s.informative} with a content word) from {s.sentences} sentences, "
          f"beta {s.beta}, mean length {s.mean_words} words")
    print("words per snippet: " + ", ".join(f"{k}: {v}" for k, v in s.lengths.items())
          + f", >10: {s.longer_than_10}")
    print(f"wrote {Path(s.out)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("snippets", help="align training sentences to image regions (MRF) and save the snippets",
                       description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="alignment checkpoint")
    add_features(p, "feature store with region features")
    p.add_argument("--dataset", default="flickr8k")
    add_root(p)
    p.add_argument("--splits", default="train,val", help="comma-separated (default train,val; never test)")
    add_beta(p)
    p.add_argument("--out", required=True, help="corpus file (JSON)")
    add_quiet(p)
    p.set_defaults(func=run)
