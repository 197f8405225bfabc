"""The candidate stage of search: which photos get their exact S_kl computed.

The word vectors s_t are ReLU outputs, so s_t >= 0 and, for every photo k and any of its
regions i,

    v_iᵀ (Σ_t s_t)  <=  S_kl = Σ_t max_i v_iᵀ s_t  <=  u_kᵀ (Σ_t s_t),   u_k = elementwise max_i v_i

an upper bound and, for region 0 (the whole image), a lower bound (it needs no s_t >= 0: each
word's best region scores at least what region 0 does), each a single dot product.
Candidates are the photos with the largest upper bound (half of them) and those with the
largest lower bound (``merge_candidates``): the upper bound takes each dimension's best of 20
regions, so it is loose, for some photos much more than for others, and good photos with a
loose bound rank low by it; the lower bound finds many of them (the recall of each, measured
on Flickr8K, is in BENCHMARKS.md "Search: candidate stage"). The candidates' exact scores are
computed (``rescore``); when the k-th best exact score is at least the best upper bound left
out, the answer is provably the exhaustive one (``proves_exact``). For large collections both
rankings come from FAISS inverted-file indexes, which are approximate (they scan only the
lists nearest the query), so their results are exact only when every photo was scored.
"""

from __future__ import annotations

import math

import numpy as np

from scenetalk.errors import ScenetalkError
from scenetalk.retrieval.similarity import alignment_scores, top_k

#: Each FAISS index scans about this many photos per candidate asked for (and at least 1/16 of
#: its lists): on 1M synthetic photos, 64 (nprobe 66 of 1,024 lists for 1,000 candidates) put
#: 91% as much of the exhaustive top 10 among the candidates as the exact bound does, at ~8 ms
#: a query; twice as many lists reach the bound's recall at twice the time.
SCAN_PER_CANDIDATE = 64


#: What the candidate lists store of each vector (``index build --faiss-codes``): "SQfp16", its
#: float16 values (2 bytes a dimension: 2,012 bytes a photo at h = 1000), or "PQm", m bytes a
#: photo by product quantisation (m sub-vectors of h/m dimensions, one byte each). On 1M
#: synthetic photos PQ100 keeps 92% of SQfp16's candidate recall in 1/18 of the memory when it
#: scans twice as many lists, at the same latency (BENCHMARKS.md "Search: candidate stage").
DEFAULT_FAISS_CODES = "SQfp16"


#: PQ's one-byte codes are 256 k-means centroids a sub-vector, which FAISS trains on at least
#: 39 points each.
PQ_MIN_PHOTOS = 39 * 256


def check_faiss_codes(codes: str, dim: int) -> str:
    """``codes`` if the candidate lists can store vectors of ``dim`` dimensions so, else a
    ``ScenetalkError`` naming --faiss-codes."""
    m = codes[2:] if codes.startswith("PQ") else ""
    if codes == "SQfp16" or (m.isdigit() and m[0] != "0" and dim % int(m) == 0):
        return codes
    divisors = [d for d in (10, 20, 25, 50, 100, 125, 200, 250) if dim % d == 0] or [1]
    raise ScenetalkError(f"faiss codes (--faiss-codes) {codes!r}: give SQfp16 (float16 values) or PQm, m bytes a "
                         f"photo, with m dividing the model's {dim} dimensions (such as PQ{divisors[len(divisors) // 2]})")


def scan_per_candidate(codes: str) -> int:
    """Photos a FAISS index of these codes scans per candidate asked for: PQ's approximate
    distances rank worse, so it scans twice as many lists (measured, see DEFAULT_FAISS_CODES)."""
    return SCAN_PER_CANDIDATE * (2 if codes.startswith("PQ") else 1)


#: Candidates are re-ranked this many photos at a time: the float32 copy of a block (2.5 MB at
#: h = 1000) is still in the CPU cache when it is multiplied; 1,000 candidates in one block
#: (80 MB) re-rank 2-3 times slower (BENCHMARKS.md "Search: candidate stage").
RESCORE_BLOCK = 32


#: Relative slack of the exactness proof: the bound and the exact scores are float32 sums in
#: different orders, so a proof by less than rounding would not be one.
PROOF_SLACK = 1e-5


