"""Give a shipped model the training photos it weighs its scores against, a seeded sample
(``retrieval.generative_ranking.prior_image_rows``, the sample `scenetalk evaluate --retrieval`
averages over):

* a **captioner**: the global features of 100 of its training photos, ``prior_images.safetensors``
  (fp16). Ranking sentences for a photo by the captioner's likelihood divides out the sentence
  prior log P(s) = log mean over these photos of P(s | I') (m-RNN §6; ``scenetalk describe``).
* an **alignment model**: the region features of 500 of its training photos, its bank of
  photos ``hub_photos.safetensors`` (int8, a scale a photo). ``describe`` lowers each
  sentence's match score by its mean score with the bank photos it fits best
  (``retrieval.hubness``), computed when an index is built.

    python scripts/ship_prior_images.py src/scenetalk/weights/captioner --features features/flickr8k --root ../shared/data
    python scripts/ship_prior_images.py src/scenetalk/weights/captioner-zh --features features/flickr8k --root ../shared/data
    python scripts/ship_prior_images.py src/scenetalk/weights/alignment --features features/flickr8k-regions --root ../shared/data

The training photos are those of the model's language's dataset (flickr8k, flickr8k-cn,
multi30k-de: the photos its sentences describe), from a feature store of its extractor.
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
from scenetalk.retrieval.hubness import read_hub_photos, write_hub_photos  # noqa: E402

DATASETS = {"en": "flickr8k", "zh": "flickr8k-cn", "de": "multi30k-de"}
COUNTS = {"caption_generator": 100, "alignment": 500}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a captioner's or an alignment model's checkpoint folder")
    parser.add_argument("--features", required=True, help="a feature store of the model's extractor")
    parser.add_argument("--root", help="data folder")
    parser.add_argument("--count", type=int, help="how many photos (default: 100 for a captioner, 500 for an "
                                                  "alignment model)")
    args = parser.parse_args()
    from safetensors.numpy import save_file

    meta = read_meta(args.checkpoint)
    kind = meta.get("kind")
    if kind not in COUNTS:
        sys.exit(f"{args.checkpoint}: not a caption generator or an alignment model")
    store = FeatureStore.open(args.features)
    if store.extractor_id != meta.get("extractor_id"):
        sys.exit(f"{args.features}: features of {store.extractor_id}, but the model reads {meta.get('extractor_id')}")
    language = meta["vocabulary"].get("language", "en")
    dataset = load_dataset(DATASETS.get(language, "flickr8k"), root=args.root)
    rows = prior_image_rows(dataset, store.row_index, count=args.count or COUNTS[kind]).numpy()
    about = {"dataset": dataset.name, "split": "train", "seed": "0", "count": str(len(rows))}
    if kind == "alignment":
        regions = np.asarray(store.array("regions")[np.sort(rows)], dtype=np.float32)
        path = write_hub_photos(args.checkpoint, regions, metadata=about)
        error = float(np.abs(read_hub_photos(args.checkpoint) - regions).max())
        print(f"{path}: {len(rows)} {dataset.name} training photos' region features "
              f"({path.stat().st_size / 2**20:.1f} MiB, largest int8 error {error:.3g})")
        return
    images = np.asarray(store.array("global")[rows], dtype=np.float16)
    path = Path(args.checkpoint) / PRIOR_IMAGES
    with atomic_path(path) as tmp:
        save_file({"global": np.ascontiguousarray(images)}, tmp, metadata=about)
    assert read_prior_images(args.checkpoint).shape == images.shape
    print(f"{path}: {len(rows)} {dataset.name} training photos' global features ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
