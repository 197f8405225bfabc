"""One index, three languages (issue #17): an alignment model trained on English, Chinese and
German sentences together against single-language models trained the same way; prints the
BENCHMARKS.md section.

    python benchmarks/bench_multilingual_index.py --root ../shared/data --features features/flickr8k-regions \
        --work /tmp/bench-index --multi shared=runs/alignment-hardest-flickr8k-multi/best \
        --single en=src/scenetalk/weights/alignment --single zh=runs/alignment-hardest-flickr8k-cn/best \
        --single de=runs/alignment-hardest-multi30k-de/best

Each ``--multi NAME=CHECKPOINT`` (a model of several languages) is scored one language at a
time on ``flickr8k-multi`` (``scenetalk evaluate ... --dataset flickr8k-multi --lang L``);
each ``--single LANG=CHECKPOINT`` on its language's own dataset (flickr8k, flickr8k-cn,
multi30k-de), which holds the same photos and sentences. German has descriptions for 929 of
the 1,000 test photos: its rows rank those 929. Every model is scored on S_kl (eq. 8), in
float32, every photo of the split against every sentence.

1. **Val**: every model, every language; with several ``--multi`` runs (shared BRNN or one
   per language) the one with the best mean R@K sum over the languages is the candidate.
2. **Test**, once: the candidate and the single-language models. The issue's rule for
   shipping: each language's text->image R@1 at least its single-language model's, and
   English within 1 point of the shipped (English-only) model in both directions.

Evaluations are saved as JSON in ``--work`` and reused when there (delete it to re-run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

DATASETS = {"en": "flickr8k", "zh": "flickr8k-cn", "de": "multi30k-de"}
MULTI = "flickr8k-multi"
KS = (1, 5, 10)


def evaluation(work: Path, key: str, **kwargs) -> dict:
    from scenetalk.training.evaluation import evaluate

    path = work / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    started = time.time()
    result = dataclasses.asdict(evaluate(progress=False, **kwargs))
    result["wall_s"] = round(time.time() - started, 1)
    path.write_text(json.dumps(result, indent=1))
    print(f"  {key}: {result['wall_s']:.0f} s", file=sys.stderr)
    return result


def rsum(r: dict) -> float:
    return sum(r[d][f"R@{k}"] for d in ("image_to_text", "text_to_image") for k in KS)


def cells(r: dict) -> str:
    def side(d):
        return " / ".join(f"{r[d][f'R@{k}']:.1f}" for k in KS) + f" | {r[d]['median_rank']:g}"
    return f"{side('image_to_text')} | {side('text_to_image')}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--features", required=True, help="the region feature store (features/flickr8k-regions)")
    p.add_argument("--work", required=True)
    p.add_argument("--multi", action="append", default=[], metavar="NAME=CHECKPOINT",
                   help="a model of several languages (none: only the single-language rows, e.g. to score them early)")
    p.add_argument("--single", action="append", default=[], metavar="LANG=CHECKPOINT")
    p.add_argument("--shipped", default=str(REPO / "src/scenetalk/weights/alignment"),
                   help="today's shipped English model (the 1-point rule)")
    p.add_argument("--splits", default="val,test")
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    multi = dict(item.split("=", 1) for item in args.multi)
    single = dict(item.split("=", 1) for item in args.single)
    languages = list(DATASETS)
    common = {"features": args.features, "root": args.root}

    def of_multi(name, lang, split):
        return evaluation(work, f"{name}-{lang}-{split}", checkpoint=multi[name], dataset=MULTI, lang=lang,
                          split=split, **common)

    def of_single(lang, split):
        return evaluation(work, f"single-{lang}-{split}", checkpoint=single[lang], dataset=DATASETS[lang],
                          split=split, **common)

    splits = args.splits.split(",")
    header = ("| model | language | photos | sentences | image→text R@1 / R@5 / R@10 | med r | "
              "text→image R@1 / R@5 / R@10 | med r |\n|---|---|---|---|---|---|---|---|")
    candidate = next(iter(multi), None)
    if "val" in splits:
        print("Val (the choice between the multilingual runs):\n")
        print(header)
        mean_rsum = {}
        for name in multi:
            sums = []
            for lang in languages:
                r = of_multi(name, lang, "val")
                sums.append(rsum(r))
                print(f"| {name} (three languages) | {lang} | {r['images']} | {r['sentences']} | {cells(r)} |")
            mean_rsum[name] = sum(sums) / len(sums)
        for lang in single:
            r = of_single(lang, "val")
            print(f"| {lang} only | {lang} | {r['images']} | {r['sentences']} | {cells(r)} |")
        if mean_rsum:
            candidate = max(mean_rsum, key=mean_rsum.get)
            print("\nMean R@K sum over the languages (val): "
                  + ", ".join(f"{n} {s:.1f}" for n, s in mean_rsum.items()) + f" → **{candidate}**\n")
    if "test" not in splits or candidate is None:
        for lang in single if "test" in splits else ():
            of_single(lang, "test")   # scored and saved for the run with the candidate
        return
    print(f"Test, once ({candidate} and the single-language models):\n")
    print(header)
    verdicts = []
    for lang in languages:
        r = of_multi(candidate, lang, "test")
        print(f"| **{candidate} (three languages)** | {lang} | {r['images']} | {r['sentences']} | {cells(r)} |")
        if lang in single:
            s = of_single(lang, "test")
            print(f"| {lang} only | {lang} | {s['images']} | {s['sentences']} | {cells(s)} |")
            gap = r["text_to_image"]["R@1"] - s["text_to_image"]["R@1"]
            verdicts.append((f"{lang}: text→image R@1 {r['text_to_image']['R@1']:.1f} against "
                             f"{s['text_to_image']['R@1']:.1f} for the {lang}-only model ({gap:+.1f})", gap >= 0))
    if "en" in languages:
        same = "en" in single and Path(single["en"]).resolve() == Path(args.shipped).resolve()
        shipped = of_single("en", "test") if same else evaluation(
            work, "shipped-en-test", checkpoint=args.shipped, dataset="flickr8k", split="test", **common)
        r = of_multi(candidate, "en", "test")
        for d, label in (("image_to_text", "image→text"), ("text_to_image", "text→image")):
            gap = r[d]["R@1"] - shipped[d]["R@1"]
            verdicts.append((f"en: {label} R@1 {r[d]['R@1']:.1f} against the shipped model's "
                             f"{shipped[d]['R@1']:.1f} ({gap:+.1f}; within 1 point required)", gap >= -1.0))
    print()
    for text, ok in verdicts:
        print(f"- {text}: {'met' if ok else '**not met**'}")
    print(f"\n**Ship**: {'yes' if all(ok for _, ok in verdicts) else 'no'} (every rule above met)")


if __name__ == "__main__":
    main()
