"""Issue #14: search with words the alignment model never saw (retrieval/unseen_words.py).

    # the alignment model without the held-out concepts (~75 min with one thread), see
    # benchmarks/configs/new-words-alignment*.yaml; then
    python benchmarks/bench_unseen_search.py threshold            # MIN_SIMILARITY's figures
    python benchmarks/bench_unseen_search.py tune --root ../shared/data
    python benchmarks/bench_unseen_search.py test --root ../shared/data
    python benchmarks/bench_unseen_search.py pictures --root ../shared/data   # docs/images/unseen-search.png

The model (``--checkpoint``, default stage 2, ``new-words-alignment-hardest.yaml``; stage 1 is
``runs/new-words/alignment/best``) was trained on the training photos that mention none of the held-out concepts
(``data/concepts.py``), so none of the concept words is in its vocabulary. Queries: the
sentences of the split that use a concept word (every concept word of them is unseen), each
ranked against all the split's photos (text → image R@K, med r, as ``scenetalk evaluate``),
with the unseen words read as ``<unk>`` (what search did before), or placed by
``UnseenWords`` ("map": ridge regression from the pretrained vectors to the model's word
vectors; "nearest": the mean of the k nearest known words' vectors). The method and its
setting are chosen on val by R@1 + R@5 + R@10; test is scored once, with the shipped model
(trained with every training photo, the concept words known, the same two-stage recipe) as the
upper bound. Precision@5: the query is the concept's head word alone (``surfboard``); a hit
is right when a reference sentence of the photo mentions the concept (any of its words).
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

RUNS = REPO / "runs" / "new-words"
REGIONS = REPO / "features" / "flickr8k-regions"
GRID = [("unk", None)] + [("map", r) for r in (0.01, 0.1, 1.0, 10.0)] + [("nearest", k) for k in (1, 3, 5)]


def load(args):
    import torch

    from scenetalk.checkpoint import load_alignment
    from scenetalk.data.registry import load_dataset
    from scenetalk.features.store import FeatureStore

    torch.set_num_threads(args.threads)
    dataset = load_dataset("flickr8k", root=args.root)
    store = FeatureStore.open(str(REGIONS))
    model, vocab, _ = load_alignment(args.checkpoint, expect_extractor_id=store.extractor_id)
    return dataset, store, model, vocab


def with_placed(model, vocab, words, method, setting):
    """A copy of the model whose vocabulary also holds ``words``, their rows of W_w (eq. 2)
    placed by ``UnseenWords`` (``unk``: left unknown, read as <unk>)."""
    import copy

    import torch

    from scenetalk.data.text import Vocabulary
    from scenetalk.retrieval.unseen_words import UnseenWords

    if method == "unk" or not words:
        return model, vocab, {}
    kw = {"ridge": setting} if method == "map" else {"k": setting}
    placed = UnseenWords(model.W_w.weight.detach().numpy(), vocab, method=method, min_similarity=-1.0, **kw).place(sorted(words))
    bigger = Vocabulary(vocab.itos[len(Vocabulary.SPECIALS):] + [p.word for p in placed], vocab.counts,
                        vocab.min_count, vocab.language)
    m = copy.deepcopy(model)
    weight = torch.cat([model.W_w.weight.detach(), torch.stack([torch.from_numpy(p.vector) for p in placed])])
    m.W_w = torch.nn.Embedding.from_pretrained(weight, freeze=True, padding_idx=0)
    m.config.vocab_size = len(bigger)
    return m.eval(), bigger, {p.word: {"near": p.near, "similarity": p.similarity} for p in placed}


def concept_queries(dataset, split):
    """The split's images, and its sentences that use a concept word, with their image's index."""
    from scenetalk.data.concepts import all_words

    images = dataset.split(split)
    queries = [(k, s.tokens) for k, im in enumerate(images) for s in im.sentences if set(s.tokens) & all_words()]
    return images, queries


def t2i(model, vocab, store, images, queries):
    """Text -> image R@1/5/10 and median rank of the queries among the split's photos."""
    import torch

    from scenetalk.models.alignment import all_pairs_scores

    rows = torch.tensor([store.row(im.relpath) for im in images])
    with torch.no_grad():
        v = model.embed_regions(store.model_input("regions")[rows].float())
        ids = torch.from_numpy(vocab.encode_batch([t for _, t in queries], add_start=False, add_end=False)[0])
        s, mask = model.embed_words(ids)
        scores = all_pairs_scores(v, s, mask, model.config.score)        # (images, queries)
    truth = torch.tensor([k for k, _ in queries])
    better = (scores > scores[truth, torch.arange(len(truth))][None]).sum(0)   # ties count for the model
    ranks = better + 1
    return {"R@1": float((ranks <= 1).float().mean()), "R@5": float((ranks <= 5).float().mean()),
            "R@10": float((ranks <= 10).float().mean()), "med_r": float(ranks.float().median()),
            "queries": len(queries)}


