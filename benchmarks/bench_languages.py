"""Captions in Chinese and German (issue #17): choose on val, report test once; prints the
BENCHMARKS.md section.

    python benchmarks/bench_languages.py --root ../shared/data --features features/flickr8k \
        --work /tmp/bench-languages --run zh-lstm-jieba=runs/zh-jieba/best --run zh-lstm-char=runs/zh-char/best \
        --run zh-mrnn-jieba=runs/zh-mrnn/best --run de-lstm=runs/de-lstm/best --run de-mrnn=runs/de-mrnn/best

Each ``--run NAME=CHECKPOINT`` is a captioner of ``zh`` or ``de`` (its vocabulary says which);
a shipped one (``src/scenetalk/weights/captioner-zh``) is scored at its own default decoding.

1. **Val** (``--split val``, beam 7): every run at length penalty 0, 0.5 and 1; a run's
   setting is the one with the best mean of BLEU-4, CIDEr-D and METEOR where the language has
   it (the English captioner's rule; Chinese has no METEOR). Chinese words (jieba) against
   characters: the better of the two LSTM runs on that mean is the one to ship.
2. **Test**, once per run at its chosen setting; beside them, on the same photos, the
   nearest-neighbour baseline and human agreement (each reference against the other four),
   and: Chinese captions against the human translations of the English references (Li et al.'s
   ET-NIC setting); the shipped English captioner on the test photos that have German
   descriptions (German's "beside English on the same photos").

Chinese is scored on jieba words whatever the model's own tokens (Li et al. 2016's protocol),
with BLEU on characters beside it. Evaluations are saved as JSON in ``--work`` and reused
when there (delete the folder to re-run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

LENGTH_PENALTIES = (0.0, 0.5, 1.0)
DATASETS = {"zh": "flickr8k-cn", "de": "multi30k-de"}
ANCHORS = {  # Li et al. 2016, Flickr8K-CN test, jieba words, BLEU-1/2/3
    "CS-NIC (Li et al. 2016, native references)": (61.1, 40.1, 21.3),
    "ET-NIC (Li et al. 2016, against the translations)": (53.9, 32.1, 16.8),
}


def evaluation(work: Path, key: str, **kwargs) -> dict:
    """``scenetalk.evaluate(**kwargs)`` as JSON data, cached in ``work/key.json``."""
    from scenetalk.results import to_data
    from scenetalk.training.evaluation import evaluate

    path = work / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    started = time.time()
    data = to_data(evaluate(progress=False, **kwargs))
    data.pop("captions", None)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"  {key}: {time.time() - started:.0f} s", file=sys.stderr)
    return data


def selection_score(scores: dict) -> float:
    """The mean of BLEU-4, CIDEr-D and METEOR where it is a number (×100)."""
    values = [scores[m] for m in ("BLEU-4", "CIDEr-D", "METEOR") if isinstance(scores.get(m), float)]
    return 100 * sum(values) / len(values)


def shipped_length_penalty(checkpoint: str) -> float | None:
    """A shipped captioner's default length penalty (``decoding`` in its config), else None."""
    from scenetalk.checkpoint import read_meta

    meta = read_meta(checkpoint)
    return float(meta["decoding"]["length_penalty"]) if "shipped" in meta and "decoding" in meta else None


def language_of(checkpoint: str) -> str:
    from scenetalk.checkpoint import read_meta

    return read_meta(checkpoint)["vocabulary"].get("language", "en")


