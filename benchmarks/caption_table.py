"""Print a Markdown table of caption scores from ``scenetalk evaluate --out`` JSON reports.

    python benchmarks/caption_table.py runs/eval/*-test-*.json

One row per report: what was evaluated (checkpoint, model type, beam), the split, BLEU-1..4,
METEOR, ROUGE-L, CIDEr-D (x100), perplexity, and the share of captions found verbatim in
the training set. BENCHMARKS.md's caption tables are this script's output.
"""

from __future__ import annotations

import json
import sys

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")


def main(paths: list[str]) -> None:
    print("| model | split | " + " | ".join(METRICS) + " | perplexity | in training set |")
    print("|---|---|" + "---|" * (len(METRICS) + 2))
    for path in paths:
        r = json.load(open(path, encoding="utf-8"))
        scores = " | ".join(f"{100 * r['scores'][m]:.1f}" for m in METRICS)
        ppl = f"{r['perplexity']:.2f}" if "perplexity" in r else "-"
        print(f"| {r['what']} | {r['split']} | {scores} | {ppl} | {100 * r['in_training_set']:.1f}% |")


if __name__ == "__main__":
    main(sys.argv[1:])
