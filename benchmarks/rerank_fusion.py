"""Re-ranking the alignment model's best candidates with the m-RNN's likelihoods.

The two rankers of the retrieval table are good at different things on Flickr8K: the
alignment model (S_kl, eq. 8) ranks sentences for an image better, the m-RNN (log P(s | I),
Mao et al. §6) ranks images for a sentence better. This measures what a late fusion of the
two gives, cheaply: for each query only the alignment model's top K are re-scored by

    fused = S_kl + λ · m-RNN score

(the m-RNN score as ``generative_ranking`` defines it: log P(s | I) for text -> image, the
per-word log-ratio to the image-averaged prior for image -> text), and everything below the
top K keeps the alignment model's order. K and λ are chosen per direction on the validation
split's R@1+R@5+R@10; the test split is then scored once with the chosen pair:

    python benchmarks/rerank_fusion.py --alignment runs/alignment-hardest-flickr8k/best \\
        --generator runs/mrnn-try1/best --root ../shared/data            # choose on val
    python benchmarks/rerank_fusion.py ... --split test --i2t K,λ --t2i K,λ   # test, once

A model of several languages is scored one language at a time (issue #17), each with its own
language's captioner: ``--dataset flickr8k-multi --lang zh --generator src/scenetalk/weights/captioner-zh``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from scenetalk.captioning.examples import build_examples
from scenetalk.checkpoint import load_alignment, load_generator
from scenetalk.data.multilingual import only_language
from scenetalk.data.registry import load_dataset
from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence
from scenetalk.data.text import untagged
from scenetalk.features.store import FeatureStore
from scenetalk.metrics.retrieval import KS, retrieval_metrics
from scenetalk.retrieval.generative_ranking import (
    log_prior,
    pair_log_likelihoods,
    prior_image_rows,
    sentence_log_likelihoods,
)
from scenetalk.retrieval.scoring import score_split, sentence_set

TOPS = (10, 20, 50, 100)
WEIGHTS = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0)


def fused(alignment: torch.Tensor, generative: torch.Tensor, top: torch.Tensor, weight: float, dim: int
          ) -> torch.Tensor:
    """Scores whose order is: each query's alignment top-K by S + λ·generative, then the rest
    by S. ``dim`` is the axis a query ranks over (0: images for a sentence, 1: sentences for
    an image); ``top`` holds the indices of each query's top K along it."""
    span = alignment.max() - alignment.min() + 1
    out = alignment - 4 * span * (1 + weight * generative.abs().max())   # the rest, far below
    cand = alignment.gather(dim, top) + weight * generative.gather(dim, top)
    return out.scatter(dim, top, cand)


