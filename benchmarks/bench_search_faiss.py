"""Benchmark search's candidate stage: the exact bounds (brute force) against the FAISS indexes,
on Flickr8K and on 1,000,000 synthetic photos.

    python benchmarks/bench_search_faiss.py --checkpoint runs/alignment-flickr8k/best
    python benchmarks/bench_search_faiss.py --checkpoint runs/alignment-flickr8k/best --compare

Queries are Flickr8K **val** sentences, embedded by the model. Candidate recall is the share of
the exhaustive top-10 (exact S_kl, eq. 8, of every photo) that is inside the candidate set of
size C; the exact scores are of the region vectors as an index stores them (float16). Three
candidate rules: the C largest upper bounds u_kᵀΣ_t s_t ("bound"), the C largest lower bounds
v_0ᵀΣ_t s_t of the whole-image region vector ("whole"), and search's rule, half by the bound
and the rest by the whole image (``search.merge_candidates``, "merged").

1. Flickr8K recall, for two collections: the 1,000 val photos (all 5,000 val sentences as
   queries) and all 8,091 photos (the first sentence of each val photo, 1,000 queries); for
   the exact rankings (with the share of queries that the bound alone and the merged rule,
   ``search.bound_candidates``, prove exact at k=10) and for the FAISS indexes
   ``search.build_candidate_index`` builds of the bounds and of the whole-image vectors.
2. Flickr8K latency: ``Searcher.search`` on an index of all 8,091 photos (written from the
   feature store a block at a time; the exact bounds: the path below
   ``search.FAISS_MIN_PHOTOS``), query embedding included.
3. 1M synthetic photos: each is 4 groups of 5 regions, every group taken from a random real
   photo (region vectors of the trained model), so its bound is the max of 20 real region
   vectors, its whole-image vector is region 0 of its first group's photo, and its exact S_kl
   is known. Reported: build time and size of both FAISS indexes, the brute-force time of
   both bounds, the candidate recall of the three rules (exact and FAISS) against the
   exhaustive top-10, and per-query latency = query embedding + merged FAISS candidates
   (``search.faiss_candidates``: both indexes) + exact re-ranking. Re-ranking reads the
   candidates' rows from a memory-mapped file of ``--rerank-photos`` synthetic photos (not 1M:
   that file would be 40 GB), warm in the page cache; a cold disk adds its random-read time for
   C rows of 40 KB.

``--compare`` measures the FAISS index types the choice was made from instead (1M synthetic).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

CANDIDATES = (50, 100, 200, 1000)


def pct(times: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(times) * 1000, q))


def recall_at(top10: np.ndarray, candidate_sets) -> float:
    """Mean share of each query's exhaustive top-10 inside its candidate set."""
    return float(np.mean([np.isin(top, cand).mean() for top, cand in zip(top10, candidate_sets)]))


def recall_table(top10, by_bound, by_whole, faiss_bound, faiss_whole, c, extra=""):
    """One row of recall of the exhaustive top-10 for the three rules at C = ``c``, exact and
    FAISS, from each query's rankings (best first; the exact ones at least ``c`` long)."""
    from scenetalk.retrieval.candidates import merge_candidates

    exact = [[r[:c] for r in by_bound], [r[:c] for r in by_whole],
             [merge_candidates(b[:c], w[:c], c) for b, w in zip(by_bound, by_whole)]]
    fast = [faiss_bound, faiss_whole, [merge_candidates(b, w, c) for b, w in zip(faiss_bound, faiss_whole)]]
    return (f"  {c:5d}  " + "  ".join(f"{recall_at(top10, cands):6.3f}" for cands in exact) + extra + "    "
            + "  ".join(f"{recall_at(top10, cands):6.3f}" for cands in fast))


def print_recall_header(extra="", after=""):
    """The two header lines of ``recall_table``'s rows; ``extra`` heads their ``extra``
    columns, ``after`` what follows the rows."""
    rules = f"{'bound':>6}  {'whole':>6}  {'merged':>6}"
    print(f"{'':9}{'exact rankings':22}{'':{len(extra)}}    FAISS")
    print(f"  {'C':>5}  {rules}{extra}    {rules}{after}")


