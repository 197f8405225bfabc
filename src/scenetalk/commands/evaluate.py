"""``scenetalk evaluate``: caption metrics of a generator checkpoint (or of the nearest-neighbour
baseline), or retrieval metrics of an alignment checkpoint, on a dataset split, printed and
saved as JSON."""

from __future__ import annotations

import argparse
import json
import time

import torch

from scenetalk.errors import ScenetalkError

SHOWN = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "SPICE")


def run(args: argparse.Namespace) -> int:
    from scenetalk.captioning.captioner import caption_features
    from scenetalk.captioning.evaluation import caption_report, nearest_neighbour_captions
    from scenetalk.captioning.examples import build_examples
    from scenetalk.checkpoint import load_generator
    from scenetalk.data.registry import load_dataset
    from scenetalk.features.store import FeatureStore
    from scenetalk.io import atomic_write_text
    from scenetalk.training.caption_trainer import perplexity

    if bool(args.checkpoint) == bool(args.nearest_neighbour):
        raise ScenetalkError("give a CHECKPOINT or --nearest-neighbour (not both)")
    dataset = load_dataset(args.dataset, root=args.root)
    store = FeatureStore.open(args.features)
    if args.checkpoint and checkpoint_kind(args.checkpoint) == "alignment":
        return evaluate_retrieval(args, dataset, store)
    if args.retrieval:
        if not args.checkpoint:
            raise ScenetalkError("--retrieval needs a CHECKPOINT")
        return evaluate_generative_retrieval(args, dataset, store)
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
        what = f"{args.checkpoint} ({meta['model']['type']}), beam {args.beam}" + (
            f", length penalty {args.length_penalty:g}" if args.length_penalty else "")
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


def checkpoint_kind(folder: str) -> str | None:
    from scenetalk.checkpoint import read_meta

    return read_meta(folder).get("kind")


def print_retrieval(title: str, metrics: dict) -> None:
    print(title)
    print(f"  {'':16s}{'R@1':>7s}{'R@5':>7s}{'R@10':>7s}{'med r':>8s}{'mean r':>8s}")
    for key, name in (("image_to_text", "image -> text"), ("text_to_image", "text -> image")):
        m = metrics[key]
        print(f"  {name:16s}{m['R@1']:7.1f}{m['R@5']:7.1f}{m['R@10']:7.1f}{m['median_rank']:8.1f}{m['mean_rank']:8.1f}")


def report_retrieval(args: argparse.Namespace, what: str, to_text: torch.Tensor, to_image: torch.Tensor,
                     sentence_image: torch.Tensor, scoring_s: float) -> int:
    """R@K and ranks from (images, sentences) scores, ``to_text`` ranking sentences for each
    image and ``to_image`` images for each sentence (the same matrix for the alignment model);
    printed, and saved as JSON with ``--out``."""
    from scenetalk.io import atomic_write_text
    from scenetalk.metrics.retrieval import coco_1k, retrieval_metrics

    def measure(scores: torch.Tensor) -> dict:
        return coco_1k(scores, sentence_image, args.folds) if args.folds > 1 else retrieval_metrics(scores, sentence_image)

    text_metrics = measure(to_text)
    image_metrics = text_metrics if to_image is to_text else measure(to_image)
    metrics = {"image_to_text": text_metrics["image_to_text"], "text_to_image": image_metrics["text_to_image"]}
    n_images, n_sentences = to_text.shape
    report = {"what": what, "dataset": args.dataset, "split": args.split, "images": n_images,
              "sentences": n_sentences, "folds": args.folds, "scoring_seconds": round(scoring_s, 2), **metrics}
    print_retrieval(f"{what}: {args.dataset} {args.split}, {n_images} images, {n_sentences} sentences"
                    + (f", mean of {args.folds} folds" if args.folds > 1 else ""), metrics)
    print(f"  scored all pairs in {scoring_s:.1f} s")
    if args.out:
        atomic_write_text(args.out, json.dumps(report, indent=1, ensure_ascii=False))
        print(f"saved {args.out}")
    return 0


def evaluate_retrieval(args: argparse.Namespace, dataset, store) -> int:
    """R@K, median and mean rank of an alignment checkpoint, every image of the split against
    every sentence of it (``--folds 5`` for the COCO 1K protocol)."""
    from scenetalk.checkpoint import load_alignment
    from scenetalk.retrieval.scoring import score_split, sentence_set

    model, vocab, meta = load_alignment(args.checkpoint, expect_extractor_id=store.extractor_id)
    sentences = sentence_set(dataset, args.split, vocab, store.row_index, max_words=10_000)
    started = time.time()
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    scores = score_split(model, store.model_input("regions"), sentences, dtype=dtype)
    scoring_s = time.time() - started
    what = f"{args.checkpoint} (alignment, S_kl eq. {8 if model.config.score == 'max' else 7})"
    return report_retrieval(args, what, scores, scores, sentences.image_of, scoring_s)


def evaluate_generative_retrieval(args: argparse.Namespace, dataset, store) -> int:
    """m-RNN's ranking with a caption generator: images by log P(s | I), sentences by their
    perplexity given the image relative to a prior averaged over 100 training images."""
    from scenetalk.captioning.examples import build_examples
    from scenetalk.checkpoint import load_generator
    from scenetalk.retrieval.generative_ranking import (
        generative_scores,
        log_prior,
        prior_image_rows,
        sentence_log_likelihoods,
    )

    model, vocab, meta = load_generator(args.checkpoint, expect_extractor_id=store.extractor_id)
    feats = store.model_input(model.image_input)
    images = dataset.split(args.split)
    examples = build_examples(dataset, args.split, vocab, store.row_index, max_words=10_000)
    image_rows = torch.tensor([store.row_index[im.relpath] for im in images])
    position = {int(r): k for k, r in enumerate(image_rows)}
    sentence_image = torch.tensor([position[int(r)] for r in examples.image_rows])
    prior_rows = prior_image_rows(dataset, store.row_index)
    started = time.time()
    print(f"scoring {len(images)} images x {len(examples.ids)} sentences (+100 training images for the prior)")
    lik = sentence_log_likelihoods(model, feats[image_rows], examples.ids, vocab.pad_id, progress=True)
    prior = log_prior(sentence_log_likelihoods(model, feats[prior_rows], examples.ids, vocab.pad_id))
    to_text, to_image = generative_scores(lik, prior, (examples.ids[:, 1:] != vocab.pad_id).sum(1))
    scoring_s = time.time() - started
    what = f"{args.checkpoint} ({meta['model']['type']}), generative ranking"
    return report_retrieval(args, what, to_text, to_image, sentence_image, scoring_s)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="caption or retrieval metrics of a checkpoint on a dataset split",
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
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="alignment: products of the all-pairs scoring in bfloat16 (faster, approximate)")
    p.add_argument("--retrieval", action="store_true",
                   help="with a caption generator: image and sentence retrieval by its likelihoods (m-RNN)")
    p.add_argument("--folds", type=int, default=1,
                   help="retrieval: mean over this many folds of the split's images (5 = COCO 1K protocol)")
    p.add_argument("--out", help="write the report here as JSON")
    p.set_defaults(func=run)