def build_candidate_index(bounds: np.ndarray, seed: int = 0, codes: str = DEFAULT_FAISS_CODES):
    """A FAISS inverted-file index of one vector a photo (the bounds u_k, or the whole-image
    vectors v_0) for maximum inner product search, with vectors stored as ``codes``
    (``DEFAULT_FAISS_CODES``: float16). About sqrt(N) lists (1,024 at 1M photos). Chosen by
    measurement on 1M synthetic photos (BENCHMARKS.md): a flat scan takes ~250 ms a query; an
    HNSW graph took 6 minutes to build and, for inner products, found a third of what the
    inverted file finds; float16 lists find what float32 ones do in half the memory and scan
    faster than 8-bit ones."""
    import faiss

    n, h = bounds.shape
    check_faiss_codes(codes, h)
    if codes.startswith("PQ") and n < PQ_MIN_PHOTOS:
        raise ScenetalkError(f"faiss codes (--faiss-codes) {codes}: product quantisation is trained on at least "
                             f"{PQ_MIN_PHOTOS:,} photos and this index has {n:,}; use SQfp16")
    # faiss wants >= 39 training points per list; fewer lists than that for tiny collections.
    nlist = max(1, min(2 ** round(math.log2(math.sqrt(n))), n // 39))
    index = faiss.index_factory(h, f"IVF{nlist},{codes}", faiss.METRIC_INNER_PRODUCT)
    # k-means on 64 points per list (65,536 at 1M): training on all 1M takes minutes, for lists
    # that are no better for ranking (PQ's centroids want PQ_MIN_PHOTOS at least).
    want = max(64 * nlist, PQ_MIN_PHOTOS if codes.startswith("PQ") else 0)
    sample = np.sort(np.random.default_rng(seed).choice(n, min(n, want), replace=False))
    index.train(np.ascontiguousarray(bounds[sample], dtype=np.float32))
    for start in range(0, n, 100_000):  # in slices: a memory-mapped array is never copied whole
        index.add(np.ascontiguousarray(bounds[start:start + 100_000], dtype=np.float32))
    return index


def merge_candidates(by_bound: np.ndarray, by_whole: np.ndarray, c: int) -> np.ndarray:
    """At most ``c`` candidates from two rankings of rows (best first, no repeats): the first
    ceil(c/2) by the upper bound, then the whole-image ranking's best not yet taken, then,
    when it runs out, the upper bound's next ones. Sorted: re-ranking reads them in order."""
    first = by_bound[:math.ceil(c / 2)]
    whole = by_whole[~np.isin(by_whole, first)][:c - len(first)]
    taken = np.concatenate([first, whole])
    rest = by_bound[len(first):]
    rest = rest[~np.isin(rest, taken)][:c - len(taken)]
    return np.sort(np.concatenate([taken, rest]).astype(np.int64))


def faiss_rankings(index, queries: np.ndarray, c: int, scan: int = SCAN_PER_CANDIDATE) -> list[np.ndarray]:
    """For each query q (a row of ``queries``), the rows of about the ``c`` largest products
    xᵀq of the vectors x of a FAISS index, best first, scanning about ``scan`` photos per
    candidate (``scan_per_candidate``)."""
    import faiss

    ivf = faiss.extract_index_ivf(index)
    ivf.nprobe = min(ivf.nlist, max(ivf.nlist // 16, math.ceil(ivf.nlist * scan * c / index.ntotal)))
    # One query scans a few thousand vectors: OpenMP threads cost more than they save (1M photos,
    # C=1000: 29.7 ms on one thread, 103 ms on two on a busy 2-core machine; BENCHMARKS.md).
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1 if len(queries) == 1 else threads)
    try:
        _, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), c)
    finally:
        faiss.omp_set_num_threads(threads)
    return [row[row >= 0] for row in ids]  # -1: the lists scanned held fewer than c photos


def faiss_candidates(bound_index, whole_index, queries: np.ndarray, c: int, scan: int = SCAN_PER_CANDIDATE
                     ) -> list[np.ndarray]:
    """For each query q = Σ_t s_t (a row of ``queries``), about ``c`` candidate rows, sorted,
    from the FAISS indexes of the bounds u and of the whole-image vectors v_0
    (``merge_candidates``)."""
    return [merge_candidates(b, w, c) for b, w in zip(faiss_rankings(bound_index, queries, c, scan),
                                                      faiss_rankings(whole_index, queries, c, scan))]


def bound_candidates(bounds: np.ndarray, whole: np.ndarray, query: np.ndarray, c: int
                     ) -> tuple[np.ndarray, float]:
    """The ``c`` candidate rows (sorted, the order of the memory-mapped vectors) by the upper
    bounds uᵀquery and the lower bounds v_0ᵀquery (``merge_candidates``), and the largest upper
    bound of a photo left out (-inf when none is)."""
    top_values, by_bound = top_k(bounds @ query, c + 1)
    rows = merge_candidates(by_bound[:c], top_k(whole @ query, c)[1], c)
    # The candidates are c rows, so one of the c + 1 best bounds is left out, and the first one
    # is the largest bound of all photos left out.
    out = ~np.isin(by_bound, rows)
    left_out = float(top_values[int(np.argmax(out))]) if out.any() else float("-inf")
    return rows, left_out


def proves_exact(kth_score: float, left_out: float) -> bool:
    """Whether the k-th best exact score beats the best bound left out (-inf: none left out;
    +inf: unknown) by more than float32 rounding."""
    if math.isinf(left_out):
        return left_out < 0
    return kth_score >= left_out + PROOF_SLACK * abs(left_out)


def rescore(vectors: np.ndarray, rows: np.ndarray, s: np.ndarray, k: int, score: str,
            block: int = RESCORE_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Exact S_kl of the photos ``rows`` of ``vectors`` (N, R, h; memory-mapped: only these
    rows are read) for the word vectors ``s`` (T, h): the ``k`` best scores and their rows."""
    mask = np.ones((1, len(s)), dtype=bool)
    exact_scores = np.concatenate([np.zeros(0, np.float32)] + [
        alignment_scores(np.asarray(vectors[rows[a:a + block]], dtype=np.float32), s[None], mask, score)[:, 0]
        for a in range(0, len(rows), block)])
    best, pos = top_k(exact_scores, k)
    return best, rows[pos]
