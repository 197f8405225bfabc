"""Copy a trained caption generator into the package as the shipped captioner, in fp16.

    python scripts/ship_captioner.py runs/best-flickr8k/best --note "scenetalk train best_flickr8k ..."

Writes src/scenetalk/weights/captioner/ (model.safetensors + config.json), the checkpoint
``scenetalk.load()`` and ``scenetalk caption`` use by default. The trainer's optimiser state is
not part of a ``best`` checkpoint, so only the weights travel; ``--note`` records how they were
made (kept in config.json under ``shipped``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from scenetalk.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402

TARGET = REPO / "src" / "scenetalk" / "weights" / "captioner"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a caption generator checkpoint folder (e.g. runs/X/best)")
    parser.add_argument("--note", required=True, help="the command that trained it")
    parser.add_argument("--length-penalty", type=float, default=0.0,
                        help="default length normalisation for beam search, chosen on validation")
    args = parser.parse_args()
    tensors, meta = load_checkpoint(args.checkpoint)
    if meta.get("kind") != "caption_generator":
        sys.exit(f"{args.checkpoint}: not a caption generator checkpoint")
    meta["decoding"] = {"length_penalty": args.length_penalty}
    meta["shipped"] = {"from": args.checkpoint, "trained_with": args.note, "precision": "float16"}
    save_checkpoint(TARGET, tensors, meta, half=True)
    size = sum(f.stat().st_size for f in TARGET.iterdir())
    print(f"shipped {args.checkpoint} -> {TARGET.relative_to(REPO)} ({size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
