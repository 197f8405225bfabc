"""Benchmark exact S_kl scoring of every image against every sentence (Flickr8K val:
1,000 images x 5,000 sentences), in float32 and with bfloat16 products.

    python benchmarks/bench_retrieval_scoring.py [--checkpoint runs/alignment-flickr8k/best] [--repeats 3]

Times ``alignment.score_split`` (region and word embeddings included, feature loading
excluded) and prints the median of ``--repeats`` runs per precision, and how far the bf16
R@K are from the float32 ones. Budget: <= 10 s on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

BUDGET_S = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="alignment checkpoint (default: the shipped one)")
    parser.add_argument("--features", default=str(REPO / "features" / "flickr8k-regions"))
    parser.add_argument("--root", help="data root (default: ../shared/data)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from scenetalk.checkpoint import load_alignment
    from scenetalk.data.registry import load_dataset
    from scenetalk.features.store import FeatureStore
    from scenetalk.metrics.retrieval import retrieval_metrics
    from scenetalk.retrieval.scoring import score_split, sentence_set
    from scenetalk.weights import shipped_alignment

    dataset = load_dataset("flickr8k", root=args.root)
    store = FeatureStore.open(args.features)
    model, vocab, _ = load_alignment(args.checkpoint or shipped_alignment(), store.extractor_id)
    sentences = sentence_set(dataset, args.split, vocab, store.row_index, max_words=10_000)
    regions = store.model_input("regions")
    print(f"{len(sentences.images)} images x {len(sentences.ids)} sentences ({args.split}), h = "
          f"{model.config.embed_dim}, {torch.get_num_threads()} threads")
    metrics = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            scores = score_split(model, regions, sentences, dtype=dtype)
            times.append(time.perf_counter() - start)
        metrics[name] = retrieval_metrics(scores, sentences.image_of)
        median = statistics.median(times)
        verdict = "within" if median <= BUDGET_S else "OVER"
        print(f"{name:9s} median {median:5.1f} s (runs: {', '.join(f'{t:.1f}' for t in times)}); "
              f"budget {BUDGET_S:.0f} s: {verdict}")
    worst = max(abs(metrics["float32"][d][k] - metrics["bfloat16"][d][k])
                for d in ("image_to_text", "text_to_image") for k in ("R@1", "R@5", "R@10"))
    print(f"largest R@K difference bf16 vs float32: {worst:.2f} points")


if __name__ == "__main__":
    main()
