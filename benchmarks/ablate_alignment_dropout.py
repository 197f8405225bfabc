"""Quick ablation behind alignment_flickr8k's dropout: validation R@K sum after 300 steps.

    python benchmarks/ablate_alignment_dropout.py              # dropout 0.5, 0.25, 0.1, 0

Each run trains the alignment model (h = 256, Adam 2e-4, batches of 100, bf16) for 300
steps on Flickr8K train (features/flickr8k-regions) with one torch thread, then scores the
1,000 validation images against their 5,000 sentences. Validation only; nothing here looks
at the test split.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dropout", type=float, nargs="+", default=[0.5, 0.25, 0.1, 0.0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--features", default=str(REPO / "features" / "flickr8k-regions"))
    parser.add_argument("--root", help="data root (default: ../shared/data)")
    args = parser.parse_args()

    import torch

    from scenetalk.data.registry import load_dataset
    from scenetalk.features.store import FeatureStore
    from scenetalk.training.alignment_trainer import AlignmentTrainer, AlignTrainConfig

    torch.set_num_threads(1)
    dataset = load_dataset("flickr8k", root=args.root)
    store = FeatureStore.open(args.features)
    regions = store.model_input("regions")
    print(f"{'dropout':>8}{'val R@K sum':>13}{'last loss':>11}{'seconds':>9}")
    for p in args.dropout:
        cfg = AlignTrainConfig(model={"embed_dim": 256, "word_dim": 300, "hidden_dim": 256, "dropout": p},
                               optimizer="adam", lr=2e-4, batch_size=100, max_steps=args.steps,
                               eval_every=args.steps, checkpoint_every=10 * args.steps, precision="bf16")
        with tempfile.TemporaryDirectory() as out:
            start = time.time()
            hist = AlignmentTrainer(cfg, dataset, regions, store.row_index, store.extractor_id, out,
                                    progress=False).run()
        print(f"{p:>8}{hist['val'][-1]['rsum']:>13.1f}{hist['train'][-1]['loss']:>11.1f}{time.time() - start:>9.0f}",
              flush=True)


if __name__ == "__main__":
    main()