def english_on_german_photos(work: Path, root: str, features: str) -> dict:
    """The shipped English captioner (the default, top-down attention over the grid, as the
    German one is) on the Flickr8K test photos that have German descriptions."""
    path = work / "en-shipped-on-de-photos.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    from scenetalk.captioning.captioner import check_features
    from scenetalk.captioning.evaluation import caption_report, generated_captions
    from scenetalk.checkpoint import load_generator
    from scenetalk.data.registry import load_dataset
    from scenetalk.data.schema import CaptionDataset
    from scenetalk.features.store import FeatureStore
    from scenetalk.weights import shipped_captioner

    german = {im.relpath for im in load_dataset("multi30k-de", root=root).split("test")}
    english = load_dataset("flickr8k", root=root)
    subset = CaptionDataset("flickr8k (test photos with German descriptions)",
                            [im for im in english.images if im.split != "test" or im.relpath in german])
    store = FeatureStore.open(features)
    model, vocab, meta = load_generator(shipped_captioner("en"))
    check_features(shipped_captioner("en"), meta, store, model.image_input)
    penalty = meta.get("decoding", {}).get("length_penalty", 0.0)
    captions = generated_captions(model, vocab, subset, "test", store.model_input(model.image_input),
                                  store.row_index, beam_size=7, length_penalty=penalty)
    report = caption_report(captions, subset, "test")
    data = {"what": f"shipped English captioner ({meta['model']['type']}), beam 7, length penalty {penalty:g}",
            **report}
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return data


def fmt(scores: dict, metric: str) -> str:
    value = scores.get(metric)
    return f"{100 * value:.1f}" if isinstance(value, float) else "–"