def unseen_in(queries, vocab):
    return {t for _, tokens in queries for t in tokens if t not in vocab.stoi}


def tune(args) -> None:
    dataset, store, model, vocab = load(args)
    images, queries = concept_queries(dataset, "val")
    words = unseen_in(queries, vocab)
    results = []
    for method, setting in GRID:
        m, v, _ = with_placed(model, vocab, words, method, setting)
        r = t2i(m, v, store, images, queries)
        r.update(method=method, setting=setting, sum=r["R@1"] + r["R@5"] + r["R@10"])
        results.append(r)
        print(f"{method:8s} {setting!s:6s}: val t2i R@1 {100 * r['R@1']:.1f} R@5 {100 * r['R@5']:.1f} "
              f"R@10 {100 * r['R@10']:.1f} med r {r['med_r']:.0f} ({r['queries']} queries)", flush=True)
    chosen = max((r for r in results if r["method"] != "unk"), key=lambda r: r["sum"])
    print(f"chosen on val: {chosen['method']} {chosen['setting']}")
    RUNS.mkdir(parents=True, exist_ok=True)
    (RUNS / "tune-unseen-search.json").write_text(json.dumps({"results": results, "chosen": chosen}, indent=1))


def precision_at_5(model, vocab, store, images, placed_words, method, setting):
    """P@5 of each concept's head word as a query, over the split's photos."""
    import torch

    from scenetalk.data.concepts import HELD_OUT_CONCEPTS, image_mentions
    from scenetalk.models.alignment import all_pairs_scores

    heads = list(HELD_OUT_CONCEPTS)
    m, v, _ = with_placed(model, vocab, [h for h in heads if h not in vocab.stoi], method, setting)
    rows = torch.tensor([store.row(im.relpath) for im in images])
    out = {}
    with torch.no_grad():
        regions = m.embed_regions(store.model_input("regions")[rows].float())
        for head in heads:
            if head not in v.stoi:
                out[head] = None     # refused: the model does not know it
                continue
            ids = torch.from_numpy(v.encode_batch([[head]], add_start=False, add_end=False)[0])
            s, mask = m.embed_words(ids)
            top = all_pairs_scores(regions, s, mask, m.config.score)[:, 0].argsort(descending=True)[:5]
            out[head] = sum(image_mentions(images[int(i)], HELD_OUT_CONCEPTS[head]) for i in top) / 5
    return out


def test(args) -> None:
    from scenetalk.checkpoint import load_alignment
    from scenetalk.weights import shipped_alignment

    dataset, store, model, vocab = load(args)
    chosen = json.loads((RUNS / "tune-unseen-search.json").read_text())["chosen"]
    images, queries = concept_queries(dataset, "test")
    words = unseen_in(queries, vocab)
    report = {"chosen": chosen, "rows": []}
    shipped, shipped_vocab, _ = load_alignment(shipped_alignment(), expect_extractor_id=store.extractor_id)
    for label, (m0, v0, method, setting) in {
            "without the concepts, unseen words read as <unk> (before)": (model, vocab, "unk", None),
            f"without the concepts, unseen words placed ({chosen['method']} {chosen['setting']})":
                (model, vocab, chosen["method"], chosen["setting"]),
            "shipped model (trained with the concepts: upper bound)": (shipped, shipped_vocab, "unk", None)}.items():
        m, v, placed = with_placed(m0, v0, words if v0 is vocab else [], method, setting)
        r = t2i(m, v, store, images, queries)
        p5 = precision_at_5(m0, v0, store, images, placed, method, setting)
        scored = [p for p in p5.values() if p is not None]
        r.update(label=label, p_at_5=p5, mean_p_at_5=sum(scored) / len(scored) if scored else None)
        report["rows"].append(r)
        p5_text = ", ".join(f"{k} {'refused' if p is None else f'{p:.1f}'}" for k, p in p5.items())
        mean = "refused" if r["mean_p_at_5"] is None else f"{r['mean_p_at_5']:.2f}"
        print(f"| {label} | {100 * r['R@1']:.1f} | {100 * r['R@5']:.1f} | {100 * r['R@10']:.1f} | {r['med_r']:.0f} | "
              f"{mean} |  ({r['queries']} queries; P@5: {p5_text})", flush=True)
    _, _, placed = with_placed(model, vocab, words, chosen["method"], chosen["setting"])
    report["placed"] = placed
    (RUNS / "test-unseen-search.json").write_text(json.dumps(report, indent=1))