def flickr_recall(name, bounds, whole, S, queries, k=10):
    """Recall of the three candidate rules at each C, exact and with FAISS, for a collection:
    bounds and whole-image vectors (N, h), exact scores S (N, queries), query vectors Σ_t s_t
    (queries, h)."""
    import faiss

    from scenetalk.retrieval.candidates import bound_candidates, build_candidate_index, faiss_rankings, proves_exact

    top10 = S.topk(k, dim=0).indices.T.numpy()
    kth = S.topk(k, dim=0).values[-1]
    indexes, built = [], []
    for x in (bounds, whole):
        start = time.perf_counter()
        indexes.append(build_candidate_index(x.numpy()))
        built.append(time.perf_counter() - start)
    nlist = faiss.extract_index_ivf(indexes[0]).nlist
    print(f"\n{name}: {len(bounds)} photos, {len(queries)} queries; FAISS IVF{nlist},SQfp16 of the bounds and of "
          f"the whole-image vectors built in {built[0]:.1f} s and {built[1]:.1f} s")
    print(f"candidate recall of the exhaustive top-10 (proved: share of queries proved exact at k={k}):")
    print_recall_header(f"  {'proved: bound':>13}  {'merged':>6}")
    upper, lower = queries @ bounds.T, queries @ whole.T                      # (queries, N)
    for c in CANDIDATES:
        if c >= len(bounds):
            continue
        top = upper.topk(c + 1, dim=1)
        by_bound, by_whole = top.indices.numpy(), lower.topk(c, dim=1).indices.numpy()
        proved_bound = proved_merged = 0
        for j, q in enumerate(queries):
            proved_bound += proves_exact(float(kth[j]), float(top.values[j, c]))
            proved_merged += proves_exact(float(kth[j]), bound_candidates(bounds, whole, q, c)[1])
        proved = f"  {proved_bound / len(queries):13.3f}  {proved_merged / len(queries):6.3f}"
        faiss_bound, faiss_whole = (faiss_rankings(index, queries.numpy(), c) for index in indexes)
        print(recall_table(top10, by_bound, by_whole, faiss_bound, faiss_whole, c, proved))


def synthetic_photos(v, n, seed):
    """``n`` synthetic photos of 4 groups of 5 regions, each group from a random real photo:
    their sources (n, 4), their bounds (n, h) and their whole-image vectors (n, h), region 0
    of their first group's photo."""
    import torch

    g = torch.Generator().manual_seed(seed)
    groups = v.view(len(v), 4, 5, -1).max(dim=2).values          # bound of each group (N, 4, h)
    src = torch.randint(0, len(v), (n, 4), generator=g)
    bounds = torch.empty(n, v.size(-1))
    for a in range(0, n, 50_000):
        bounds[a:a + 50_000] = groups[src[a:a + 50_000], torch.arange(4)].max(dim=1).values
    return src, bounds, v[src[:, 0], 0]


class SyntheticBounds:
    """The bounds of ``synthetic_photos``' photos computed when read (rows, a slice or an array
    of rows, as float32 NumPy), for collections whose bounds do not fit in memory (10M photos:
    40 GB): the same values ``synthetic_photos`` gives for the same sources."""

    def __init__(self, v, src):
        self.groups = v.view(len(v), 4, 5, -1).max(dim=2).values      # bound of each group (N, 4, h)
        self.src = src
        self.shape = (len(src), v.size(-1))

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, rows) -> np.ndarray:
        import torch

        src = self.src[rows] if isinstance(rows, slice) else self.src[torch.as_tensor(rows)]
        return self.groups[src, torch.arange(4)].max(dim=1).values.numpy()


