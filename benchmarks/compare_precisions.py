"""Two copies of one captioner (fp16 and int8, say) on the same photos: how many captions are
word for word the same, and each copy's time a photo (issue #16's check for int8 weights:
"the same captions on the Flickr8K test photos").

    python benchmarks/compare_precisions.py /tmp/captioner-updown-fp16 src/scenetalk/weights/captioner-updown \\
        --features features/flickr8k-regions --root ../shared/data --split test

Each copy captions every photo of the split one at a time (beam 7, its own default length
penalty unless ``--length-penalty``), in the engine inference uses (ONNX Runtime where the
graphs are exported; a trainer's checkpoint without graphs in PyTorch).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("first")
    p.add_argument("second")
    p.add_argument("--features", required=True)
    p.add_argument("--root")
    p.add_argument("--dataset", default="flickr8k")
    p.add_argument("--split", default="test")
    p.add_argument("--beam", type=int, default=7)
    p.add_argument("--length-penalty", type=float,
                   help="for both (default: each copy's own; a trainer's checkpoint records none, so 0)")
    args = p.parse_args()
    import numpy as np

    from scenetalk.captioning.captioner import caption_features, default_length_penalty
    from scenetalk.checkpoint import load_generator_steps
    from scenetalk.data.registry import load_dataset
    from scenetalk.features.store import FeatureStore

    store = FeatureStore.open(args.features)
    photos = load_dataset(args.dataset, root=args.root).split(args.split)
    rows = [store.row_index[im.relpath] for im in photos]
    captions = {}
    for folder in (args.first, args.second):
        steps, vocab, meta = load_generator_steps(folder)
        images = np.asarray(store.array(steps.image_input)[rows], dtype=np.float32)
        penalty = default_length_penalty(meta) if args.length_penalty is None else args.length_penalty
        caption_features(steps, vocab, images[:1], beam_size=args.beam)   # warm up
        started = time.perf_counter()
        captions[folder] = [caption_features(steps, vocab, images[i:i + 1], beam_size=args.beam,
                                             length_penalty=penalty)[0][0].text for i in range(len(images))]
        ms = 1000 * (time.perf_counter() - started) / len(images)
        print(f"{folder}: {len(images)} {args.split} photos, beam {args.beam}, length penalty {penalty:g}: "
              f"{ms:.1f} ms a photo")
    same = sum(a == b for a, b in zip(captions[args.first], captions[args.second]))
    print(f"the same caption word for word: {same} of {len(rows)} photos")


if __name__ == "__main__":
    main()