def top_photos(model, vocab, store, images, word, k=5):
    """The ``k`` best photos (indices into ``images``) and their scores for the one-word query."""
    import torch

    from scenetalk.models.alignment import all_pairs_scores

    rows = torch.tensor([store.row(im.relpath) for im in images])
    with torch.no_grad():
        regions = model.embed_regions(store.model_input("regions")[rows].float())
        ids = torch.from_numpy(vocab.encode_batch([[word]], add_start=False, add_end=False)[0])
        s, mask = model.embed_words(ids)
        scores = all_pairs_scores(regions, s, mask, model.config.score)[:, 0]
    top = scores.argsort(descending=True)[:k]
    return [(int(i), float(scores[i])) for i in top]


def pictures(args) -> None:
    """docs/images/unseen-search.png: the top 5 test photos for a concept's word, by the model
    that never saw it (the word placed) and by the shipped model; a tick when a person's
    sentence of the photo mentions the concept. The concepts are the first four of the list."""
    from pathlib import Path as P

    from scenetalk.checkpoint import load_alignment
    from scenetalk.data.concepts import HELD_OUT_CONCEPTS, image_mentions
    from scenetalk.presentation.pictures import save_png, snippet_sheet
    from scenetalk.vision.images import load_image
    from scenetalk.weights import shipped_alignment

    dataset, store, model, vocab = load(args)
    chosen = json.loads((RUNS / "tune-unseen-search.json").read_text())["chosen"]
    images = dataset.split("test")
    shipped, shipped_vocab, _ = load_alignment(shipped_alignment(), expect_extractor_id=store.extractor_id)
    rows = []
    for head in list(HELD_OUT_CONCEPTS)[:4]:
        m, v, placed = with_placed(model, vocab, [head], chosen["method"], chosen["setting"])
        for label, (mm, vv) in ((f'"{head}": never seen, placed near {", ".join(placed[head]["near"])}', (m, v)),
                                (f'"{head}": shipped model (saw it)', (shipped, shipped_vocab))):
            cells = []
            for i, score in top_photos(mm, vv, store, images, head):
                right = image_mentions(images[i], HELD_OUT_CONCEPTS[head])
                cells.append((load_image(P(dataset.image_dir) / images[i].relpath),
                              f"{'✓' if right else '✗'} {score:.1f}"))
            rows.append((label, cells))
    out = REPO / "docs" / "images" / "unseen-search.png"
    save_png(snippet_sheet(rows, cell=110, label_width=230,
                           title="Flickr8K test, top 5 photos for a one-word query (✓: a person's sentence "
                                 "mentions it)"), out)
    print(f"wrote {out}")


def threshold(args) -> None:
    """The nearest known word's similarity for random letter strings and for COCO class words the
    shipped model lacks: the figures behind ``unseen_words.MIN_SIMILARITY``."""
    from scenetalk.checkpoint import load_alignment
    from scenetalk.retrieval.unseen_words import MIN_SIMILARITY, UnseenWords
    from scenetalk.vision.detector import COCO_LABELS
    from scenetalk.weights import shipped_alignment

    model, vocab, _ = load_alignment(shipped_alignment())
    placer = UnseenWords(model.W_w.weight.detach().numpy(), vocab)
    rng = random.Random(0)
    junk = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9))) for _ in range(30)]
    real = sorted({w for w in COCO_LABELS.values() if " " not in w and w not in vocab.stoi})
    for name, words in (("random letter strings", junk), ("COCO class words the model lacks", real)):
        found = placer.place(words)
        passed = [p for p in found if p.similarity >= MIN_SIMILARITY]
        print(f"{name}: {len(passed)} of {len(found)} at or above {MIN_SIMILARITY}; similarities "
              f"{min(p.similarity for p in found):.2f}-{max(p.similarity for p in found):.2f}")
        print("   " + ", ".join(f"{p.word} -> {p.near[0]} {p.similarity:.2f}" for p in found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("threshold", "tune", "test", "pictures"))
    parser.add_argument("--root", default=None)
    parser.add_argument("--checkpoint", default=str(RUNS / "alignment-hardest" / "best"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    {"threshold": threshold, "tune": tune, "test": test, "pictures": pictures}[args.step](args)


if __name__ == "__main__":
    main()
