"""The pictures of docs/new-words.md: test photos of held-out concepts with the base
captioner's caption beside the captions after learning the concepts from N photos each.

    python benchmarks/new_words_pictures.py --root ../shared/data --shots 10
    python benchmarks/new_words_pictures.py --root ../shared/data --shots 10 --prefix zero-shot \
        --methods base zero-shot nvcl-analogy --concepts surfboard motorcycle

Reads the captions that ``bench_new_words.py protocol`` stored (runs/new-words/protocol-*.json;
first draw, seed 0). The photos are not picked by result: for each concept, the first
``--per-concept`` test photos (in the split's order) that mention it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

RUNS = REPO / "runs" / "new-words"
LABELS = {"base": "before (base captioner)", "nvcl": "NVCL, {n} photos a concept",
          "finetune-new": "fine-tuned on the new photos, {n} a concept",
          "finetune-mix": "fine-tuned on new + base photos, {n} a concept",
          "zero-shot": "zero-shot: the detector's word, no photo",
          "nvcl-analogy": "zero-shot start + NVCL, {n} photos a concept"}
ZERO_SHOT = ("base", "zero-shot", "nvcl-analogy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None)
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--per-concept", type=int, default=2)
    parser.add_argument("--concepts", nargs="+", default=["skateboard", "frisbee", "motorcycle", "boat"])
    parser.add_argument("--methods", nargs="+", default=["base", "nvcl", "finetune-new"])
    parser.add_argument("--out", default=str(REPO / "docs" / "images"))
    parser.add_argument("--prefix", default="new-words", help="file names: PREFIX-CONCEPT.png")
    args = parser.parse_args()

    from scenetalk.data.concepts import concept_photos
    from scenetalk.data.registry import load_dataset
    from scenetalk.presentation.pictures import captions_picture, save_png
    from scenetalk.vision.images import load_image

    dataset = load_dataset("flickr8k", root=args.root)
    records = [r for path in sorted(RUNS.glob("protocol-*.json")) for r in json.loads(path.read_text())]
    wanted = {m: next(r for r in records if r["method"] == m and r["seed"] == 0
                      and r["shots"] == (0 if m in ("base", "zero-shot") else args.shots)) for m in args.methods}
    photos = concept_photos(dataset, "test")
    for concept in args.concepts:
        rows = []
        for image in photos[concept][:args.per_concept]:
            captions = [(LABELS[m].format(n=args.shots), wanted[m]["captions"][image.relpath]) for m in args.methods]
            captions.append(("a person's sentence (reference 1)", image.sentences[0].raw))
            rows.append((load_image(Path(dataset.image_dir) / image.relpath), captions))
        path = Path(args.out) / f"{args.prefix}-{concept}.png"
        save_png(captions_picture(rows, title=f"held-out concept: {concept} (Flickr8K test photos)"), path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