def row(name: str, report: dict, with_char: bool) -> str:
    s = report["scores"]
    cells = [fmt(s, m) for m in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")]
    if with_char:
        c = report.get("char_scores") or {}
        cells.append("/".join(fmt(c, f"BLEU-{n}") for n in (1, 2, 3, 4)))
    return f"| {name} | {report['images']} | " + " | ".join(cells) + " |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--features", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--run", action="append", required=True, metavar="NAME=CHECKPOINT")
    p.add_argument("--detection", action="store_true", help="also the language-detection table")
    p.add_argument("--val-only", action="store_true", help="the val table only (choosing among checkpoints)")
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    runs = dict(r.split("=", 1) for r in args.run)
    common = {"features": args.features, "root": args.root, "beam_size": 7}

    print("## Captions in Chinese and German (issue #17)\n")
    print(f"`python benchmarks/bench_languages.py --root ../shared/data --features {args.features} "
          f"--work {args.work} " + " ".join(f"--run {k}={v}" for k, v in runs.items())
          + (" --detection" if args.detection else "") + "`; "
          "2-core development machine, one run. Beam 7. Chinese scored on jieba words (Li et al. "
          "2016's protocol) whatever the model's tokens, BLEU on characters beside it; German METEOR is "
          "METEOR 1.5 `-l de` with the exact and stem modules only (pycocoevalcap ships no German "
          "paraphrase table), so it is not comparable with English METEOR; METEOR 1.5 has no Chinese "
          "resources (–). Human: each reference scored against the other four, averaged over the five.\n")

    chosen: dict[str, float] = {}
    print("**Val** (choosing each run's length penalty; the mean of B-4, CIDEr-D and METEOR where there is one):\n")
    print("| run | " + " | ".join(f"length penalty {lp:g}" for lp in LENGTH_PENALTIES) + " | chosen |")
    print("|---|" + "---|" * (len(LENGTH_PENALTIES) + 1))
    for name, ckpt in runs.items():
        lang = language_of(ckpt)
        shipped = shipped_length_penalty(ckpt)
        if shipped is not None:  # a shipped model: its own default, chosen on val when it was shipped
            chosen[name] = shipped
            print(f"| {name} | " + " | ".join("" for _ in LENGTH_PENALTIES) + f" | {shipped:g} (shipped default) |")
            continue
        means = {lp: selection_score(evaluation(work, f"{name}-val-lp{lp:g}", checkpoint=ckpt,
                                                dataset=DATASETS[lang], split="val", length_penalty=lp,
                                                **common)["scores"]) for lp in LENGTH_PENALTIES}
        chosen[name] = max(means, key=means.get)
        print(f"| {name} | " + " | ".join(f"{means[lp]:.2f}" for lp in LENGTH_PENALTIES) + f" | {chosen[name]:g} |")
    zh_lstm = [n for n in runs if language_of(runs[n]) == "zh" and "lstm" in n]
    if len(zh_lstm) > 1:
        best = max(zh_lstm, key=lambda n: selection_score(
            json.loads((work / f"{n}-val-lp{chosen[n]:g}.json").read_text(encoding="utf-8"))["scores"]))
        print(f"\nChinese words against characters (LSTM runs, val, each at its chosen setting): **{best}** "
              "is shipped.")
    print()
    if args.val_only:
        return

    for lang in ("zh", "de"):
        names = [n for n in runs if language_of(runs[n]) == lang]
        if not names:
            continue
        dataset = DATASETS[lang]
        title = {"zh": "Flickr8K-CN **test** (native Chinese references)",
                 "de": "Multi30K German descriptions of the Flickr8K **test** photos"}[lang]
        with_char = lang == "zh"
        print(f"| {title} | photos | B-1 | B-2 | B-3 | B-4 | METEOR | ROUGE-L | CIDEr-D |"
              + (" char B-1/2/3/4 |" if with_char else ""))
        print("|---|---|" + "---|" * (7 + with_char))
        if lang == "zh":
            print(f"| *{list(ANCHORS)[0]}* | 1000 | " + " | ".join(f"*{v}*" for v in ANCHORS[list(ANCHORS)[0]])
                  + " | – | – | – | – | – |")
        print(row("human agreement", evaluation(work, f"{lang}-human-test", human=True, dataset=dataset,
                                                 split="test", root=args.root), with_char))
        print(row("nearest neighbour", evaluation(work, f"{lang}-nn-test", nearest_neighbour=True, dataset=dataset,
                                                   split="test", features=args.features, root=args.root),
                  with_char))
        for name in names:
            report = evaluation(work, f"{name}-test", checkpoint=runs[name], dataset=dataset, split="test",
                                length_penalty=chosen[name], **common)
            print(row(f"{name} (`{runs[name]}`), length penalty {chosen[name]:g}", report, with_char))
        if lang == "de":
            print(row("English on the same photos: " + english_on_german_photos(work, args.root, args.features)["what"],
                      english_on_german_photos(work, args.root, args.features), False))
        print()
        if lang == "zh":
            print("| Chinese captions against the human **translations** of the English test references "
                  "(flickr8k-cn-trans) | photos | B-1 | B-2 | B-3 | B-4 | METEOR | ROUGE-L | CIDEr-D "
                  "| char B-1/2/3/4 |")
            print("|---|---|" + "---|" * 8)
            print(f"| *{list(ANCHORS)[1]}* | 1000 | " + " | ".join(f"*{v}*" for v in ANCHORS[list(ANCHORS)[1]])
                  + " | – | – | – | – | – |")
            for name in names:
                report = evaluation(work, f"{name}-test-trans", checkpoint=runs[name], dataset="flickr8k-cn-trans",
                                    split="test", length_penalty=chosen[name], **common)
                print(row(f"{name}, length penalty {chosen[name]:g}", report, True))
            print()
    if args.detection:
        detection_table(args.root)


def detection_table(root: str) -> None:
    """How often ``detect_language`` names a sentence's language, on val (where its cue words
    were chosen) and test, per language of flickr8k-multi."""
    from collections import Counter

    from scenetalk.data.registry import load_dataset
    from scenetalk.data.text import detect_language

    data = load_dataset("flickr8k-multi", root=root)
    print("Language detection (`data.text.detect_language`, the cue words chosen on val), share of each "
          "language's sentences read as their own language:\n")
    print("| split | English | Chinese | German |")
    print("|---|---|---|---|")
    for split in ("val", "test"):
        right, total = Counter(), Counter()
        for s in data.sentences(split):
            total[s.language] += 1
            right[s.language] += detect_language(s.raw) == s.language
        print(f"| {split} | " + " | ".join(f"{100 * right[k] / total[k]:.2f}% of {total[k]:,}"
                                           for k in ("en", "zh", "de")) + " |")
    print()


if __name__ == "__main__":
    main()