def synthetic_top10(v, src, s, k=10):
    """Exhaustive top-k of the synthetic photos for one query's word vectors s (T, h): each
    word's best region in a photo is the best of its 4 groups' best regions."""
    import torch

    per_group = torch.einsum("nrh,th->nrt", v, s).view(len(v), 4, 5, -1).max(dim=2).values  # (N, 4, T)
    scores = torch.empty(len(src))
    for a in range(0, len(src), 200_000):
        scores[a:a + 200_000] = per_group[src[a:a + 200_000], torch.arange(4)].max(dim=1).values.sum(dim=-1)
    return scores.topk(k).indices.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="alignment checkpoint (default: the shipped one)")
    parser.add_argument("--features", default=str(REPO / "features" / "flickr8k-regions"))
    parser.add_argument("--root", help="data root (default: ../shared/data)")
    parser.add_argument("--synthetic", type=int, default=1_000_000, help="synthetic photos (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=200, help="timed queries (default 200)")
    parser.add_argument("--recall-queries", type=int, default=100, help="queries for the 1M recall (default 100)")
    parser.add_argument("--rerank-photos", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compare", action="store_true", help="compare FAISS index types on 1M synthetic photos")
    parser.add_argument("--spec", action="append", default=[], metavar="FACTORY=NPROBES",
                        help='with --compare: only these index types, e.g. "IVF1024,PQ100=64,128" (repeatable)')
    parser.add_argument("--streamed", action="store_true",
                        help="with --compare: never hold the synthetic bounds in memory (for 10M photos); the exact "
                             "bound's recall, then the --spec index types")
    args = parser.parse_args()

    import faiss
    import torch

    from scenetalk.checkpoint import load_alignment
    from scenetalk.data.registry import load_dataset
    from scenetalk.features.store import FeatureStore
    from scenetalk.weights import shipped_alignment

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    checkpoint = args.checkpoint or shipped_alignment()
    dataset = load_dataset("flickr8k", root=args.root)
    store = FeatureStore.open(args.features)
    model, vocab, _ = load_alignment(checkpoint, store.extractor_id)
    work = Path(tempfile.mkdtemp(prefix="bench-search-"))
    # The machine may be shared: the load average says how much the timings can be trusted.
    print(f"checkpoint {checkpoint}, {args.threads} threads, scratch {work}, load average "
          f"{os.getloadavg()[0]:.1f}")
    try:
        run(args, checkpoint, dataset, store, model, vocab, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # a 330 MB index and a 2 GB re-ranking file
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def run(args, checkpoint, dataset, store, model, vocab, work: Path) -> None:
    import faiss
    import torch

    import scenetalk
    from scenetalk.models.alignment import all_pairs_scores
    from scenetalk.retrieval.candidates import (
        RESCORE_BLOCK,
        bound_candidates,
        build_candidate_index,
        faiss_candidates,
        faiss_rankings,
        rescore,
    )
    from scenetalk.retrieval.index import (
        BOUNDS_FILE,
        FAISS_FILE,
        WHOLE_FAISS_FILE,
        WHOLE_FILE,
        embed_sentences,
        region_vectors,
        write_index,
    )
    from scenetalk.retrieval.search import Searcher

    start = time.perf_counter()
    index_dir = write_index(work / "flickr8k", region_vectors(model, store.regions, np.arange(len(store))),
                            store.names, checkpoint, store.extractor_id)
    print(f"index of all {len(store)} Flickr8K photos written (streamed from the feature store) in "
          f"{time.perf_counter() - start:.1f} s")
    searcher = Searcher(index_dir, checkpoint)
    v = torch.from_numpy(np.array(searcher.vectors)).float()       # as the index stores them (float16)
    bounds = torch.from_numpy(np.load(index_dir / BOUNDS_FILE))
    whole = torch.from_numpy(np.load(index_dir / WHOLE_FILE))
    val = dataset.split("val")
    texts = [s.raw for image in val for s in image.sentences]
    first = [image.sentences[0].raw for image in val]
    val_rows = torch.tensor([store.row_index[image.relpath] for image in val])

    def embedded(sentences):
        """Word vectors of ``sentences`` as (s, mask) batches, and their Σ_t s_t."""
        batches = list(embed_sentences(model, vocab, sentences))
        return batches, torch.cat([s.sum(dim=1) for s, _ in batches])

    if not args.compare:
        batches, q_val = embedded(texts)
        start = time.perf_counter()
        S = torch.cat([all_pairs_scores(v[val_rows], s, m) for s, m in batches], dim=1)
        print(f"exhaustive S_kl, 1,000 val photos x {len(texts)} sentences: {time.perf_counter() - start:.1f} s")
        flickr_recall("Flickr8K val photos", bounds[val_rows], whole[val_rows], S, q_val)
        batches, q_first = embedded(first)
        S = torch.cat([all_pairs_scores(v, s, m) for s, m in batches], dim=1)
        flickr_recall("Flickr8K all photos", bounds, whole, S, q_first)
        del S, batches

        timed = texts[::max(1, len(texts) // args.queries)][:args.queries]
        print(f"\nFlickr8K, all {len(searcher.names)} photos, Searcher.search (exact bounds, merged) and the "
              f"path users call, scenetalk.load().search (the index kept open), k=10, not re-ranked, "
              f"{len(timed)} val sentences:")
        m = scenetalk.load(alignment=checkpoint)
        paths = {"Searcher.search": searcher.search,
                 "scenetalk.load().search": partial(m.search, index_dir, rerank=0)}
        for c in (100, 1000):
            for label, search in paths.items():
                search(timed[0], k=10, candidates=c)  # warm-up (the façade opens the index)
                times, exact = [], 0
                for text in timed:
                    start = time.perf_counter()
                    exact += search(text, k=10, candidates=c).exact
                    times.append(time.perf_counter() - start)
                print(f"  C={c:4d} {label:<24}: median {pct(times, 50):.1f} ms, p90 {pct(times, 90):.1f} ms, "
                      f"proved exact {exact}/{len(timed)}")

    # 1M synthetic photos
    start = time.perf_counter()
    if args.streamed:   # the sources only: the bounds are computed as the indexes read them
        src = torch.randint(0, len(v), (args.synthetic, 4), generator=torch.Generator().manual_seed(0))
        X = SyntheticBounds(v, src)
        print(f"\n{args.synthetic:,} synthetic photos' sources drawn (the same as synthetic_photos'); their bounds "
              f"({args.synthetic * v.size(-1) * 4 / 2**30:.1f} GiB in float32) are computed as they are read")
    else:
        src, X, W = synthetic_photos(v, args.synthetic, seed=0)
        print(f"\n{args.synthetic:,} synthetic photos generated in {time.perf_counter() - start:.1f} s "
              f"(bounds and whole-image vectors: {X.numel() * 4 / 2**30:.2f} GiB float32 each)")
    timed = texts[::max(1, len(texts) // args.queries)][:args.queries]
    embedded_timed = [torch.from_numpy(np.asarray(searcher.embed_query(t)[0], dtype=np.float32)) for t in timed]
    q = torch.stack([s.sum(dim=0) for s in embedded_timed])
    recall_idx = list(range(0, len(timed), max(1, len(timed) // args.recall_queries)))[:args.recall_queries]
    start = time.perf_counter()
    top10 = np.stack([synthetic_top10(v, src, embedded_timed[j]) for j in recall_idx])
    print(f"exhaustive top-10 of {len(recall_idx)} queries: {time.perf_counter() - start:.1f} s")

    if args.streamed:
        # The exact upper bound's candidates, what FAISS approximates: the top C of u_kᵀq over
        # every photo, a block of bounds at a time.
        start, c, queries = time.perf_counter(), 1000, q[recall_idx]
        best_scores = torch.full((len(recall_idx), c), -float("inf"))
        best_rows = torch.zeros((len(recall_idx), c), dtype=torch.long)
        for a in range(0, len(X), 100_000):
            scores = torch.from_numpy(X[a:a + 100_000]) @ queries.T                  # (block, queries)
            merged = torch.cat([best_scores, scores.T], dim=1)
            rows = torch.cat([best_rows, torch.arange(a, a + scores.shape[0]).expand(len(recall_idx), -1)], dim=1)
            best_scores, at = merged.topk(c, dim=1)
            best_rows = rows.gather(1, at)
        print(f"exact upper bound, C={c}: recall {recall_at(top10, best_rows.numpy()):.3f} "
              f"({time.perf_counter() - start:.0f} s over {len(X):,} photos)", flush=True)
        if args.spec:
            compare(X, q, top10, recall_idx, specs=[parse_spec(t) for t in args.spec])
        print(f"peak memory of this process (ru_maxrss): "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB")
        return
    brute_times = []
    for j in range(min(20, len(q))):
        t0 = time.perf_counter()
        bound_candidates(X, W, q[j], 1000)
        brute_times.append(time.perf_counter() - t0)
    print(f"exact bounds (search.bound_candidates: both products and the merge), brute force over {len(X):,} "
          f"photos, C=1000: median {pct(brute_times, 50):.0f} ms ({len(brute_times)} queries; "
          f"{pct(brute_times, 50) / len(X) * 1000:.2f} ms per 1,000 photos)")
    Xn = X.numpy()

    if args.compare:
        compare(Xn, q, top10, recall_idx, specs=[parse_spec(t) for t in args.spec] or None)
        return

    indexes = []
    for label, x, file in (("bounds", Xn, FAISS_FILE), ("whole-image vectors", W.numpy(), WHOLE_FAISS_FILE)):
        start = time.perf_counter()
        indexes.append(build_candidate_index(x))
        build_s = time.perf_counter() - start
        faiss.write_index(indexes[-1], str(work / file))
        size = (work / file).stat().st_size
        print(f"FAISS IVF{faiss.extract_index_ivf(indexes[-1]).nlist},SQfp16 of the {label} "
              f"(search.build_candidate_index): built in {build_s:.1f} s, {size / 2**30:.2f} GiB on disk and in memory")
    index, whole_index = indexes

    # The exact rankings of all recall queries at once (a matrix product), best first: a
    # ranking's first C rows are its top C.
    most = max(CANDIDATES)
    by_bound = (X @ q[recall_idx].T).topk(most, dim=0).indices.T.numpy()
    by_whole = (W @ q[recall_idx].T).topk(most, dim=0).indices.T.numpy()
    print(f"candidate recall of the exhaustive top-10, {len(recall_idx)} queries:")
    print_recall_header(after=f"  {'nprobe':>6}")
    for c in CANDIDATES:
        faiss_bound, faiss_whole = (faiss_rankings(x, q[recall_idx].numpy(), c) for x in indexes)
        print(recall_table(top10, by_bound, by_whole, faiss_bound, faiss_whole, c)
              + f"  {faiss.extract_index_ivf(index).nprobe:6d}")
    del X, Xn, W

    rerank_file = work / "rerank.npy"
    synthetic_rerank_file(v, rerank_file, args.rerank_photos)
    vectors = np.load(rerank_file, mmap_mode="r")
    print(f"\nper-query latency over {len(timed)} val sentences (k=10), {args.synthetic:,} photos, merged FAISS "
          f"candidates (both indexes); re-ranking reads rows of a {args.rerank_photos:,}-photo memory-mapped file:")
    for c in (100, 200, 1000):
        parts = {"embed": [], "candidates": [], "re-rank": [], "total": []}
        for text in timed:
            t0 = time.perf_counter()
            s, _, _ = searcher.embed_query(text)
            t1 = time.perf_counter()
            rows = faiss_candidates(index, whole_index, np.asarray(s).sum(axis=0)[None], c)[0]
            t2 = time.perf_counter()
            rescore(vectors, np.unique(rows % len(vectors)), s, 10, "max")
            t3 = time.perf_counter()
            for key, t in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                parts[key].append(t)
        print(f"  C={c:4d}: " + ", ".join(f"{key} {pct(t, 50):.1f} ms (p90 {pct(t, 90):.1f})"
                                          for key, t in parts.items()))
    one_block, blocks = [], []
    for text in timed:
        s, _, _ = searcher.embed_query(text)
        rows = np.sort(np.random.default_rng(len(one_block)).choice(len(vectors), 1000, replace=False))
        for times, block in ((one_block, 1000), (blocks, RESCORE_BLOCK)):
            t0 = time.perf_counter()
            rescore(vectors, rows, s, 10, "max", block=block)
            times.append(time.perf_counter() - t0)
    print(f"re-ranking 1,000 random rows: in one block median {pct(one_block, 50):.1f} ms, in blocks of "
          f"{RESCORE_BLOCK} (search.rescore) {pct(blocks, 50):.1f} ms")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\npeak memory of this process (ru_maxrss): {peak:.1f} GiB")


def synthetic_rerank_file(v, path, n, seed=1):
    """A float16 file of ``n`` synthetic photos' region vectors (groups of 5 real regions)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, *v.shape[1:]))
    groups = v.view(len(v), 4, 5, -1)
    for a in range(0, n, 5_000):
        src = torch.randint(0, len(v), (min(5_000, n - a), 4), generator=g)
        out[a:a + len(src)] = groups[src, torch.arange(4)].reshape(len(src), 20, -1).half().numpy()
    out.flush()


#: the index types the choice was made from: (factory string, training points, nprobes)
COMPARED = (("IVF1024,Flat", 65_536, (64,)), ("IVF1024,SQ8", 65_536, (64,)),
            ("IVF1024,SQfp16", 65_536, (16, 64, 128)), ("IVF256,SQfp16", 16_384, (16, 32)))


def parse_spec(text: str) -> tuple[str, int, tuple[int, ...]]:
    """``--spec "IVF1024,PQ100=64,128"``: a FAISS factory string and the nprobes to time it at."""
    spec, _, nprobes = text.partition("=")
    nlist = int(spec.split(",")[0].removeprefix("IVF"))
    return spec, 64 * nlist, tuple(int(x) for x in nprobes.split(",")) if nprobes else (64,)


def compare(X, q, top10, recall_idx, c=1000, specs=None):
    """The FAISS index types the choice was made from (or ``specs``, without the HNSW graph), on
    the synthetic bounds: build time, bytes a photo (the serialised index over the photos),
    latency for C=1000 and recall of the exhaustive top-10 inside the candidates."""
    import faiss

    n, h = X.shape
    print(f"\nFAISS index types, {n:,} photos, C={c}, {len(q)} queries timed, recall over {len(recall_idx)}:")
    rng = np.random.default_rng(0)

    def timed_search(index, label, build, per_photo):
        times, ids = [], []
        for j in range(len(q)):
            t0 = time.perf_counter()
            _, found = index.search(q[j:j + 1].numpy(), c)
            times.append(time.perf_counter() - t0)
            ids.append(found[0])
        print(f"  {label:28s}: build {build:5.1f} s, {per_photo:7.1f} bytes a photo, p50 {pct(times, 50):5.1f} ms, "
              f"p90 {pct(times, 90):5.1f} ms, p99 {pct(times, 99):5.1f} ms, "
              f"recall {recall_at(top10, [ids[j] for j in recall_idx]):.3f}")

    for spec, train, nprobes in specs or COMPARED:
        start = time.perf_counter()
        index = faiss.index_factory(h, spec, faiss.METRIC_INNER_PRODUCT)
        index.train(X[np.sort(rng.choice(n, train, replace=False))])
        trained = time.perf_counter() - start
        for a in range(0, n, 100_000):
            index.add(X[a:a + 100_000])
        build = time.perf_counter() - start
        print(f"  {spec}: trained on {train:,} photos in {trained:.1f} s, built in {build:.1f} s", flush=True)
        per_photo = len(faiss.serialize_index(index)) / n
        for nprobe in nprobes:
            index.nprobe = nprobe
            timed_search(index, f"{spec} nprobe {nprobe}", build, per_photo)
        del index
    if specs:
        return
    start = time.perf_counter()
    index = faiss.IndexHNSWFlat(h, 32, faiss.METRIC_INNER_PRODUCT)
    for a in range(0, n, 100_000):
        index.add(X[a:a + 100_000])
    build = time.perf_counter() - start
    for ef in (c, 2 * c):  # a search returns at most efSearch results
        index.hnsw.efSearch = ef
        timed_search(index, f"HNSW32,Flat efSearch {ef}", build, len(faiss.serialize_index(index)) / n)


if __name__ == "__main__":
    main()