def untagged_dataset(dataset: CaptionDataset) -> CaptionDataset:
    """The same photos and sentences with their tokens' language tags dropped (one language's)."""
    images = [ImageRecord(im.file_name, im.split, im.image_id,
                          [Sentence(s.raw, [untagged(t) for t in s.tokens], s.language, s.sentence_id)
                           for s in im.sentences], im.subdir) for im in dataset.images]
    return CaptionDataset(dataset.name, images, dataset.image_dir, dataset.sources, dataset.problems,
                          dataset.zh_mode)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alignment", required=True)
    p.add_argument("--generator", required=True)
    p.add_argument("--regions", default="features/flickr8k-regions")
    p.add_argument("--global-features", default="features/flickr8k")
    p.add_argument("--root")
    p.add_argument("--dataset", default="flickr8k", help="e.g. flickr8k-multi (with --lang)")
    p.add_argument("--lang", help="score this language's sentences only (a dataset of several languages)")
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--i2t", help="K,λ chosen on val (with --split test)")
    p.add_argument("--t2i", help="K,λ chosen on val (with --split test)")
    p.add_argument("--out", help="write the figures as JSON")
    p.add_argument("--text-to-image-only", action="store_true",
                   help="only the direction `scenetalk search` re-ranks (about half the likelihoods)")
    args = p.parse_args()
    if args.split == "test" and not (args.t2i and (args.i2t or args.text_to_image_only)):
        p.error("--split test scores the pair chosen on val: give --i2t K,λ and --t2i K,λ")
    chosen = {d: (int(v.split(",")[0]), float(v.split(",")[1])) for d, v in
              (("image_to_text", args.i2t), ("text_to_image", args.t2i)) if v}
    tops = sorted({k for k, _ in chosen.values()}) if chosen else TOPS

    dataset = load_dataset(args.dataset, root=args.root)
    if args.lang:
        dataset = only_language(dataset, args.lang)
    regions = FeatureStore.open(args.regions)
    aligner, a_vocab, _ = load_alignment(args.alignment, expect_extractor_id=regions.extractor_id)
    sentences = sentence_set(dataset, args.split, a_vocab, regions.row_index, max_words=10_000)
    started = time.time()
    S = torch.from_numpy(score_split(aligner, regions.model_input("regions"), sentences))   # (N, L), float32
    print(f"alignment S_kl of all pairs: {time.time() - started:.0f} s")

    glob = FeatureStore.open(args.global_features)
    generator, g_vocab, _ = load_generator(args.generator, expect_extractor_id=glob.extractor_id)
    feats = glob.model_input("global")
    # the captioner reads its own language's tokens: the sentences untagged (lang:word -> word)
    examples = build_examples(untagged_dataset(dataset), args.split, g_vocab, glob.row_index, max_words=10_000)
    images = feats[torch.tensor([glob.row_index[im.relpath] for im in dataset.split(args.split)])]
    assert len(examples.ids) == S.size(1)

    kmax = max(tops)
    top_images = S.topk(kmax, dim=0).indices                        # (K, L): per sentence
    top_sentences = S.topk(kmax, dim=1).indices                     # (N, K): per image
    n, length = S.shape
    pairs = torch.stack([top_images.reshape(-1), torch.arange(length).repeat(kmax)], 1)
    if not args.text_to_image_only:
        pairs = torch.cat([pairs, torch.stack([torch.arange(n).repeat_interleave(kmax), top_sentences.reshape(-1)], 1)])
    pairs = torch.unique(pairs, dim=0)
    print(f"m-RNN log P(s | I) of {len(pairs):,} candidate pairs (top {kmax} per query, "
          f"{'text -> image' if args.text_to_image_only else 'both directions'})")
    started = time.time()
    lik = pair_log_likelihoods(generator, images, examples.ids, pairs, g_vocab.pad_id, progress=True)
    G = torch.zeros(n, length)
    G[pairs[:, 0], pairs[:, 1]] = lik
    # The prior of m-RNN's sentence ranking: 100 seeded training images, as `scenetalk evaluate --retrieval`.
    prior_rows = prior_image_rows(dataset, glob.row_index)
    prior = torch.zeros(length)
    if not args.text_to_image_only:
        need = torch.unique(top_sentences)
        prior[need] = log_prior(sentence_log_likelihoods(generator, feats[prior_rows], examples.ids[need],
                                                         g_vocab.pad_id, progress=True))
    words = (examples.ids[:, 1:] != g_vocab.pad_id).sum(1).clamp(min=1).float()
    G_text = (G - prior[None]) / words[None]                        # image -> text: per-word log-ratio
    print(f"m-RNN scoring: {time.time() - started:.0f} s")

    results = {"split": args.split, "alignment": args.alignment, "generator": args.generator,
               "dataset": args.dataset, "lang": args.lang}
    base = retrieval_metrics(S, sentences.image_of)
    results["alignment_only"] = base
    directions = (("image_to_text", 1, G_text), ("text_to_image", 0, G))
    for direction, dim, gen in directions[1:] if args.text_to_image_only else directions:
        runs = []
        for k in tops:
            top = top_sentences[:, :k] if dim == 1 else top_images[:k]
            for w in ([chosen[direction][1]] if chosen else WEIGHTS):
                m = retrieval_metrics(fused(S, gen, top, w, dim), sentences.image_of)[direction]
                runs.append({"K": k, "weight": w, **m})
        best = max(runs, key=lambda r: sum(r[f"R@{q}"] for q in KS))
        results[direction] = {"runs": runs, "chosen": best}
        print(f"\n{direction} ({args.split}); alignment alone: "
              + " / ".join(f"{base[direction][f'R@{q}']:.1f}" for q in KS)
              + f", med r {base[direction]['median_rank']:.1f}")
        for r in runs:
            mark = "  <- best on this split" if r is best and not chosen else ""
            print(f"  K={r['K']:>3} λ={r['weight']:<5} R@1/5/10 {r['R@1']:.1f} / {r['R@5']:.1f} / {r['R@10']:.1f}"
                  f", med r {r['median_rank']:.1f}{mark}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
