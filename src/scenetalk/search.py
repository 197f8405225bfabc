"""Searching a folder of photos with a sentence, and describing a photo with sentences, with
the alignment model.

An index folder holds the feature store of the photos (global features and the 20 regions of
each), the region vectors v_i of every photo in the alignment model's space (eq. 1), two
vectors per photo for the candidate stage (below), for large collections a FAISS index of
each, optionally a sentence collection's word vectors (for ``describe``) and ``index.json``
(format version, the alignment checkpoint's id, the feature extractor's id, the photos). It
is built a block of photos at a time: the regions of a whole collection never are in memory
(100 GB in float32 at 1M photos).

Search is exact S_kl (eq. 8) with a cheap candidate stage. The word vectors s_t are ReLU
outputs, so s_t >= 0 and, for every photo k and any of its regions i,

    v_iᵀ (Σ_t s_t)  <=  S_kl = Σ_t max_i v_iᵀ s_t  <=  u_kᵀ (Σ_t s_t),   u_k = elementwise max_i v_i

an upper bound and, for region 0 (the whole image), a lower bound (it needs no s_t >= 0: each
word's best region scores at least what region 0 does), each a single dot product.
Candidates are the photos with the largest upper bound (half of them) and those with the
largest lower bound (``merge_candidates``): the upper bound takes each dimension's best of 20
regions, so it is loose, for some photos much more than for others, and good photos with a
loose bound rank low by it; the lower bound finds many of them. On Flickr8K (all 8,091
photos, 1,000 val queries, the shipped model), the share of the exhaustive top 10 among
C = 50 / 100 / 200 / 1,000 candidates is 0.503 / 0.646 / 0.776 / 0.960 by the upper bound
alone, 0.626 / 0.727 / 0.812 / 0.948 by the lower bound alone and 0.698 / 0.819 / 0.905 /
0.992 by both (``python benchmarks/bench_search_faiss.py --checkpoint
runs/alignment-hardest-flickr8k/best``; BENCHMARKS.md "Search: candidate stage"). The candidates'
exact scores are computed; and when the k-th best exact score is at least the best upper bound
left out, the answer is provably the exhaustive one (reported as ``exact``). For large
collections both rankings come from FAISS indexes, which are approximate (inverted files: they
scan only the lists nearest the query), so their results are ``exact`` only when every photo
was scored.

Re-ranking (``search(rerank=K)``; the CLI and ``scenetalk.load().search`` do it by default):
the best K photos by S_kl are ranked again by S_kl + λ·log P(query | photo), the query's
likelihood under the shipped m-RNN captioner given the photo's global features, which the
index holds anyway. The two models err differently: on Flickr8K test the right photo comes
first for 25.6% of sentences instead of 14.9% (K = 100, λ = 2, chosen on val;
``benchmarks/rerank_fusion.py``, BENCHMARKS.md "Re-ranking").
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scenetalk.alignment import load_alignment, sentence_tokens
from scenetalk.data.text import tokenize
from scenetalk.errors import DataError, ScenetalkError
from scenetalk.models.alignment import all_pairs_scores, image_sentence_scores
from scenetalk.io import atomic_path, atomic_write_text

INDEX_FILE, VECTORS_FILE, BOUNDS_FILE, FEATURES_DIR = "index.json", "regions_embedded.npy", "bounds.npy", "features"
WHOLE_FILE, FAISS_FILE, WHOLE_FAISS_FILE, SENTENCES_FILE = "whole.npy", "bounds.faiss", "whole.faiss", "sentences.npz"
#: Version of the index folder's layout; 2 added the whole-image vectors (``WHOLE_FILE``).
INDEX_FORMAT = 2

#: Collections of at least this many photos get FAISS candidate indexes. Below it the exact
#: bounds (two matrix-vector products and the merge: 0.47 ms per 1,000 photos on the 2-core
#: development machine, so under 50 ms) are fast enough and can prove exactness
#: (benchmarks/bench_search_faiss.py, BENCHMARKS.md "Search: candidate stage").
FAISS_MIN_PHOTOS = 100_000
#: Each FAISS index scans about this many photos per candidate asked for (and at least 1/16 of
#: its lists): on 1M synthetic photos, 64 (nprobe 66 of 1,024 lists for 1,000 candidates) put
#: 91% as much of the exhaustive top 10 among the candidates as the exact bound does, at ~8 ms
#: a query; twice as many lists reach the bound's recall at twice the time.
SCAN_PER_CANDIDATE = 64
#: Photos embedded and written at a time when an index is built: 256 photos' regions are 26 MB
#: in float32, where a whole collection's would be 100 GB at 1M photos.
BUILD_BLOCK = 256
#: Candidates are re-ranked this many photos at a time: the float32 copy of a block (2.5 MB at
#: h = 1000) is still in the CPU cache when it is multiplied; 1,000 candidates in one block
#: (80 MB) re-rank 2-3 times slower (BENCHMARKS.md "Search: candidate stage").
RESCORE_BLOCK = 32
#: Relative slack of the exactness proof: the bound and the exact scores are float32 sums in
#: different orders, so a proof by less than rounding would not be one.
PROOF_SLACK = 1e-5


#: Re-ranking (``Searcher.search(rerank=K)``): how many of the best photos by S_kl are ranked
#: again, and the weight λ of log P(query | photo) beside S_kl; both chosen on Flickr8K val
#: (text -> image R@1+5+10) with the shipped models (BENCHMARKS.md "Re-ranking").
RERANK_TOP = 100
RERANK_WEIGHT = 2.0


class SearchIndexError(ScenetalkError):
    """A search index that is missing, damaged, or made with another model."""


def checkpoint_id(folder: str | os.PathLike) -> str:
    """Short hash of a checkpoint's weights: an index remembers which model embedded it."""
    h = hashlib.sha256()
    with open(Path(folder) / "model.safetensors", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


@dataclass
class Hit:
    name: str
    score: float                          # S_kl, or S_kl + λ·log P(query | photo) when re-ranked
    log_likelihood: float | None = None   # log P(query | photo) by the captioner, when re-ranked
    alignment_score: float | None = None  # S_kl, when re-ranked


@dataclass
class SearchResult:
    query: str
    hits: list[Hit]
    unknown_words: list[str]
    exact: bool            # the candidate stage provably missed nothing
    candidates: int
    not_reranked: str | None = None  # why the default re-ranking (rerank=None) did not run


@dataclass
class SentenceHit:
    sentence: str
    score: float


@dataclass
class Description:
    image: str             # the photo's name in the index, or the path given
    hits: list[SentenceHit]


def build_candidate_index(bounds: np.ndarray, seed: int = 0):
    """A FAISS inverted-file index of one vector a photo (the bounds u_k, or the whole-image
    vectors v_0) for maximum inner product search, with vectors stored in float16. About
    sqrt(N) lists (1,024 at 1M photos). Chosen by measurement on 1M synthetic photos
    (BENCHMARKS.md): a flat scan takes ~250 ms a query; an HNSW graph took 6 minutes to build
    and, for inner products, found a third of what the inverted file finds; float16 lists find
    what float32 ones do in half the memory and scan faster than 8-bit ones."""
    import faiss

    n, h = bounds.shape
    # faiss wants >= 39 training points per list; fewer lists than that for tiny collections.
    nlist = max(1, min(2 ** round(math.log2(math.sqrt(n))), n // 39))
    index = faiss.index_factory(h, f"IVF{nlist},SQfp16", faiss.METRIC_INNER_PRODUCT)
    # k-means on 64 points per list (65,536 at 1M): training on all 1M takes minutes, for lists
    # that are no better for ranking.
    sample = np.sort(np.random.default_rng(seed).choice(n, min(n, 64 * nlist), replace=False))
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


def faiss_rankings(index, queries: np.ndarray, c: int) -> list[np.ndarray]:
    """For each query q (a row of ``queries``), the rows of about the ``c`` largest products
    xᵀq of the vectors x of a FAISS index, best first."""
    import faiss

    ivf = faiss.extract_index_ivf(index)
    ivf.nprobe = min(ivf.nlist, max(ivf.nlist // 16, math.ceil(ivf.nlist * SCAN_PER_CANDIDATE * c / index.ntotal)))
    # One query scans a few thousand vectors: OpenMP threads cost more than they save (1M photos,
    # C=1000: 29.7 ms on one thread, 103 ms on two on a busy 2-core machine; BENCHMARKS.md).
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1 if len(queries) == 1 else threads)
    try:
        _, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), c)
    finally:
        faiss.omp_set_num_threads(threads)
    return [row[row >= 0] for row in ids]  # -1: the lists scanned held fewer than c photos


def faiss_candidates(bound_index, whole_index, queries: np.ndarray, c: int) -> list[np.ndarray]:
    """For each query q = Σ_t s_t (a row of ``queries``), about ``c`` candidate rows, sorted,
    from the FAISS indexes of the bounds u and of the whole-image vectors v_0
    (``merge_candidates``)."""
    return [merge_candidates(b, w, c) for b, w in zip(faiss_rankings(bound_index, queries, c),
                                                      faiss_rankings(whole_index, queries, c))]


def bound_candidates(bounds: torch.Tensor, whole: torch.Tensor, query: torch.Tensor, c: int
                     ) -> tuple[np.ndarray, float]:
    """The ``c`` candidate rows (sorted, the order of the memory-mapped vectors) by the upper
    bounds uᵀquery and the lower bounds v_0ᵀquery (``merge_candidates``), and the largest upper
    bound of a photo left out (-inf when none is)."""
    top = (bounds @ query).topk(min(len(bounds), c + 1))
    by_bound = top.indices.numpy()
    rows = merge_candidates(by_bound[:c], (whole @ query).topk(min(len(whole), c)).indices.numpy(), c)
    # The candidates are c rows, so one of the c + 1 best bounds is left out, and the first one
    # is the largest bound of all photos left out.
    out = ~np.isin(by_bound, rows)
    left_out = float(top.values[int(np.argmax(out))]) if out.any() else float("-inf")
    return rows, left_out


def proves_exact(kth_score: float, left_out: float) -> bool:
    """Whether the k-th best exact score beats the best bound left out (-inf: none left out;
    +inf: unknown) by more than float32 rounding."""
    if math.isinf(left_out):
        return left_out < 0
    return kth_score >= left_out + PROOF_SLACK * abs(left_out)


def rescore(vectors: np.ndarray, rows: np.ndarray, s: torch.Tensor, k: int, score: str,
            block: int = RESCORE_BLOCK) -> tuple[torch.Tensor, np.ndarray]:
    """Exact S_kl of the photos ``rows`` of ``vectors`` (N, R, h; memory-mapped: only these
    rows are read) for the word vectors ``s`` (T, h): the ``k`` best scores and their rows."""
    mask = torch.ones(1, len(s), dtype=torch.bool)
    exact_scores = torch.cat([
        image_sentence_scores(torch.from_numpy(np.asarray(vectors[rows[a:a + block]])).float(), s[None], mask, score)[:, 0]
        for a in range(0, len(rows), block)])
    best, pos = exact_scores.topk(min(k, len(rows)))
    return best, rows[pos.numpy()]


class Searcher:
    """An alignment model plus an index built with it."""

    def __init__(self, index_dir: str | os.PathLike, checkpoint: str | os.PathLike):
        self.path = Path(index_dir)
        meta_path = self.path / INDEX_FILE
        if not meta_path.is_file():
            raise SearchIndexError(f"{self.path}: not a scenetalk index (no {INDEX_FILE}); build one with "
                              "`scenetalk index build DIR --out INDEX`")
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SearchIndexError(f"{meta_path}: damaged: {exc}") from None
        if self.meta.get("format") != INDEX_FORMAT:
            raise SearchIndexError(f"{self.path}: an index of an earlier version of scenetalk; rebuild it with "
                                   f"`scenetalk index build DIR --out {self.path}`")
        needed = [VECTORS_FILE, BOUNDS_FILE, WHOLE_FILE]
        if self.meta.get("candidate_index"):
            needed += [FAISS_FILE, WHOLE_FAISS_FILE]
        for f in needed:
            if not (self.path / f).is_file():
                raise SearchIndexError(f"{self.path}: missing {f}; rebuild the index")
        self.model, self.vocab, model_meta = load_alignment(checkpoint, expect_extractor_id=self.meta["extractor_id"])
        have = checkpoint_id(checkpoint)
        if have != self.meta["checkpoint_id"]:
            raise SearchIndexError(f"{self.path}: built with alignment model {self.meta['checkpoint_id']}, but the model "
                              f"given is {have}; rebuild the index with this model")
        self.names: list[str] = self.meta["names"]
        self.candidate_index = self.whole_index = None
        try:
            self.vectors = np.load(self.path / VECTORS_FILE, mmap_mode="r")  # (N, R, h) float16
            bounds = np.load(self.path / BOUNDS_FILE, mmap_mode="r")          # (N, h) float32
            whole = np.load(self.path / WHOLE_FILE, mmap_mode="r")            # (N, h) float32
        except (OSError, ValueError) as exc:
            raise SearchIndexError(f"{self.path}: damaged index arrays ({exc}); rebuild the index") from None
        if not (self.vectors.ndim == 3 and bounds.shape == whole.shape == (len(self.vectors), self.vectors.shape[2])):
            raise SearchIndexError(f"{self.path}: damaged index arrays (their shapes disagree); rebuild the index")
        if len(self.vectors) != len(self.names):
            raise SearchIndexError(f"{self.path}: index files disagree on the number of photos; rebuild the index")
        if self.meta.get("candidate_index"):
            self.candidate_index, self.whole_index = (self._read_faiss(f) for f in (FAISS_FILE, WHOLE_FAISS_FILE))
        # The FAISS indexes replace the bounds and whole-image vectors in memory (4 GB each at 1M photos).
        if self.candidate_index is None:
            self.bounds, self.whole = torch.from_numpy(np.array(bounds)), torch.from_numpy(np.array(whole))
        else:
            self.bounds = self.whole = None
        self._row_of: dict[str, int] | None = None
        self._extractor = None
        self._reranker = None

    def _read_faiss(self, file: str):
        import faiss

        try:
            index = faiss.read_index(str(self.path / file))
        except RuntimeError:
            raise SearchIndexError(f"{self.path / file}: damaged; rebuild the index") from None
        if index.ntotal != len(self.names):
            raise SearchIndexError(f"{self.path}: index files disagree on the number of photos; rebuild the index")
        return index

    @torch.no_grad()
    def embed_query(self, query: str) -> tuple[torch.Tensor, list[str]]:
        [tokens] = sentence_tokens([query], self.vocab, what="empty query:")
        unknown = [t for t in tokens if t not in self.vocab.stoi]
        if len(unknown) == len(tokens):
            raise ScenetalkError(f"none of the words of {query!r} is known to the model "
                                 f"(its vocabulary has {len(self.vocab)} words from its training sentences)")
        ids, _ = self.vocab.encode_batch([tokens], add_start=False, add_end=False)
        s, mask = self.model.embed_words(ids)
        return s[0][mask[0]], unknown

    def _load_reranker(self, captioner: str | os.PathLike | None):
        from scenetalk.api import shipped_captioner
        from scenetalk.captioner import load_generator_for
        from scenetalk.features.store import FeatureStore

        captioner = captioner or shipped_captioner()
        if self._reranker is None or self._reranker[0] != captioner:
            store = FeatureStore.open(self.path / FEATURES_DIR)
            model, vocab, _ = load_generator_for(captioner, store, one_vector=True)
            if not hasattr(model, "text_term"):
                raise ScenetalkError(f"{captioner}: re-ranking needs an m-RNN captioner (one whose recurrent layer "
                                     f"does not read the image), not {model.__class__.__name__}")
            self._reranker = (captioner, model, vocab, store)
        return self._reranker

    @torch.no_grad()
    def query_log_likelihoods(self, query: str, rows: np.ndarray, captioner: str | os.PathLike | None = None
                              ) -> torch.Tensor:
        """log P(query | photo) of the photos ``rows`` by an m-RNN captioner (by default the
        shipped one) reading their global features from the index, as m-RNN ranks images."""
        from scenetalk.generative_ranking import pair_log_likelihoods

        _, model, vocab, store = self._load_reranker(captioner)
        ids, _ = vocab.encode_batch([tokenize(query, vocab.language)])       # <start> words <end>
        features = np.asarray(store.array("global")[store.rows([self.names[int(r)] for r in rows])], dtype=np.float32)
        pairs = torch.stack([torch.arange(len(rows)), torch.zeros(len(rows), dtype=torch.long)], 1)
        return pair_log_likelihoods(model, torch.from_numpy(features), ids, pairs, vocab.pad_id)

    @torch.no_grad()
    def search(self, query: str, k: int = 10, candidates: int = 1000, rerank: int | bool | None = 0,
               rerank_weight: float = RERANK_WEIGHT, captioner: str | os.PathLike | None = None) -> SearchResult:
        """The ``k`` photos with the best S_kl among ``candidates`` (see the module). With
        ``rerank`` = K > 0 (True: ``RERANK_TOP``), the best K by S_kl are ranked again by
        S_kl + λ·log P(query | photo), the query's likelihood by an m-RNN captioner (Mao et al.
        §6; by default the shipped one), which puts the right photo first far more often on
        Flickr8K (BENCHMARKS.md "Re-ranking"). ``exact`` then says that those K are the
        exhaustive best K by S_kl. ``rerank=None`` re-ranks the best ``RERANK_TOP`` when the
        captioner reads this index's features, and otherwise says why not in ``not_reranked``."""
        s, unknown = self.embed_query(query)
        not_reranked = None
        if rerank is None:
            try:
                self._load_reranker(captioner)
                rerank = RERANK_TOP
            except ScenetalkError as exc:
                rerank, not_reranked = 0, str(exc)
        rerank = RERANK_TOP if rerank is True else int(rerank)
        n = len(self.names)
        c = min(n, max(k, candidates))
        q = s.sum(dim=0)  # Σ_t s_t: the bounds are u_kᵀq and v_0ᵀq
        if c == n:  # every photo is a candidate: no bound needed
            rows, left_out = np.arange(n), float("-inf")
        elif self.candidate_index is not None:  # approximate: the best bound left out is unknown
            [rows], left_out = faiss_candidates(self.candidate_index, self.whole_index, q[None].numpy(), c), float("inf")
        else:
            rows, left_out = bound_candidates(self.bounds, self.whole, q, c)
        best, best_rows = rescore(self.vectors, rows, s, max(k, rerank), self.model.config.score)
        # The bound holds for eq. 8 only (eq. 7 sums over regions instead of taking the max).
        proved = self.model.config.score == "max" and len(best) > 0 and proves_exact(float(best[-1]), left_out)
        if rerank and len(best):
            log_p = self.query_log_likelihoods(query, best_rows, captioner)
            fused = best + rerank_weight * log_p
            hits = [Hit(self.names[int(best_rows[i])], float(fused[i]), float(log_p[i]), float(best[i]))
                    for i in fused.argsort(descending=True)[:k].tolist()]
        else:
            hits = [Hit(self.names[int(r)], float(b)) for b, r in zip(best, best_rows)]
        return SearchResult(query, hits, unknown, len(rows) == n or proved, len(rows), not_reranked)

    @torch.no_grad()
    def image_vectors(self, image) -> tuple[str, torch.Tensor]:
        """The region vectors (1, R, h) of a photo of the index (by name) or of an image (a
        path or a PIL image, through the index's feature extractor), and its name."""
        from PIL import Image

        if self._row_of is None:
            self._row_of = {name: i for i, name in enumerate(self.names)}
        if not isinstance(image, Image.Image):
            name = os.fspath(image)
            if name in self._row_of:
                row = self._row_of[name]
                return name, torch.from_numpy(np.array(self.vectors[row:row + 1])).float()  # a copy: memmaps are read-only
            if not os.path.exists(name):
                raise ScenetalkError(f"{name}: neither a photo of the index {self.path} nor an image file")
        else:
            name = "<image>"
        from scenetalk.api import extractor_for
        from scenetalk.images import load_image

        if self._extractor is None:
            self._extractor = extractor_for(self.meta["extractor_id"], self.path, grid=False)
        regions = self._extractor.features([load_image(image)])["regions"]
        return name, self.model.embed_regions(torch.from_numpy(regions).float())

    def sentence_collection(self) -> "SentenceCollection":
        if not self.meta.get("sentences"):
            raise ScenetalkError(f"{self.path}: the index holds no sentences to describe photos with; pass a file "
                                 "of sentences, one per line (`--sentences FILE`), or store one in the index with "
                                 "`scenetalk index build DIR --out INDEX --sentences FILE`")
        return SentenceCollection.load(self.path / SENTENCES_FILE, self.model.config.embed_dim)

    @torch.no_grad()
    def describe(self, image, k: int = 5, sentences: Sequence[str] | None = None) -> Description:
        """The ``k`` sentences that best match a photo, by S_kl (eq. 8), every sentence scored:
        of ``sentences``, else of the collection stored in the index."""
        name, v = self.image_vectors(image)
        if sentences is None:
            collection = self.sentence_collection()
            texts, batches = collection.texts, collection.batches()
        else:
            texts = list(sentences)
            if not texts:
                raise ScenetalkError("no sentences to describe the photo with")
            batches = embed_sentences(self.model, self.vocab, texts)
        scores = torch.cat([all_pairs_scores(v, s, mask, self.model.config.score)[0] for s, mask in batches])
        best, pos = scores.topk(min(k, len(texts)))
        return Description(name, [SentenceHit(texts[int(p)], float(b)) for b, p in zip(best, pos)])


def read_sentence_file(path: str | os.PathLike, language: str = "en") -> tuple[list[str], int]:
    """The sentences of a text file, one per line, and the number of blank lines left out.
    Undecodable bytes and lines with no words are errors naming the file and line."""
    from scenetalk.data.readers import read_lines

    numbered = read_lines(path, skip_blank=False)
    texts = [(i, line) for i, line in numbered if line.strip()]
    for i, line in texts:
        if not tokenize(line, language):
            raise DataError(path, f"{line!r} has no words; give one sentence per line", record=f"line {i}")
    if not texts:
        raise DataError(path, "no sentences in this file; give one sentence per line")
    return [line.strip() for _, line in texts], len(numbered) - len(texts)


def embed_sentences(model, vocab, texts: Sequence[str], batch_size: int = 256
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Word vectors s_t (eq. 6) of ``texts``, batch by batch: (B, T, h) and the (B, T) mask."""
    tokens = sentence_tokens(texts, vocab)
    for start in range(0, len(tokens), batch_size):
        ids, _ = vocab.encode_batch(tokens[start:start + batch_size], add_start=False, add_end=False)
        with torch.no_grad():  # not around the yield: the caller would run without gradients too
            s, mask = model.embed_words(ids)
        yield s, mask


class SentenceCollection:
    """Sentences and their word vectors, stored sparse: s_t is a ReLU output and about 3% of
    its entries are non-zero (Flickr8K val, the trained model), so each word keeps only its
    non-zero dimensions (uint16) and values (float32, the model's exact output): ~190 bytes a
    word instead of 4,000."""

    KEYS = ("text", "text_bytes", "words_per_sentence", "nonzeros_per_word", "dim", "value")

    def __init__(self, texts: list[str], arrays: dict[str, np.ndarray], dim: int):
        self.texts, self.dim = texts, dim
        self.words_per_sentence = torch.from_numpy(arrays["words_per_sentence"].astype(np.int64))
        self.nonzeros_per_word = torch.from_numpy(arrays["nonzeros_per_word"].astype(np.int64))
        self.word_start = torch.cat([torch.zeros(1, dtype=torch.int64), self.words_per_sentence.cumsum(0)])
        self.nonzero_start = torch.cat([torch.zeros(1, dtype=torch.int64), self.nonzeros_per_word.cumsum(0)])
        self.dims = torch.from_numpy(arrays["dim"].astype(np.int64))
        self.values = torch.from_numpy(arrays["value"])

    @staticmethod
    def write(path: str | os.PathLike, texts: Sequence[str], batches: Iterator[tuple[torch.Tensor, torch.Tensor]]) -> None:
        parts: dict[str, list[np.ndarray]] = {k: [] for k in SentenceCollection.KEYS[2:]}
        for s, mask in batches:
            words = s[mask]                                    # (W, h): real words, in sentence order
            nz = words.nonzero()                               # row-major: word by word
            parts["words_per_sentence"].append(mask.sum(dim=1).numpy().astype(np.int32))
            parts["nonzeros_per_word"].append((words != 0).sum(dim=1).numpy().astype(np.int32))
            parts["dim"].append(nz[:, 1].numpy().astype(np.uint16))
            parts["value"].append(words[nz[:, 0], nz[:, 1]].numpy().astype(np.float32))
        encoded = [t.encode("utf-8") for t in texts]
        text = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, text=text, text_bytes=np.array([len(e) for e in encoded], dtype=np.int64),
                     **{k: np.concatenate(v) for k, v in parts.items()})

    @classmethod
    def load(cls, path: Path, dim: int) -> "SentenceCollection":
        damaged = f"{path}: damaged sentence collection; rebuild the index with --sentences FILE"
        try:
            with np.load(path) as data:
                arrays = {k: data[k] for k in cls.KEYS}
            data, ends = arrays["text"].tobytes(), np.cumsum(arrays["text_bytes"]).tolist()
            texts = [data[a:b].decode("utf-8") for a, b in zip([0] + ends[:-1], ends)]
        except (OSError, ValueError, KeyError, UnicodeDecodeError):
            raise SearchIndexError(damaged) from None
        collection = cls(texts, arrays, dim)
        if not (len(texts) == len(collection.words_per_sentence)
                and int(collection.word_start[-1]) == len(collection.nonzeros_per_word)
                and int(collection.nonzero_start[-1]) == len(collection.dims) == len(collection.values)
                and (len(collection.dims) == 0 or int(collection.dims.max()) < dim)):
            raise SearchIndexError(damaged)
        return collection

    def batches(self, batch_size: int = 256) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The word vectors as ``embed_sentences`` gives them: (B, T, h) and the (B, T) mask."""
        for a in range(0, len(self.texts), batch_size):
            b = min(a + batch_size, len(self.texts))
            w0, w1 = int(self.word_start[a]), int(self.word_start[b])
            z0, z1 = int(self.nonzero_start[w0]), int(self.nonzero_start[w1])
            words = torch.zeros(w1 - w0, self.dim)
            owner = torch.arange(w1 - w0).repeat_interleave(self.nonzeros_per_word[w0:w1])
            words[owner, self.dims[z0:z1]] = self.values[z0:z1]
            lengths = self.words_per_sentence[a:b]
            mask = torch.arange(int(lengths.max()))[None] < lengths[:, None]
            s = torch.zeros(b - a, mask.size(1), self.dim)
            s[mask] = words                                    # the order ``s[mask]`` was packed in
            yield s, mask


def build_index(images: list[tuple[str, str]], out: str | os.PathLike, checkpoint: str | os.PathLike,
                progress: bool = True, sentences: Sequence[str] | None = None,
                faiss_min: int = FAISS_MIN_PHOTOS, overwrite: bool = False) -> Path:
    """Features and regions of ``images`` ((name, path) pairs; resumable), then their region
    vectors in the checkpoint's space and the candidate vectors (``write_index``), streamed a
    block of photos at a time. The features are the ones the checkpoint was trained on
    (backbone and region crop size from its extractor id), without the grid search never
    reads; ``overwrite`` replaces features of another extractor or image list."""
    from scenetalk.api import extractor_for
    from scenetalk.checkpoint import read_meta
    from scenetalk.features.extract import extract
    from scenetalk.features.store import FeatureStore

    out = Path(out)
    extractor_id = read_meta(checkpoint).get("extractor_id") or ""
    extractor = extractor_for(extractor_id, checkpoint, grid=False)  # before hours of extraction
    result = extract(images, out / FEATURES_DIR, extractor=extractor, progress=progress, skip_bad=True,
                     overwrite=overwrite)
    store = FeatureStore.open(out / FEATURES_DIR)
    model, _, _ = load_alignment(checkpoint, expect_extractor_id=store.extractor_id)
    bad = set(result.bad)  # unreadable files: reported by extract, left out of the index
    keep = np.array([i for i, name in enumerate(store.names) if name not in bad], dtype=np.int64)
    if not len(keep):
        raise ScenetalkError("none of the images could be read; nothing to index")
    return write_index(out, region_vectors(model, store.regions, keep, progress=progress),
                       [store.names[i] for i in keep], checkpoint, store.extractor_id, result.bad,
                       sentences=sentences, faiss_min=faiss_min)


def region_vectors(model, regions: np.ndarray, rows: np.ndarray, block: int = BUILD_BLOCK,
                   progress: bool = False) -> Iterator[torch.Tensor]:
    """Region vectors v_i (eq. 1), (B, R, h), of the photos ``rows`` of ``regions`` (N, R, D;
    a feature store's memory map, read ``block`` rows at a time), block by block. With
    ``progress``, a bar: at 1M photos this is ~50 TFLOP, minutes on a laptop."""
    from scenetalk.progress import progress_bar

    with progress_bar(total=len(rows), disable=not progress, unit="photo", desc="embedding regions") as bar:
        for a in range(0, len(rows), block):
            x = torch.from_numpy(np.asarray(regions[rows[a:a + block]], dtype=np.float32))
            with torch.no_grad():  # not around the yield: the caller would run without gradients too
                v = model.embed_regions(x)
            yield v
            bar.update(len(x))


def write_index(out: str | os.PathLike, v: torch.Tensor | Iterable[torch.Tensor], names: list[str],
                checkpoint: str | os.PathLike, extractor_id: str, bad: Sequence[str] = (),
                sentences: Sequence[str] | None = None, faiss_min: int = FAISS_MIN_PHOTOS) -> Path:
    """The searchable part of an index from the region vectors of the photos ``names``: ``v``
    is an (N, R, h) tensor, or an iterable of (B, R, h) tensors, consecutive blocks of the
    photos in the order of ``names`` (only one block is in memory at a time). Written: the
    vectors in float16, their bounds u_k and whole-image vectors v_0, a FAISS index of each for
    ``faiss_min`` photos or more, the word vectors of ``sentences``, and ``index.json``."""
    out, n = Path(out), len(names)
    blocks = v.split(BUILD_BLOCK) if isinstance(v, torch.Tensor) else v
    meta = {"format": INDEX_FORMAT, "names": list(names), "extractor_id": extractor_id,
            "checkpoint_id": checkpoint_id(checkpoint), "checkpoint": str(checkpoint), "bad": list(bad)}
    # Each file is written under a temporary name, and all are renamed into place only once
    # every one is complete (an error removes them and leaves an earlier index as it was).
    with ExitStack() as files:
        tmp = {f: files.enter_context(atomic_path(out / f)) for f in (VECTORS_FILE, BOUNDS_FILE, WHOLE_FILE)}
        arrays: dict[str, np.memmap] = {}
        done = 0
        for block in blocks:
            v16 = block.detach().half()
            if done + len(v16) > n:
                raise ValueError(f"write_index: the blocks of region vectors hold more than the {n} photos named")
            if not arrays:
                _, r, h = v16.shape
                arrays = {VECTORS_FILE: np.lib.format.open_memmap(tmp[VECTORS_FILE], "w+", np.float16, (n, r, h)),
                          BOUNDS_FILE: np.lib.format.open_memmap(tmp[BOUNDS_FILE], "w+", np.float32, (n, h)),
                          WHOLE_FILE: np.lib.format.open_memmap(tmp[WHOLE_FILE], "w+", np.float32, (n, h))}
            rows = slice(done, done + len(v16))
            arrays[VECTORS_FILE][rows] = v16.numpy()
            # Both bounds of the vectors as stored (rounded to float16), so that they bound their scores.
            arrays[BOUNDS_FILE][rows] = v16.max(dim=1).values.float().numpy()
            arrays[WHOLE_FILE][rows] = v16[:, 0].float().numpy()
            done += len(v16)
        if done != n:
            raise ValueError(f"write_index: the blocks of region vectors hold {done} photos, but {n} are named")
        if not arrays:
            raise ValueError("write_index: no photos to index")
        for array in arrays.values():
            array.flush()  # on disk before the files are renamed into place
        if n >= faiss_min:
            import faiss

            for f, array in ((FAISS_FILE, arrays[BOUNDS_FILE]), (WHOLE_FAISS_FILE, arrays[WHOLE_FILE])):
                index = build_candidate_index(array)  # reads the memory map in slices
                faiss.write_index(index, files.enter_context(atomic_path(out / f)))
            meta["candidate_index"] = {"files": {"bound": FAISS_FILE, "whole": WHOLE_FAISS_FILE},
                                       "faiss": f"IVF{faiss.extract_index_ivf(index).nlist},SQfp16"}
    if n < faiss_min:
        for f in (FAISS_FILE, WHOLE_FAISS_FILE):  # from an earlier, larger build: they would not match these photos
            with suppress(FileNotFoundError):
                os.unlink(out / f)
    old = _old_meta(out)
    if sentences is not None:
        model, vocab, _ = load_alignment(checkpoint)
        SentenceCollection.write(out / SENTENCES_FILE, sentences, embed_sentences(model, vocab, sentences))
        meta["sentences"] = {"file": SENTENCES_FILE, "count": len(sentences)}
    elif old.get("sentences") and old.get("checkpoint_id") == meta["checkpoint_id"]:
        meta["sentences"] = old["sentences"]  # embedded by this same model: still valid
    else:
        with suppress(FileNotFoundError):
            os.unlink(out / SENTENCES_FILE)
    atomic_write_text(out / INDEX_FILE, json.dumps(meta, indent=1, ensure_ascii=False))
    return out


def _old_meta(out: Path) -> dict:
    try:
        return json.loads((out / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
