"""``scenetalk evaluate``: caption metrics of a checkpoint (or the nearest-neighbour
baseline) on a dataset split, printed and saved as JSON."""

from __future__ import annotations

import argparse
import json
import time

import torch

from scenetalk.errors import ScenetalkError

SHOWN = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "SPICE")


def run(args: argparse.Namespace) -> int:
    from scenetalk.captioner import caption_features, load_generator
    from scenetalk.data.registry import load_dataset
    from scenetalk.evaluation import caption_report, nearest_neighbour_captions
    from scenetalk.features.store import FeatureStore
    from scenetalk.io import atomic_write_text
    from scenetalk.training import build_examples, perplexity

    if bool(args.checkpoint) == bool(args.nearest_neighbour):
        raise ScenetalkError("give a CHECKPOINT or --nearest-neighbour (not both)")
    dataset = load_dataset(args.dataset, root=args.root)
    store = FeatureStore.open(args.features)
    row_of = store.row_index
    started = time.time()
    extra: dict = {}
    if args.nearest_neighbour:
        feats = store.model_input("global")
        captions = nearest_neighbour_captions(dataset, args.split, feats, row_of)
        what = "nearest-neighbour baseline (L2 on global CNN features)"
    else:
        model, vocab, meta = load_generator(args.checkpoint, expect_extractor_id=store.extractor_id)
        feats = store.model_input(model.image_input)
        images = dataset.split(args.split)
        rows = torch.tensor([row_of[im.relpath] for im in images])
        caps = caption_features(model, vocab, feats[rows], beam_size=args.beam, max_len=args.max_len,
                                length_penalty=args.length_penalty)
        captions = {im.relpath: c[0].text for im, c in zip(images, caps)}
        examples = build_examples(dataset, args.split, vocab, row_of, max_words=10_000)
        extra["perplexity"] = perplexity(model, feats, examples, vocab.pad_id)
        what = f"{args.checkpoint} ({meta['model']['type']}), beam {args.beam}"
    report = caption_report(captions, dataset, args.split, meteor=not args.no_meteor)
    report.update(extra, what=what, dataset=args.dataset, seconds=round(time.time() - started, 1))
    report["examples"] = dict(list(captions.items())[:10])
    print(f"{what}: {args.dataset} {args.split}, {report['images']} images")
    for k in SHOWN:
        v = report["scores"].get(k)
        print(f"  {k:8s} {v * 100:6.1f}" if isinstance(v, float) else f"  {k:8s} {v}")
    if "perplexity" in report:
        print(f"  perplexity {report['perplexity']:.2f}")
    print(f"  in training set {100 * report['in_training_set']:.1f}%   vocabulary used {report['vocabulary_used']}"
          f"   mean length {report['mean_length']:.1f} words")
    if args.out:
        atomic_write_text(args.out, json.dumps(report, indent=1, ensure_ascii=False))
        print(f"saved {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="caption metrics of a checkpoint on a dataset split",
                       description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT", help="checkpoint folder")
    p.add_argument("--nearest-neighbour", action="store_true", help="score the nearest-neighbour baseline instead")
    p.add_argument("--features", required=True, help="feature store of the dataset's images")
    p.add_argument("--dataset", default="flickr8k")
    p.add_argument("--root", help="data root")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--beam", type=int, default=7, help="beam size (1 = greedy; default 7, as both papers)")
    p.add_argument("--max-len", type=int, default=20)
    p.add_argument("--length-penalty", type=float, default=0.0)
    p.add_argument("--no-meteor", action="store_true", help="skip METEOR (its Java start costs seconds)")
    p.add_argument("--out", help="write the report here as JSON")
    p.set_defaults(func=run)
