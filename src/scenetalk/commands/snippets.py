"""``scenetalk snippets CHECKPOINT``: align every training sentence to its image's regions with
the chain MRF (Karpathy & Fei-Fei §3.1.4) and save the region-snippet corpus that the region
generator trains on."""

from __future__ import annotations

import argparse
from pathlib import Path

from scenetalk.errors import ScenetalkError
from scenetalk.grounding.word_regions import DEFAULT_BETA


def run(args: argparse.Namespace) -> int:
    from scenetalk.checkpoint import checkpoint_id, load_alignment
    from scenetalk.data.registry import load_dataset
    from scenetalk.features.store import FeatureStore
    from scenetalk.grounding.snippets import region_corpus, save_corpus, snippet_length_summary

    if args.beta < 0:
        raise ScenetalkError(f"--beta must be >= 0 (got {args.beta})")
    splits = [s for s in args.splits.split(",") if s]
    if "test" in splits:
        raise ScenetalkError("--splits: the corpus is training data; leave the test split out")
    dataset = load_dataset(args.dataset, root=args.root)
    store = FeatureStore.open(args.features)
    if not store.has_regions:
        raise ScenetalkError(f"{args.features}: has no region features; run `scenetalk features --regions`")
    model, vocab, _ = load_alignment(args.checkpoint, expect_extractor_id=store.extractor_id)
    snippets = region_corpus(model, vocab, dataset, store, splits, args.beta, progress=not args.quiet)
    summary = snippet_length_summary(snippets)
    meta = {"beta": args.beta, "checkpoint": str(args.checkpoint), "checkpoint_id": checkpoint_id(args.checkpoint),
            "extractor_id": store.extractor_id, "features": str(args.features), "dataset": args.dataset,
            "splits": splits, "num_regions": int(store.boxes.shape[1]), "summary": summary}
    save_corpus(args.out, snippets, meta)
    print(f"{summary['snippets']} snippets ({summary['informative']} with a content word) from "
          f"{len(set((s['image'], s['sentence']) for s in snippets))} sentences, beta {args.beta}, "
          f"mean length {summary['mean_words']} words")
    print("words per snippet: " + ", ".join(f"{k}: {v}" for k, v in summary["lengths"].items())
          + f", >10: {summary['longer_than_10']}")
    print(f"wrote {Path(args.out)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("snippets", help="align training sentences to image regions (MRF) and save the snippets",
                       description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="alignment checkpoint")
    p.add_argument("--features", required=True, help="feature store with region features")
    p.add_argument("--dataset", default="flickr8k")
    p.add_argument("--root", help="data root")
    p.add_argument("--splits", default="train,val", help="comma-separated (default train,val; never test)")
    p.add_argument("--beta", type=float, default=DEFAULT_BETA,
                   help=f"MRF bonus for neighbouring words on one region (default {DEFAULT_BETA}, chosen on dev)")
    p.add_argument("--out", required=True, help="corpus file (JSON)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
