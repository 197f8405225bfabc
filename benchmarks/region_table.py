"""Region descriptions on human boxes, like Karpathy & Fei-Fei's Table 3 (see
``scenetalk.region_descriptions``): BLEU-1..4, METEOR, ROUGE-L and CIDEr of the region
generator, the full-frame generator fed the same box, a nearest-neighbour snippet and human
agreement, for every Flickr30K Entities box of a Flickr8K split that has two or more
different human phrases.

    python benchmarks/region_table.py --regions runs/regions-flickr8k/best \
        --full-frame src/scenetalk/weights/captioner --corpus runs/grounding/snippets-flickr8k.json \
        --features features/flickr8k-regions --root ../shared/data --split test --out runs/eval/regions-test.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROWS = ("human agreement", "nearest neighbour", "full-frame generator", "region generator")
METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")


def main() -> None:
    from scenetalk.captioning.captioner import caption_features, default_length_penalty, load_generator_for
    from scenetalk.data.entities import load_entities
    from scenetalk.data.registry import load_dataset
    from scenetalk.features.extract import extractor_for
    from scenetalk.features.store import FeatureStore
    from scenetalk.grounding.region_descriptions import box_features, human_boxes, nearest_neighbour_phrases
    from scenetalk.grounding.snippets import flat_region_rows, load_corpus
    from scenetalk.metrics.captions import score_captions


    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--regions", required=True, help="region generator checkpoint")
    ap.add_argument("--full-frame", required=True, help="whole-image caption generator checkpoint")
    ap.add_argument("--corpus", required=True, help="the region-snippet corpus (nearest-neighbour bank)")
    ap.add_argument("--features", default="features/flickr8k-regions")
    ap.add_argument("--root", default="../shared/data")
    ap.add_argument("--split", default="test", choices=("val", "test"))
    ap.add_argument("--beam", type=int, default=7)
    ap.add_argument("--length-penalty", default="0",
                    help="the region generator's beam length normalisation; several (0,0.5,1) on val to choose")
    ap.add_argument("--limit", type=int, help="first N images only (a quick look)")
    ap.add_argument("--out")
    args = ap.parse_args()

    dataset = load_dataset("flickr8k", args.root)
    names = [im.relpath for im in dataset.split(args.split)][: args.limit]
    entities = load_entities(Path(args.root) / "flickr30k_entities", names)
    boxes = [b for b in human_boxes(entities) if len(b.phrases) >= 2]
    store = FeatureStore.open(args.features)
    featurizer = extractor_for(store.extractor_id, args.features).featurizer
    started = time.time()
    feats = box_features(featurizer, dataset.image_dir, boxes)
    print(f"{args.split}: {len(boxes)} human boxes with >= 2 phrases on {len(entities)} images; "
          f"box features in {time.time() - started:.0f} s")

    references = {str(i): b.phrases[1:] for i, b in enumerate(boxes)}
    candidates = {"human agreement": [b.phrases[0] for b in boxes]}
    corpus = load_corpus(args.corpus)
    flat, rows = flat_region_rows(store)
    candidates["nearest neighbour"] = nearest_neighbour_phrases(feats, corpus, flat, rows)
    penalties = [float(x) for x in args.length_penalty.split(",")]
    rows = list(ROWS[:3]) + [ROWS[3] if len(penalties) == 1 else f"{ROWS[3]}, length penalty {lp}" for lp in penalties]
    runs = [("full-frame generator", args.full_frame, None)] + [(r, args.regions, lp) for r, lp in zip(rows[3:], penalties)]
    for row, checkpoint, lp in runs:
        # Box crops are the backbone's vectors, like whole photos: a whole-photo captioner reads them.
        model, vocab, meta = load_generator_for(checkpoint, store, one_vector=True)
        if lp is None:  # the full-frame captioner: its own shipped default
            lp = default_length_penalty(meta)
        caps = caption_features(model, vocab, feats, beam_size=args.beam, length_penalty=lp)
        candidates[row] = [c[0].text or "<empty>" for c in caps]

    report = {"split": args.split, "boxes": len(boxes), "images": len(entities), "beam": args.beam,
              "length_penalty": penalties,
              "regions": args.regions, "full_frame": args.full_frame, "rows": {}, "examples": []}
    for row in rows:
        scores = score_captions({str(i): c for i, c in enumerate(candidates[row])}, references, spice=False)
        words = sum(len(c.split()) for c in candidates[row]) / len(boxes)
        report["rows"][row] = {**{m: round(100 * scores[m], 1) for m in METRICS}, "words": round(words, 2)}
    for i in range(0, len(boxes), max(1, len(boxes) // 12)):
        report["examples"].append({"image": boxes[i].image, "box": [round(float(x), 3) for x in boxes[i].box],
                                   "references": references[str(i)], **{r: candidates[r][i] for r in rows}})
    print(f"\n| {args.split} ({len(boxes)} boxes) | " + " | ".join(METRICS) + " | words |")
    print("|---|" + "---|" * (len(METRICS) + 1))
    for row in rows:
        r = report["rows"][row]
        print(f"| {row} | " + " | ".join(f"{r[m]:.1f}" for m in METRICS) + f" | {r['words']:.1f} |")
    for ex in report["examples"][:6]:
        print(f"\n{ex['image']} {ex['box']}\n  human: {ex['references']}\n  "
              + "\n  ".join(f"{r}: {ex[r]}" for r in rows[1:]))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
