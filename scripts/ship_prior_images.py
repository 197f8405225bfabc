"""Give a captioner its prior images: the global features of 100 of its training photos (a seeded
sample, ``retrieval.generative_ranking.prior_image_rows``, the sample `scenetalk evaluate
--retrieval` averages over), written into its folder as ``prior_images.safetensors`` (fp16).
Ranking sentences for a photo by the captioner's likelihood divides out the sentence prior
log P(s) = log mean over these photos of P(s | I') (m-RNN §6; ``scenetalk describe``).

    python scripts/ship_prior_images.py src/scenetalk/weights/captioner --features features/flickr8k --root ../shared/data
    python scripts/ship_prior_images.py src/scenetalk/weights/captioner-zh --features features/flickr8k --root ../shared/data

The training photos are those of the captioner's language's dataset (flickr8k, flickr8k-cn,
multi30k-de: the photos its sentences describe), from a feature store of the captioner's
extractor.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402

from scenetalk.checkpoint import PRIOR_IMAGES, read_meta, read_prior_images  # noqa: E402
from scenetalk.data.registry import load_dataset  # noqa: E402
from scenetalk.features.store import FeatureStore  # noqa: E402
from scenetalk.io import atomic_path  # noqa: E402
from scenetalk.retrieval.generative_ranking import prior_image_rows  # noqa: E402

DATASETS = {"en": "flickr8k", "zh": "flickr8k-cn", "de": "multi30k-de"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("captioner", help="a captioner's checkpoint folder")
    parser.add_argument("--features", required=True, help="a feature store of the captioner's extractor")
    parser.add_argument("--root", help="data folder")
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    from safetensors.numpy import save_file

    meta = read_meta(args.captioner)
    if meta.get("kind") != "caption_generator":
        sys.exit(f"{args.captioner}: not a caption generator")
    store = FeatureStore.open(args.features)
    if store.extractor_id != meta.get("extractor_id"):
        sys.exit(f"{args.features}: features of {store.extractor_id}, but the captioner reads {meta.get('extractor_id')}")
    language = meta["vocabulary"].get("language", "en")
    dataset = load_dataset(DATASETS[language], root=args.root)
    rows = prior_image_rows(dataset, store.row_index, count=args.count).numpy()
    images = np.asarray(store.array("global")[rows], dtype=np.float16)
    path = Path(args.captioner) / PRIOR_IMAGES
    with atomic_path(path) as tmp:
        save_file({"global": np.ascontiguousarray(images)}, tmp,
                  metadata={"dataset": dataset.name, "split": "train", "seed": "0", "count": str(len(rows))})
    assert read_prior_images(args.captioner).shape == images.shape
    print(f"{path}: {len(rows)} {dataset.name} training photos' global features ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
