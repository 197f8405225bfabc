"""``scenetalk evaluate``: caption metrics of a generator checkpoint (or of the nearest-neighbour
baseline), or retrieval metrics of an alignment checkpoint, on a dataset split, printed and
saved as JSON."""

from __future__ import annotations

import argparse

from scenetalk.commands import add_features, add_quiet, add_root

SHOWN = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "SPICE")


def run(args: argparse.Namespace) -> int:
    from scenetalk.io import atomic_write_text
    from scenetalk.results import to_json
    from scenetalk.training.evaluation import CaptionEvaluation, evaluate

    r = evaluate(args.checkpoint, features=args.features, dataset=args.dataset, root=args.root, split=args.split,
                 nearest_neighbour=args.nearest_neighbour, human=args.human_agreement, retrieval=args.retrieval,
                 beam_size=args.beam,
                 max_len=args.max_len, length_penalty=args.length_penalty, meteor=not args.no_meteor,
                 precision=args.precision, folds=args.folds, progress=not args.quiet, lang=args.lang)
    if isinstance(r, CaptionEvaluation):
        print(f"{r.what}: {r.dataset} {r.split}, {r.images} images")
        for k in SHOWN:
            v = r.scores.get(k)
            print(f"  {k:8s} {v * 100:6.1f}" if isinstance(v, float) else f"  {k:8s} {v}")
        if r.char_scores:
            print("  on characters: " + ", ".join(f"{k} {r.char_scores[k] * 100:.1f}"
                                                  for k in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4")))
        if r.perplexity is not None:
            print(f"  perplexity {r.perplexity:.2f}")
        if r.vocabulary_used:
            print(f"  in training set {100 * r.in_training_set:.1f}%   vocabulary used {r.vocabulary_used}"
                  f"   mean length {r.mean_length:.1f} words")
    else:
        if r.method == "generative":
            print(f"scoring {r.images} images x {r.sentences} sentences (+{r.prior_images} training images "
                  "for the prior)")
        print(f"{r.what}: {r.dataset} {r.split}, {r.images} images, {r.sentences} sentences"
              + (f", mean of {r.folds} folds" if r.folds > 1 else ""))
        print(f"  {'':16s}{'R@1':>7s}{'R@5':>7s}{'R@10':>7s}{'med r':>8s}{'mean r':>8s}")
        for name, m in (("image -> text", r.image_to_text), ("text -> image", r.text_to_image)):
            print(f"  {name:16s}{m['R@1']:7.1f}{m['R@5']:7.1f}{m['R@10']:7.1f}{m['median_rank']:8.1f}"
                  f"{m['mean_rank']:8.1f}")
        print(f"  scored all pairs in {r.scoring_seconds:.1f} s")
    if args.out:
        atomic_write_text(args.out, to_json(r))
        print(f"saved {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="caption or retrieval metrics of a checkpoint on a dataset split",
                       description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT", help="checkpoint folder")
    p.add_argument("--nearest-neighbour", action="store_true", help="score the nearest-neighbour baseline instead")
    p.add_argument("--human-agreement", action="store_true",
                   help="score each human reference against the others instead (no features needed)")
    add_features(p, required=False)
    p.add_argument("--dataset", default="flickr8k")
    p.add_argument("--lang", metavar="CODE", help="only the dataset's sentences in this language "
                                                  "(a dataset of several, e.g. flickr8k-multi)")
    add_root(p)
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--beam", type=int, default=7, help="beam size (1 = greedy; default 7, as both papers)")
    p.add_argument("--max-len", type=int, default=20)
    p.add_argument("--length-penalty", type=float, default=None,
                   help="beam scores = log p / length**this (default: the checkpoint's, chosen on validation "
                        "when it was shipped; else 0)")
    p.add_argument("--no-meteor", action="store_true", help="skip METEOR (its Java start costs seconds)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="alignment: products of the all-pairs scoring in bfloat16 (faster, approximate)")
    p.add_argument("--retrieval", action="store_true",
                   help="with a caption generator: image and sentence retrieval by its likelihoods (m-RNN)")
    p.add_argument("--folds", type=int, default=1,
                   help="retrieval: mean over this many folds of the split's images (5 = COCO 1K protocol)")
    p.add_argument("--out", help="write the report here as JSON")
    add_quiet(p)
    p.set_defaults(func=run)
