"""Choose the grounding settings on the Flickr8K dev (val) images, never on test.

Prints, for the alignment checkpoint on the 1,000 val images with Flickr30K Entities boxes:

1. phrase localisation accuracy (IoU >= 0.5, union protocol) for ``sum`` and for ``mrf`` at
   several β, and with the objectness prior at several weights, beside the proposal upper
   bound and the whole-image / largest-box / most-confident-detection baselines;
2. for the region-snippet corpus, how well the MRF's snippets match the human phrases at each β
   (``grounding.snippet_agreement``: exact phrase span on a hit region; precision, recall, F1).

    python benchmarks/tune_grounding.py --checkpoint runs/alignment-flickr8k/best \
        --features features/flickr8k-regions --root ../shared/data
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from scenetalk.checkpoint import load_alignment
from scenetalk.data.entities import load_entities
from scenetalk.data.registry import load_dataset
from scenetalk.features.store import FeatureStore
from scenetalk.grounding.localisation import localisation_table, localise, score_entities, snippet_agreement

BETAS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0)
PRIOR_WEIGHTS = (1.0, 2.0, 3.0, 4.0, 6.0)
WHOLE_IMAGE_PRIORS = (0.0, 0.25, 0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="runs/alignment-flickr8k/best")
    ap.add_argument("--features", default="features/flickr8k-regions")
    ap.add_argument("--root", default="../shared/data")
    ap.add_argument("--split", default="val", choices=["val", "train"], help="tuning split (never test)")
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()

    dataset = load_dataset("flickr8k", args.root)
    names = [im.relpath for im in dataset.split(args.split)]
    entities = load_entities(Path(args.root) / "flickr30k_entities", names)
    store = FeatureStore.open(args.features)
    model, vocab, _ = load_alignment(args.checkpoint, expect_extractor_id=store.extractor_id)
    started = time.time()
    scored = score_entities(model, vocab, entities, store.model_input("regions"), store.row_index)
    print(f"{args.split}: {len(entities)} images, {len(scored.keys)} sentences scored in {time.time() - started:.1f} s")

    results = {"localisation": [], "snippets": []}
    print("\nphrase localisation (accuracy %, IoU >= 0.5, union protocol; 'any' for the best row)")
    print(f"{'method':>6} {'beta':>5} {'prior':>5} {'whole':>5} {'ours':>6} {'upper':>6} {'whole':>6} "
          f"{'largest':>7} {'top det':>7}")
    grid = [("sum", 0.0, 0.0, 0.0)] + [("mrf", b, 0.0, 0.0) for b in BETAS]
    grid += [(m, 0.0, w, p) for m in ("sum", "mrf") for w in PRIOR_WEIGHTS for p in WHOLE_IMAGE_PRIORS]
    for method, beta, weight, whole in grid:
        row = localisation_table(localise(scored, store.boxes, store.row_index, method, beta, "union",
                                          store.box_scores, weight, whole))["all"]
        results["localisation"].append({"method": method, "beta": beta, "prior_weight": weight,
                                        "whole_image_prior": whole, **row})
        print(f"{method:>6} {beta:5.2f} {weight:5.1f} {whole:5.2f} {row['alignment']:6.2f} {row['upper_bound']:6.2f} "
              f"{row['whole_image']:6.2f} {row['largest_box']:7.2f} {row['top_detection']:7.2f}")
    print("\nMRF snippets against human phrases (union protocol)")
    print(f"{'beta':>5} {'precision':>9} {'recall':>6} {'F1':>6} {'words/snippet':>13}")
    for beta in BETAS:
        row = snippet_agreement(scored, store.boxes, store.row_index, beta)
        results["snippets"].append(row)
        print(f"{beta:5.2f} {row['precision']:9.2f} {row['recall']:6.2f} {row['f1']:6.2f} {row['mean_snippet_words']:13.2f}")
    best_loc = max(results["localisation"], key=lambda r: r["alignment"])
    best_snip = max(results["snippets"], key=lambda r: r["f1"])
    print(f"\nchosen on {args.split}: localisation method={best_loc['method']} beta={best_loc['beta']} "
          f"prior_weight={best_loc['prior_weight']} whole_image_prior={best_loc['whole_image_prior']} "
          f"({best_loc['alignment']:.2f}%); corpus beta={best_snip['beta']}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
