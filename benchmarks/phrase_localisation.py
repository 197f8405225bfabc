"""Phrase localisation on Flickr30K Entities boxes of the Flickr8K photos, per phrase type.

For every annotated phrase (with boxes) of the split's five sentences per image, the region
our alignment assigns to the phrase's words (``scenetalk.grounding.localise``) counts as right
when its IoU with the phrase's box is >= 0.5. Beside it: the share of phrases that any
candidate region could get right (upper bound), the whole image, and the largest detected box.
Both protocols: ``any`` (IoU with any of the phrase's boxes) and ``union`` (with the union of
its boxes, Plummer et al.'s protocol, which GroundeR and CCA report). Choose the method and β
on val (``benchmarks/tune_grounding.py``) and run test once:

    python benchmarks/phrase_localisation.py --checkpoint runs/alignment-flickr8k/best \
        --features features/flickr8k-regions --root ../shared/data --split test --method sum \
        --prior-weight 4 --whole-image-prior 0.25
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = ("alignment", "upper_bound", "whole_image", "largest_box", "top_detection")


def main() -> None:
    from scenetalk.checkpoint import load_alignment
    from scenetalk.data.entities import load_entities
    from scenetalk.data.registry import load_dataset
    from scenetalk.features.store import FeatureStore
    from scenetalk.grounding.localisation import LOCALISATION_METHODS, localisation_table, localise, score_entities

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="runs/alignment-flickr8k/best")
    ap.add_argument("--features", default="features/flickr8k-regions")
    ap.add_argument("--root", default="../shared/data")
    ap.add_argument("--split", default="val", choices=("val", "test"))
    ap.add_argument("--method", default="mrf", choices=LOCALISATION_METHODS)
    ap.add_argument("--beta", type=float, default=0.0)
    ap.add_argument("--prior-weight", type=float, default=0.0, help="objectness prior λ (0: alignment alone)")
    ap.add_argument("--whole-image-prior", type=float, default=0.0)
    ap.add_argument("--out")
    args = ap.parse_args()

    dataset = load_dataset("flickr8k", args.root)
    entities = load_entities(Path(args.root) / "flickr30k_entities", [im.relpath for im in dataset.split(args.split)])
    store = FeatureStore.open(args.features)
    model, vocab, _ = load_alignment(args.checkpoint, expect_extractor_id=store.extractor_id)
    scored = score_entities(model, vocab, entities, store.model_input("regions"), store.row_index)
    report = {"split": args.split, "checkpoint": args.checkpoint, "method": args.method, "beta": args.beta,
              "prior_weight": args.prior_weight, "whole_image_prior": args.whole_image_prior}
    for protocol in ("any", "union"):
        table = localisation_table(localise(scored, store.boxes, store.row_index, args.method, args.beta, protocol,
                                            store.box_scores, args.prior_weight, args.whole_image_prior))
        report[protocol] = table
        print(f"\nFlickr8K {args.split}, {len(entities)} images, method {args.method}, beta {args.beta}, "
              f"objectness prior {args.prior_weight} (whole image {args.whole_image_prior}), "
              f"protocol {protocol} (accuracy %, IoU >= 0.5)")
        print("| phrase type | phrases | ours | upper bound | whole image | largest box | most confident box |")
        print("|---|---|---|---|---|---|---|")
        for kind, row in table.items():
            print(f"| {kind} | {row['phrases']} | " + " | ".join(f"{row[c]:.1f}" for c in COLUMNS) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
