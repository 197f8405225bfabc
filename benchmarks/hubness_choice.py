"""Choosing describe's hubness correction on Flickr8K val (issue #18, ``retrieval.hubness``):
the bank's size, k and α, with the re-ranking weight λ beside them.

    python benchmarks/hubness_choice.py --root ../shared/data

S_kl of the 1,000 val photos against their 5,000 sentences (the shipped alignment model,
float32 in PyTorch), and of a bank of training photos (a seeded NumPy permutation of the
training split; the first N of 1,000) against the same sentences; each sentence's hubness is
the mean of its k best bank scores, S' = S − α · hubness. The best 100 of S' per photo are then
re-ranked as describe does, S' + λ · (log P(s | I) − log P(s)) / words with the shipped
m-RNN-LSTM captioner (``rerank_fusion.py``'s likelihoods and prior). Every setting's image →
text R@1/5/10 is printed; the choice is the best R@1+5+10. Val only: the test figure is
``bench_describe.py --split test``'s, once, at the chosen setting.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

BANKS = ((100, 5), (200, 10), (500, 10), (500, 25), (1000, 50))   # (photos, k)
ALPHAS = (0.25, 0.5, 0.75, 1.0)
WEIGHTS = (0, 2, 3, 5, 7)
TOP = 100


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--features", default="features/flickr8k-regions")
    args = p.parse_args()
    import numpy as np
    import torch
    from rerank_fusion import fused

    from scenetalk.captioning.examples import build_examples
    from scenetalk.checkpoint import load_alignment, load_generator
    from scenetalk.data.registry import load_dataset
    from scenetalk.features.store import FeatureStore
    from scenetalk.metrics.retrieval import retrieval_metrics
    from scenetalk.retrieval.generative_ranking import (
        log_prior,
        pair_log_likelihoods,
        prior_image_rows,
        sentence_log_likelihoods,
    )
    from scenetalk.retrieval.scoring import SentenceSet, score_split, sentence_set
    from scenetalk.weights import shipped_alignment, shipped_reranker

    dataset = load_dataset("flickr8k", root=args.root)
    store = FeatureStore.open(args.features)
    aligner, vocab, _ = load_alignment(shipped_alignment(), expect_extractor_id=store.extractor_id)
    regions = store.model_input("regions")
    val = sentence_set(dataset, "val", vocab, store.row_index, 10_000)
    started = time.time()
    S = torch.from_numpy(score_split(aligner, regions, val))                       # (1000, 5000)
    train = dataset.split("train")
    order = np.random.default_rng(0).permutation(len(train))[:max(n for n, _ in BANKS)]
    bank_rows = np.array([store.row_index[train[i].relpath] for i in order])
    B = torch.from_numpy(score_split(aligner, regions, SentenceSet(val.ids, val.image_rows, val.image_of, bank_rows)))
    print(f"S_kl of the val pairs and of the bank: {time.time() - started:.0f} s", flush=True)
    hubness = {"none": (torch.zeros(S.size(1)), (0.0,))}
    for n, k in BANKS:
        hubness[f"bank {n}, k {k}"] = (B[:n].topk(k, dim=0).values.mean(0), ALPHAS)
    candidates = [(S - a * h[None]).topk(TOP, dim=1).indices for h, alphas in hubness.values() for a in alphas]
    n_images, n_sentences = S.shape
    pairs = torch.unique(torch.cat([torch.stack([torch.arange(n_images).repeat_interleave(TOP), c.reshape(-1)], 1)
                                    for c in candidates]), dim=0)
    generator, g_vocab, _ = load_generator(shipped_reranker())
    glob = store.model_input("global")
    examples = build_examples(dataset, "val", g_vocab, store.row_index, max_words=10_000)
    images = glob[torch.tensor([store.row_index[im.relpath] for im in dataset.split("val")])]
    started = time.time()
    G = torch.zeros(n_images, n_sentences)
    G[pairs[:, 0], pairs[:, 1]] = pair_log_likelihoods(generator, images, examples.ids, pairs, g_vocab.pad_id)
    need = torch.unique(pairs[:, 1])
    prior = torch.zeros(n_sentences)
    prior[need] = log_prior(sentence_log_likelihoods(generator, glob[prior_image_rows(dataset, store.row_index)],
                                                     examples.ids[need], g_vocab.pad_id))
    words = (examples.ids[:, 1:] != g_vocab.pad_id).sum(1).clamp(min=1).float()
    ratio = (G - prior[None]) / words[None]
    print(f"captioner likelihoods of {len(pairs):,} pairs and their priors: {time.time() - started:.0f} s\n")
    print("| Flickr8K val, describe's ranking | α | λ 0 | λ 2 | λ 3 | λ 5 | λ 7 |")
    print("|---|---|---|---|---|---|---|")
    best = None
    for name, (h, alphas) in hubness.items():
        for a in alphas:
            corrected = S - a * h[None]
            top = corrected.topk(TOP, dim=1).indices
            cells = []
            for w in WEIGHTS:
                r = retrieval_metrics(fused(corrected, ratio, top, w, 1), val.image_of)["image_to_text"]
                total = r["R@1"] + r["R@5"] + r["R@10"]
                if best is None or total > best[0]:
                    best = (total, name, a, w)
                cells.append(f"{r['R@1']:.1f}/{r['R@5']:.1f}/{r['R@10']:.1f}")
            print(f"| {name} | {a:g} | " + " | ".join(cells) + " |")
    print(f"\nbest R@1+5+10: {best[0]:.1f} ({best[1]}, α {best[2]:g}, λ {best[3]:g})")


if __name__ == "__main__":
    main()
