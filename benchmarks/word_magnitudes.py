"""Karpathy & Fei-Fei's Table 4: the words whose vectors s_t have the largest and smallest
average magnitude ‖s_t‖ (a word's s_t depends on its sentence, so the magnitude is averaged over
its occurrences). Visually discriminative words should be large, stop words near zero: the
model learns how much each word counts in S_kl = Σ_t max_i v_iᵀ s_t.

    python benchmarks/word_magnitudes.py --checkpoint runs/alignment-flickr8k/best \
        --root ../shared/data --split train --min-count 20 --top 40
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch


def main() -> None:
    from scenetalk.checkpoint import load_alignment
    from scenetalk.data.registry import load_dataset

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="runs/alignment-flickr8k/best")
    ap.add_argument("--root", default="../shared/data")
    ap.add_argument("--split", default="train", choices=("train", "val", "test"))
    ap.add_argument("--min-count", type=int, default=20, help="only words seen this often")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()

    model, vocab, _ = load_alignment(args.checkpoint)
    model.eval()
    sentences = [s.tokens for im in load_dataset("flickr8k", args.root).split(args.split) for s in im.sentences]
    sentences.sort(key=len)  # batches of similar length
    total, count = defaultdict(float), defaultdict(int)
    with torch.no_grad():
        for start in range(0, len(sentences), 500):
            batch = sentences[start:start + 500]
            ids = torch.from_numpy(vocab.encode_batch(batch, add_start=False, add_end=False)[0])
            s, mask = model.embed_words(ids)
            norms = s.norm(dim=-1)
            for row, tokens in enumerate(batch):
                for t, word in enumerate(tokens[: ids.size(1)]):
                    if word in vocab.stoi:  # <unk> stands for many words: leave it out
                        total[word] += float(norms[row, t])
                        count[word] += 1
    mean = {w: total[w] / count[w] for w in total if count[w] >= args.min_count}
    ranked = sorted(mean, key=mean.get, reverse=True)
    print(f"{len(sentences)} {args.split} sentences, {len(mean)} words seen >= {args.min_count} times\n")
    print("| rank | highest ‖s_t‖ | magnitude | lowest ‖s_t‖ | magnitude |")
    print("|---|---|---|---|---|")
    for k in range(min(args.top, len(ranked) // 2)):
        hi, lo = ranked[k], ranked[-1 - k]
        print(f"| {k + 1} | {hi} | {mean[hi]:.2f} | {lo} | {mean[lo]:.3f} |")


if __name__ == "__main__":
    main()
