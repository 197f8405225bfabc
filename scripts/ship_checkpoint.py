"""Copy a trained checkpoint into the package as a shipped model, in fp16 (``--int8``: its
matrices in int8 with a scale a row, ``checkpoint.INT8_SCALE``; half the size).

    python scripts/ship_checkpoint.py runs/mrnn_lstm-flickr8k/best --note "scenetalk train mrnn_lstm_flickr8k ..."
    python scripts/ship_checkpoint.py runs/alignment-flickr8k/best --note "scenetalk train alignment_flickr8k ..."
    python scripts/ship_checkpoint.py runs/regions-flickr8k/best --target regions --note "..."
    python scripts/ship_checkpoint.py runs/zh-jieba/best --target captioner-zh --note "..."
    python scripts/ship_checkpoint.py runs/updown-grid-flickr8k/best --target captioner-updown --int8 --note "..."

A caption generator goes to src/scenetalk/weights/captioner/ (used by ``scenetalk caption`` and
``scenetalk.load().caption``), an alignment model to src/scenetalk/weights/alignment/ (used by
``scenetalk index``/``search`` and ``scenetalk.load().search``), a generator trained on region
snippets (``--target regions``) to src/scenetalk/weights/regions/ (``scenetalk regions``), a
captioner of another language (``--target captioner-zh`` / ``captioner-de``) to its own folder
(``--lang``), the top-down attention captioner (``--target captioner-updown``) to the folder of
the default English captioner (``weights.CAPTIONER_NAMES``); ``captioner/`` is the m-RNN-LSTM. The trainer's optimiser state is not part of a ``best`` checkpoint, so only the
weights travel; ``--note`` records how they were made (kept in config.json under ``shipped``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from scenetalk.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402

TARGETS = {"caption_generator": "captioner", "alignment": "alignment"}
#: the targets that take a caption generator besides ``captioner``
GENERATOR_TARGETS = ("regions", "captioner-zh", "captioner-de", "captioner-updown")
#: the targets of English captioners
ENGLISH = ("captioner", "captioner-updown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a checkpoint folder (e.g. runs/X/best)")
    parser.add_argument("--note", required=True, help="the command that trained it")
    parser.add_argument("--length-penalty", type=float, default=0.0,
                        help="captioners: default length normalisation for beam search, chosen on validation")
    parser.add_argument("--target", choices=sorted(set(TARGETS.values()) | set(GENERATOR_TARGETS)),
                        help="where it goes (default: by kind; a region generator needs --target regions)")
    parser.add_argument("--int8", action="store_true",
                        help="matrices in int8 with a scale a row (half of fp16's size); measure that quality holds")
    args = parser.parse_args()
    tensors, meta = load_checkpoint(args.checkpoint)
    if meta.get("kind") not in TARGETS:
        sys.exit(f"{args.checkpoint}: not a caption generator or alignment checkpoint")
    name = args.target or TARGETS[meta["kind"]]
    if name in GENERATOR_TARGETS and meta["kind"] != "caption_generator":
        sys.exit(f"{args.checkpoint}: --target {name} takes a caption generator")
    language = meta.get("vocabulary", {}).get("language", "en")
    writes = ENGLISH if language == "en" else (f"captioner-{language}",)
    if name.startswith("captioner") and name not in writes:
        sys.exit(f"{args.checkpoint}: writes {language!r}, not the language of --target {name}")
    target = REPO / "src" / "scenetalk" / "weights" / name
    if meta["kind"] == "caption_generator":
        meta["decoding"] = {"length_penalty": args.length_penalty}
    meta["shipped"] = {"from": args.checkpoint, "trained_with": args.note,
                       "precision": "int8 matrices, float16 otherwise" if args.int8 else "float16"}
    save_checkpoint(target, tensors, meta, half=True, int8=args.int8)
    size = sum(f.stat().st_size for f in target.iterdir())
    print(f"shipped {args.checkpoint} -> {target.relative_to(REPO)} ({size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
