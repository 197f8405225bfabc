"""Searching an index's photos with a sentence, and describing a photo with sentences.

``Searcher`` opens an index (``retrieval.index``) with the alignment model it was built with.
Search is exact S_kl (eq. 8) over the photos a cheap candidate stage picks
(``retrieval.candidates``), reported ``exact`` when the bounds prove nothing better was left
out. Re-ranking (``search(rerank=K)``; the CLI and ``scenetalk.load().search`` do it by
default): the best K photos by S_kl are ranked again by S_kl + λ·log P(query | photo), the
query's likelihood under the m-RNN captioner given the photo's global features, which the
index holds anyway; the two models err differently (K and λ chosen on Flickr8K val,
BENCHMARKS.md "Re-ranking"). ``describe`` ranks a collection of sentences for one photo;
``best_regions`` finds the regions of the index's photos that best match a text snippet
(region retrieval, Karpathy & Fei-Fei Figures 9-10).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scenetalk.checkpoint import checkpoint_id, load_alignment_engine
from scenetalk.data.text import sentence_tokens, untagged
from scenetalk.errors import ScenetalkError, SearchIndexError
from scenetalk.features.store import first_non_finite
from scenetalk.retrieval.candidates import SCAN_PER_CANDIDATE, bound_candidates, faiss_candidates, proves_exact, rescore
from scenetalk.retrieval.hubness import HUB_MEANING, HUB_NEIGHBOURS, HUB_WEIGHT, bank_id, hubness_of, read_hub_photos
from scenetalk.retrieval.index import (
    BOUNDS_FILE,
    FAISS_FILE,
    FEATURES_DIR,
    INDEX_FILE,
    SENTENCES_FILE,
    VECTORS_FILE,
    WHOLE_FAISS_FILE,
    WHOLE_FILE,
    SentenceCollection,
    embed_sentences,
    part_metas,
    read_index_meta,
    read_sentence_file,
    unknown_words,
)
from scenetalk.retrieval.sentence_ranking import (
    DESCRIBE_RERANK_TOP,
    DESCRIBE_RERANK_WEIGHT,
    SENTENCE_MATCH_MEANING,
    SENTENCE_RERANKED_MEANING,
    log_priors,
    log_ratios,
    sentence_languages,
)
from scenetalk.retrieval.similarity import alignment_scores, top_k
from scenetalk.retrieval.unseen_words import PlacedWord, UnseenWords

#: Re-ranking (``Searcher.search(rerank=K)``): how many of the best photos by S_kl are ranked
#: again, and the weight λ of log P(query | photo) beside S_kl; both chosen on Flickr8K val
#: (text -> image R@1+5+10) with the shipped models (BENCHMARKS.md "Re-ranking").
RERANK_TOP = 100


RERANK_WEIGHT = 2.0


#: What a search's scores mean, in the user's words (``SearchResult.scores``): S_kl (eq. 8), and
#: when re-ranked S_kl + λ·log P(query | photo).
MATCH_SCORE_MEANING = ("match score, how well the photo's regions fit the sentence's words (each word on the "
                       "region it fits best, summed; higher is better); not re-ranked")


RERANKED_MEANING = ("match score + {weight:g} × the captioner's log-likelihood of the sentence given the photo, "
                    "higher is better; re-ranked: the best {top} photos by match score ordered again by it")


#: ``describe`` on an index without sentences ranks the captioner's this many best captions
#: (beam search of this width), and says so: ``Description.sentences`` is ``GENERATED``.
DESCRIBE_GENERATED = 20
GENERATED = "generated"
#: sentence priors of given sentences kept by a ``Searcher``, per captioner (a float each; an
#: index's own sentences have theirs stored)
MAX_KEPT_PRIORS = 100_000


#: Region vectors (photos x regions x h) of an index kept in memory as float32 when it opens:
#: 2^26 values are 256 MB, an index of about 3,300 photos at h = 1,000 (larger ones are read
#: from their memory map, a query's candidates at a time).
IN_MEMORY_VALUES = 2 ** 26


#: Index photos scored per step by ``best_regions``, so a large memory-mapped index is read in pieces.
REGION_CHUNK = 4096


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
    reranked: int = 0      # K of rerank=K: the best max(k, K) by match score were ordered again (0: not re-ranked)
    scores: str = MATCH_SCORE_MEANING  # what the hits' scores mean, in words
    # words the model never saw, placed near known words through pretrained word vectors
    placed_words: list[PlacedWord] = field(default_factory=list)
    language: str = "en"   # the language the query was read in (given, or detected by a model of several)


@dataclass
class SentenceHit:
    sentence: str
    score: float
    # re-ranked: (log P(s | I) − log P(s)) / words by the captioner, and S_kl alone (``score`` is fused)
    log_ratio: float | None = None
    alignment_score: float | None = None
    # corrected for hubness: the sentence's mean S_kl over the bank photos it fits best (``retrieval.hubness``)
    hubness: float | None = None


@dataclass
class Description:
    image: str             # the photo's name in the index, or the path given
    hits: list[SentenceHit]
    # where the sentences came from: "index", the file read, "given" (a list), or GENERATED (the
    # captioner's best captions of the photo, when the index holds no sentences)
    sentences: str = "index"
    blank_lines: int = 0   # blank lines of that file, left out
    # The words the model does not know (read as <unk>) of the hits that have some, by sentence.
    unknown_words: dict[str, list[str]] = field(default_factory=dict)
    not_reranked: str | None = None  # why the default re-ranking (rerank=None) did not run
    reranked: int = 0      # K: the best max(k, K) sentences by match score were ordered again (0: not re-ranked)
    scores: str = SENTENCE_MATCH_MEANING  # what the hits' scores mean, in words
    hub_weight: float = 0.0  # α of the hubness correction applied (0: none; ``retrieval.hubness``)


@dataclass
class RegionHit:
    image: str             # the photo's name in the index
    region: int            # which of its regions (0: the whole photo)
    class_name: str        # what the detector took the region for
    box: list[float]       # (x0, y0, x1, y1), fractions of the photo's width and height
    score: float           # match score of the snippet and this region: Σ_t v_iᵀ s_t


@dataclass
class SnippetRegions:
    snippet: str
    regions: list[RegionHit]  # best first
    unknown_words: list[str]  # words of the snippet the model does not know, left out


@dataclass
class RegionRetrieval:
    index: str             # the index folder searched
    photos: int            # how many photos it holds
    folder: str | None     # the folder its photos are in, when the index records it
    snippets: list[SnippetRegions]


def best_regions(vectors: np.ndarray, query: np.ndarray, top: int, include_whole: bool = False,
                 per_photo: int = 1) -> list[tuple[int, int, float]]:
    """The ``top`` best (photo row, region, score) of ``vectors`` (N, R, h) for the summed word
    vectors ``query`` (h,): Σ_t v_iᵀ s_t = v_iᵀ Σ_t s_t, one matrix-vector product. Region 0
    (the whole photo) is left out unless ``include_whole``; a photo gives at most ``per_photo``."""
    scores = np.concatenate([np.asarray(vectors[i:i + REGION_CHUNK], dtype=np.float32) @ query
                             for i in range(0, len(vectors), REGION_CHUNK)])          # (N, R)
    first = 0 if include_whole else 1
    scores = scores[:, first:]
    flat = scores.ravel()
    # Among the best top * R regions there are at least `top` photos (a photo has R regions),
    # so the per-photo limit can be met without sorting every region.
    keep = min(len(flat), top * scores.shape[1] * max(1, per_photo))
    candidates = np.argpartition(-flat, keep - 1)[:keep]
    out, taken = [], {}
    for j in candidates[np.argsort(-flat[candidates], kind="stable")]:
        row, region = divmod(int(j), scores.shape[1])
        if taken.get(row, 0) >= per_photo:
            continue
        taken[row] = taken.get(row, 0) + 1
        out.append((row, region + first, float(flat[j])))
        if len(out) == top:
            break
    return out


def top_rows(found: Sequence[tuple[np.ndarray, np.ndarray, int, float]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best scores and their rows of several parts' best (``IndexPart.best``), best first."""
    scores = np.concatenate([f[0] for f in found])
    rows = np.concatenate([f[1] for f in found])
    best, pos = top_k(scores, min(k, len(scores)))
    return best, rows[pos]


class IndexPart:
    """The photos of one ``index build`` or ``index add`` (``retrieval.index.PARTS_DIR``): their
    region vectors (memory-mapped float16, or float32 in memory when small), the candidate
    stage's bounds and whole-image vectors (or their FAISS indexes) and their feature store.
    ``start``: the row of its first photo among all the index's photos."""

    def __init__(self, path: Path, meta: dict, embed_dim: int, start: int = 0):
        self.path, self.meta, self.start = path, meta, start
        self.names: list[str] = meta["names"]
        needed = [VECTORS_FILE, BOUNDS_FILE, WHOLE_FILE]
        if meta.get("candidate_index"):
            needed += [FAISS_FILE, WHOLE_FAISS_FILE]
        for f in needed:
            if not (path / f).is_file():
                raise SearchIndexError(f"{path}: missing {f}; rebuild the index")
        try:
            self.vectors = np.load(path / VECTORS_FILE, mmap_mode="r")  # (N, R, h) float16
            bounds = np.load(path / BOUNDS_FILE, mmap_mode="r")          # (N, h) float32
            whole = np.load(path / WHOLE_FILE, mmap_mode="r")            # (N, h) float32
        except (OSError, ValueError, EOFError) as exc:
            raise SearchIndexError(f"{path}: damaged index arrays ({' '.join(str(exc).split())}); "
                                   "rebuild the index") from None
        if not (self.vectors.ndim == 3 and bounds.shape == whole.shape == (len(self.vectors), self.vectors.shape[2])
                and all(np.issubdtype(a.dtype, np.floating) for a in (self.vectors, bounds, whole))):
            raise SearchIndexError(f"{path}: damaged index arrays (their shapes disagree); rebuild the index")
        if len(self.vectors) != len(self.names):
            raise SearchIndexError(f"{path}: index files disagree on the number of photos; rebuild the index")
        if self.vectors.shape[2] != embed_dim:
            raise SearchIndexError(f"{path}: damaged index arrays (vectors of {self.vectors.shape[2]} "
                                   f"dimensions for a model of {embed_dim}); rebuild the index")
        # Once at open, the region vectors a block at a time: NaN or garbled bytes would otherwise
        # be searched silently, every score NaN.
        for file, array in ((BOUNDS_FILE, bounds), (WHOLE_FILE, whole), (VECTORS_FILE, self.vectors)):
            row = first_non_finite(array)
            if row is not None:
                raise SearchIndexError(f"{path / file}: damaged: non-finite values (NaN or inf) for photo "
                                       f"{row}; rebuild the index")
        self.candidate_index = self.whole_index = None
        self.scan = SCAN_PER_CANDIDATE
        if meta.get("candidate_index"):
            self.candidate_index, self.whole_index = (self._read_faiss(f) for f in (FAISS_FILE, WHOLE_FAISS_FILE))
            scan = meta["candidate_index"].get("scan_per_candidate", SCAN_PER_CANDIDATE)
            self.scan = scan if type(scan) is int and scan > 0 else SCAN_PER_CANDIDATE
        # A small index's region vectors in float32, in memory: NumPy turns float16 into float32
        # at ~0.5 GB/s, which would be most of a query's time; a large one is read from its
        # memory map, only the candidates' rows.
        self.vectors32 = (np.array(self.vectors, dtype=np.float32) if self.vectors.size <= IN_MEMORY_VALUES
                          else None)
        # The FAISS indexes replace the bounds and whole-image vectors in memory (4 GB each at 1M photos).
        if self.candidate_index is None:
            self.bounds, self.whole = np.array(bounds, dtype=np.float32), np.array(whole, dtype=np.float32)
        else:
            self.bounds = self.whole = None
        self._store = None

    def _read_faiss(self, file: str):
        import faiss

        try:
            index = faiss.read_index(str(self.path / file))
        except RuntimeError:
            raise SearchIndexError(f"{self.path / file}: damaged; rebuild the index") from None
        if index.ntotal != len(self.names):
            raise SearchIndexError(f"{self.path}: index files disagree on the number of photos; rebuild the index")
        return index

    @property
    def scored(self) -> np.ndarray:
        """The region vectors search reads: float32 in memory, or the memory map."""
        return self.vectors if self.vectors32 is None else self.vectors32

    @property
    def store(self):
        """The part's feature store (global features, boxes and classes of its photos)."""
        if self._store is None:
            from scenetalk.features.store import FeatureStore

            self._store = FeatureStore.open(self.path / FEATURES_DIR)
        return self._store

    def best(self, s: np.ndarray, q: np.ndarray, k: int, candidates: int, score: str
             ) -> tuple[np.ndarray, np.ndarray, int, float]:
        """The ``k`` best exact S_kl of the part's photos among ``candidates`` (see the module)
        for the word vectors ``s`` (q = Σ_t s_t): their scores, their rows (of the whole
        index), how many photos were scored, and the largest upper bound of a photo left out
        (-inf: none; +inf: unknown, FAISS is approximate)."""
        n = len(self.names)
        c = min(n, max(k, candidates))
        if c == n:  # every photo is a candidate: no bound needed
            rows, left_out = np.arange(n), float("-inf")
        elif self.candidate_index is not None:
            [rows] = faiss_candidates(self.candidate_index, self.whole_index, q[None], c, self.scan)
            left_out = float("inf")
        else:
            rows, left_out = bound_candidates(self.bounds, self.whole, q, c)
        best, best_rows = rescore(self.scored, rows, s, k, score)
        return best, best_rows + self.start, len(rows), left_out


class Searcher:
    """An alignment model plus an index built with it. What it loads on first use (the
    feature store, the captioner that re-ranks, the image feature extractor, the stored
    sentences) it keeps: keep the Searcher (``scenetalk.load().open_index``) to answer fast.
    ``generators``: a dict of loaded re-ranking captioners to share with other Searchers.
    An index with photos added (``index add``) is several ``IndexPart``s, searched together:
    rows and ``names`` run over all of them, the first part's photos first."""

    def __init__(self, index_dir: str | os.PathLike, checkpoint: str | os.PathLike, generators: dict | None = None):
        self.path = Path(index_dir)
        meta_path = self.path / INDEX_FILE
        if not meta_path.is_file():
            raise SearchIndexError(f"{self.path}: not a scenetalk index (no {INDEX_FILE}); build one with "
                              "`scenetalk index build DIR --out INDEX`")
        self.meta = read_index_meta(meta_path)
        self.checkpoint = Path(checkpoint)
        self.model, self.vocab, model_meta = load_alignment_engine(checkpoint,
                                                                   expect_extractor_id=self.meta["extractor_id"])
        self.score_kind = model_meta["model"].get("score", "max")
        self.embed_dim = int(model_meta["model"].get("embed_dim", 0))
        have = checkpoint_id(checkpoint)
        if have != self.meta["checkpoint_id"]:
            raise SearchIndexError(f"{self.path}: built with alignment model {self.meta['checkpoint_id']}, but the model "
                              f"given is {have}; rebuild the index with this model")
        metas = part_metas(self.path, self.meta)   # every part is there, before any is read
        self.parts = [IndexPart(self.path, self.meta, self.embed_dim)]
        for folder, meta in zip(self.meta.get("parts") or [], metas):
            if (meta["checkpoint_id"], meta["extractor_id"]) != (self.meta["checkpoint_id"], self.meta["extractor_id"]):
                raise SearchIndexError(f"{self.path / folder}: a part of the index made with another model or "
                                       "extractor; rebuild the index")
            start = self.parts[-1].start + len(self.parts[-1].names)
            self.parts.append(IndexPart(self.path / folder, meta, self.embed_dim, start=start))
        #: every photo of the index, by row: its parts' photos in order
        self.names: list[str] = [name for part in self.parts for name in part.names]
        self._starts = np.array([part.start for part in self.parts])
        self._row_of: dict[str, int] | None = None
        if len(self.parts) > 1 and len(set(self.names)) != len(self.names):
            raise SearchIndexError(f"{self.path}: damaged: a photo is in two parts of the index; rebuild the index")
        self._extractor = None
        self._last_global: tuple[str, np.ndarray] | None = None  # (name, global features) of the last image file read
        self._priors: dict[str, dict[str, float]] = {}   # captioner id -> sentence -> log P(s), of sentences given
        self._unseen: UnseenWords | None = None
        # (captioner, language) -> (model, vocab), or why it cannot re-rank
        self._rerankers: dict[tuple[str, str], tuple | ScenetalkError] = {}
        self._generators = {} if generators is None else generators
        self._sentences: tuple[tuple, SentenceCollection] | None = None  # (the file's stat, the collection)
        self._bank: np.ndarray | None = None   # the model's bank of photos, embedded (``retrieval.hubness``)

    @property
    def vectors(self) -> np.ndarray:
        """The region vectors (N, R, h) of every photo as stored (float16): the memory map of a
        one-part index, a copy of all parts' otherwise."""
        if len(self.parts) == 1:
            return self.parts[0].vectors
        return np.concatenate([part.vectors for part in self.parts])

    @property
    def candidate_index(self):
        """The FAISS index of the bounds of the first part, None when it has none (exact bounds)."""
        return self.parts[0].candidate_index

    def part_of(self, row: int) -> tuple[IndexPart, int]:
        """The part holding the photo of row ``row`` (of the whole index), and its row there."""
        part = self.parts[int(np.searchsorted(self._starts, row, side="right")) - 1]
        return part, int(row) - part.start

    @property
    def unseen_words(self) -> UnseenWords:
        """Places the query words the model never saw (``retrieval.unseen_words``)."""
        if self._unseen is None:
            self._unseen = UnseenWords(self.model.word_table, self.vocab)
        return self._unseen

    def embed_query(self, query: str, lang: str | None = None) -> tuple[np.ndarray, list[str], list[PlacedWord]]:
        """The query's word vectors s_t (eq. 6), the words left out (unknown to every source) and
        the words the model never saw that were placed through pretrained word vectors. ``lang``:
        the query's language, for a model of several (detected when None)."""
        [tokens] = sentence_tokens([query], self.vocab, what="empty query:", language=lang)
        new = sorted({t for t in tokens if t not in self.vocab.stoi})
        placed = {p.word: p for p in self.unseen_words.place(new) if p.placed} if new else {}
        unknown = [t for t in tokens if t not in self.vocab.stoi and t not in placed]
        if len(unknown) == len(tokens):
            raise ScenetalkError(f"none of the words of {query!r} is known to the model "
                                 f"(its vocabulary has {len(self.vocab)} words from its training sentences), "
                                 "nor near enough to one in pretrained word vectors")
        # a word no source knows reads as <unk>, as in describe and score
        ids, _ = self.vocab.encode_batch([tokens], add_start=False, add_end=False)
        x = self.model.word_table[ids]                                       # eq. 2
        for t, token in enumerate(tokens):
            if token in placed:
                x[0, t] = placed[token].vector
        s = self.model.embed_word_vectors(x, ids != 0, self.model.sentence_languages(ids))
        shown = [dataclasses.replace(placed[w], word=untagged(w)) for w in new if w in placed]
        return s[0], [untagged(w) for w in unknown], shown

    @property
    def feature_store(self):
        """The feature store of the index's first part (every part's was made by the same
        extractor; ``part_of(row)[0].store`` holds a photo's)."""
        return self.parts[0].store

    def photo_features(self, rows: Sequence[int] | np.ndarray, kind: str = "global") -> np.ndarray:
        """The ``kind`` features of the photos ``rows`` (of the whole index) from their parts'
        feature stores, float32, in the order of ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        which = np.searchsorted(self._starts, rows, side="right") - 1     # each row's part
        out = None
        for p in np.unique(which).tolist():   # one read of each part's store, as one part's was
            part, at = self.parts[p], np.flatnonzero(which == p)
            store = part.store
            x = np.asarray(store.array(kind)[store.rows([part.names[r] for r in (rows[at] - part.start).tolist()])],
                           dtype=np.float32)
            if out is None:
                out = np.zeros((len(rows), *x.shape[1:]), np.float32)
            out[at] = x
        return out if out is not None else np.zeros((0,), np.float32)

    def query_language(self, query: str, lang: str | None = None) -> str:
        """The language a query is read in: ``lang`` if given (checked against the model's),
        the model's one language, or, for a model of several, ``detect_language``'s guess."""
        from scenetalk.data.text import detect_language

        languages = self.vocab.languages
        if lang is not None:
            if lang not in languages:
                raise ScenetalkError(f"lang (--lang) {lang!r}: this index's model reads {', '.join(languages)}")
            return lang
        return languages[0] if len(languages) == 1 else detect_language(query, languages)

    def _load_reranker(self, captioner: str | os.PathLike | None, language: str = "en"):
        """The captioner (model, vocabulary) that re-ranks queries in ``language``, loaded once
        (by default the shipped captioner of that language): one that reads one global vector per
        photo, as the index holds, and writes that language; a captioner that cannot re-rank this
        index is refused again without being loaded again."""
        from scenetalk.captioning.captioner import load_generator_for
        from scenetalk.weights import shipped_reranker

        try:
            key = os.fspath(captioner or shipped_reranker(language))
        except ScenetalkError as exc:  # no shipped captioner of this language: not re-ranked, and why
            key = f"<no shipped captioner of {language!r}>"
            self._rerankers.setdefault((key, language), exc)
        if (key, language) not in self._rerankers:
            try:
                store = self.feature_store
                shared = (key, store.extractor_id)  # the check against the store is the same for every index of it
                if shared not in self._generators:
                    model, vocab, _ = load_generator_for(key, store, one_vector=True)
                    self._generators[shared] = (model, vocab)
                if self._generators[shared][1].language != language:
                    raise ScenetalkError(f"{key}: writes {self._generators[shared][1].language!r}, so it cannot "
                                         f"re-rank a query in {language!r}")
                self._rerankers[(key, language)] = self._generators[shared]
            except ScenetalkError as exc:
                self._rerankers[(key, language)] = exc
        found = self._rerankers[(key, language)]
        if isinstance(found, ScenetalkError):
            raise found.with_traceback(None)
        return found

    def query_log_likelihoods(self, query: str, rows: np.ndarray, captioner: str | os.PathLike | None = None,
                              language: str = "en") -> np.ndarray:
        """log P(query | photo) of the photos ``rows`` by a captioner (by default the shipped
        m-RNN) reading their global features from the index, as m-RNN ranks images."""
        from scenetalk.captioning.likelihood import step_log_likelihoods

        model, vocab = self._load_reranker(captioner, language)
        ids, _ = vocab.encode_batch([vocab.tokenize(query)])       # <start> words <end>
        return step_log_likelihoods(model, self.photo_features(rows), ids, vocab.pad_id)

    def search(self, query: str, k: int = 10, candidates: int = 1000, rerank: int | bool | None = 0,
               rerank_weight: float = RERANK_WEIGHT, captioner: str | os.PathLike | None = None,
               lang: str | None = None) -> SearchResult:
        """The ``k`` photos with the best S_kl among ``candidates`` (see the module). With
        ``rerank`` = K > 0 (True: ``RERANK_TOP``), the best K by S_kl are ranked again by
        S_kl + λ·log P(query | photo), the query's likelihood by an m-RNN captioner (Mao et al.
        §6; by default the shipped one), which puts the right photo first far more often on
        Flickr8K (BENCHMARKS.md "Re-ranking"). ``exact`` then says that those K are the
        exhaustive best K by S_kl. ``rerank=None`` re-ranks the best ``RERANK_TOP`` when the
        captioner reads this index's features, and otherwise says why not in ``not_reranked``.
        ``lang``: the query's language for a model of several (``query_language``); the
        re-ranking captioner is that language's."""
        language = self.query_language(query, lang)
        s, unknown, placed = self.embed_query(query, language)
        not_reranked = None
        if rerank is None:
            try:
                self._load_reranker(captioner, language)
                rerank = RERANK_TOP
            except ScenetalkError as exc:
                rerank, not_reranked = 0, str(exc)
        rerank = RERANK_TOP if rerank is True else int(rerank)
        n, kept = len(self.names), max(k, rerank)
        q = s.sum(axis=0)  # Σ_t s_t: the bounds are u_kᵀq and v_0ᵀq
        # Each part gives its best by exact S_kl among its share of the candidates (all of a
        # part smaller than k); the best of all parts are the answer, proved exact when the
        # k-th best score beats every part's best bound left out.
        found = [part.best(s, q, kept, math.ceil(candidates * len(part.names) / n), self.score_kind)
                 for part in self.parts]
        scored, left_out = sum(f[2] for f in found), max(f[3] for f in found)
        best, best_rows = (found[0][0], found[0][1]) if len(found) == 1 else top_rows(found, kept)
        # The bound holds for eq. 8 only (eq. 7 sums over regions instead of taking the max).
        proved = self.score_kind == "max" and len(best) > 0 and proves_exact(float(best[-1]), left_out)
        if rerank and len(best):
            log_p = self.query_log_likelihoods(query, best_rows, captioner, language)
            fused = best + rerank_weight * log_p
            hits = [Hit(self.names[int(best_rows[i])], float(fused[i]), float(log_p[i]), float(best[i]))
                    for i in top_k(fused, k)[1].tolist()]
            meaning = RERANKED_MEANING.format(weight=rerank_weight, top=len(best))
        else:
            hits = [Hit(self.names[int(r)], float(b)) for b, r in zip(best, best_rows)]
            rerank, meaning = 0, MATCH_SCORE_MEANING
        return SearchResult(query, hits, unknown, scored == n or proved, scored, not_reranked, rerank, meaning,
                            placed, language)

    def row(self, name: str) -> int | None:
        """The row of the photo named ``name`` in the index, or None when it holds no such photo."""
        if self._row_of is None:
            self._row_of = {n: i for i, n in enumerate(self.names)}
        return self._row_of.get(name)

    def image_vectors(self, image) -> tuple[str, np.ndarray]:
        """The region vectors (1, R, h) of a photo of the index (by name) or of an image (a
        path or a PIL image, through the index's feature extractor), and its name."""
        from PIL import Image

        if not isinstance(image, Image.Image):
            name = os.fspath(image)
            row = self.row(name)
            if row is not None:
                part, local = self.part_of(row)
                return name, np.array(part.vectors[local:local + 1], dtype=np.float32)  # a copy: memmaps are read-only
            if not os.path.exists(name):
                raise ScenetalkError(f"{name}: neither a photo of the index {self.path} nor an image file")
        else:
            name = "<image>"
        from scenetalk.features.extract import extractor_for
        from scenetalk.vision.images import load_image

        if self._extractor is None:
            self._extractor = extractor_for(self.meta["extractor_id"], self.path, grid=False)
        features = self._extractor.features([load_image(image)])
        self._last_global = (name, features["global"][0].astype(np.float32))
        return name, self.model.embed_regions(features["regions"].astype(np.float32))

    def global_features(self, name: str) -> np.ndarray:
        """The global CNN features (D,) of a photo of the index, or of the image file that
        ``image_vectors`` read last: what a captioner reads."""
        row = self.row(name)
        if row is not None:
            return self.photo_features([row])[0]
        if self._last_global is not None and self._last_global[0] == name:
            return self._last_global[1]
        raise ScenetalkError(f"{name}: not a photo of the index {self.path}")

    def sentence_collection(self) -> "SentenceCollection":
        if not self.meta.get("sentences"):
            raise ScenetalkError(f"{self.path}: the index holds no sentences to describe photos with; pass a file "
                                 "of sentences, one per line (`--sentences FILE`), or store one in the index with "
                                 "`scenetalk index build DIR --out INDEX --sentences FILE`")
        path = self.path / SENTENCES_FILE
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None  # load reports the missing file
        # Kept while the file is unchanged: it is rewritten (renamed into place) when the index is rebuilt.
        if stamp is None or self._sentences is None or self._sentences[0] != stamp:
            self._sentences = (stamp, SentenceCollection.load(path, self.embed_dim))
        return self._sentences[1]

    def describe(self, image, k: int = 5, sentences: Sequence[str] | None = None,
                 sentence_file: str | os.PathLike | None = None, rerank: int | bool | None = 0,
                 rerank_weight: float = DESCRIBE_RERANK_WEIGHT, captioner: str | os.PathLike | None = None,
                 hub_weight: float = HUB_WEIGHT) -> Description:
        """The ``k`` sentences that best match a photo, by S_kl (eq. 8), every sentence scored:
        of ``sentences``, else of ``sentence_file`` (one a line, blank lines left out), else of
        the collection stored in the index. S_kl is first lowered by ``hub_weight`` × each
        sentence's hubness, its fit to photos in general (``retrieval.hubness``), when the
        alignment model has a bank of photos and the index's collection was built with it (0:
        not). With ``rerank`` = K > 0 (True: ``DESCRIBE_RERANK_TOP``) the best K are ranked again
        with the captioner of their language (by default the shipped one;
        ``retrieval.sentence_ranking``); ``rerank=None`` does so when the captioner reads this
        index's features, and otherwise says why not in ``not_reranked``."""
        source, blank = "index", 0
        if sentences is not None:
            source = "given"
        elif sentence_file is not None:
            source = os.fspath(sentence_file)
            sentences, blank = read_sentence_file(sentence_file, self.vocab.language)
        name, v = self.image_vectors(image)
        if sentences is None and not self.meta.get("sentences"):
            # no collection to rank: the captioner's n-best captions of the photo, ranked by S_kl
            sentences, source = self._generated_sentences(name, captioner), GENERATED
            rerank = 0   # they are the captioner's own: its likelihood would only rank them as it wrote them
            hub_weight = 0.0   # not measured on generated sentences
        hubness, bank = None, None
        if sentences is None:
            collection = self.sentence_collection()
            texts, batches = collection.texts, collection.batches()
            hubness = self._stored_hubness(collection) if hub_weight else None
        else:
            bank = self._bank_vectors() if hub_weight else None
            texts = list(sentences)
            if not texts:
                raise ScenetalkError("no sentences to describe the photo with")
            # As search refuses a query: a sentence of unknown words only is refused, before any scoring.
            unknown_words(texts, sentence_tokens(texts, self.vocab), self.vocab, where=sentence_file)
            batches = embed_sentences(self.model, self.vocab, texts)
        parts, hubs = [], []
        for s, mask in batches:
            parts.append(alignment_scores(v, s, mask, self.score_kind)[0])
            if bank is not None:   # given sentences: their hubness now, in the same pass
                hubs.append(hubness_of(bank, s, mask, self.score_kind))
        match = np.concatenate(parts)
        if hubs:
            hubness = np.concatenate(hubs)
        hub_weight = float(hub_weight) if hubness is not None else 0.0
        scores = match - hub_weight * hubness if hub_weight else match
        rerank = DESCRIBE_RERANK_TOP if rerank is True else rerank
        # the candidates: the best K (rerank=None: the default K, if the captioner can re-rank)
        best, pos = top_k(scores, max(k, DESCRIBE_RERANK_TOP if rerank is None else int(rerank)))
        chosen = [texts[int(p)] for p in pos]

        def hit(i: int, score: float, log_ratio: float | None = None) -> SentenceHit:
            p = int(pos[i])
            return SentenceHit(chosen[i], score, log_ratio, float(match[p]) if hub_weight or log_ratio is not None
                               else None, float(hubness[p]) if hub_weight else None)

        hits = [hit(i, float(b)) for i, b in enumerate(best[:k])]
        not_reranked, meaning = None, SENTENCE_MATCH_MEANING
        if rerank is None or rerank:
            try:
                stored = self._stored_priors(pos) if sentences is None else None
                ratios = self._sentence_log_ratios(name, chosen, captioner, stored)
                fused = best + rerank_weight * ratios
                hits = [hit(i, float(fused[i]), float(ratios[i])) for i in top_k(fused, k)[1].tolist()]
                rerank = rerank or DESCRIBE_RERANK_TOP
                meaning = SENTENCE_RERANKED_MEANING.format(weight=rerank_weight, top=len(chosen))
            except ScenetalkError as exc:
                if rerank is not None:  # asked for: the reason is the error
                    raise
                rerank, not_reranked = 0, str(exc)
        if hub_weight:
            meaning += HUB_MEANING.format(weight=hub_weight, neighbours=HUB_NEIGHBOURS)
        shown = [h.sentence for h in hits]
        unknown = [[w for w in words if w not in self.vocab.stoi] for words in sentence_tokens(shown, self.vocab)]
        return Description(name, hits, source, blank, {t: u for t, u in zip(shown, unknown) if u}, not_reranked,
                           int(rerank or 0), meaning, hub_weight)

    def _bank_vectors(self) -> np.ndarray | None:
        """The alignment model's bank of photos (``retrieval.hubness``), embedded once; None
        when the model has none."""
        if self._bank is None:
            bank = read_hub_photos(self.checkpoint)
            self._bank = np.zeros((0,), np.float32) if bank is None else self.model.embed_regions(bank)
        return self._bank if len(self._bank) else None

    def _stored_hubness(self, collection: SentenceCollection) -> np.ndarray | None:
        """The index's hubness of its sentences, when computed against this model's bank with
        this k (``write_index``), else None."""
        made = self.meta.get("sentences", {}).get("hubness")
        if collection.hubness is None or not made:
            return None
        if made.get("bank") != bank_id(self.checkpoint) or made.get("neighbours") != HUB_NEIGHBOURS:
            return None
        return collection.hubness

    def _generated_sentences(self, name: str, captioner) -> list[str]:
        """The captioner's ``DESCRIBE_GENERATED`` best captions of the photo (beam search of that
        width), different ones only, in the language of the index's model (English first)."""
        from scenetalk.captioning.captioner import caption_features

        languages = self.vocab.languages
        language = "en" if "en" in languages else languages[0]
        try:
            model, vocab = self._load_reranker(captioner, language)
        except ScenetalkError as exc:
            raise ScenetalkError(f"{self.path}: the index holds no sentences to describe photos with, and no "
                                 f"captioner can write some ({exc}); pass a file of sentences, one per line "
                                 "(`--sentences FILE`), or store one in the index with `scenetalk index build DIR "
                                 "--out INDEX --sentences FILE`") from None
        [captions] = caption_features(model, vocab, self.global_features(name)[None], beam_size=DESCRIBE_GENERATED,
                                      n_best=DESCRIBE_GENERATED)
        return list(dict.fromkeys(c.text for c in captions))

    def _stored_priors(self, positions: np.ndarray) -> dict[str, np.ndarray] | None:
        """The index's sentence priors of the collection's sentences at ``positions``, by the
        id of the captioner that computed them (``write_index``), or None when it has none."""
        prior = self.meta.get("sentences", {}).get("prior")
        if not prior:
            return None
        values = self.sentence_collection().prior
        if values is None:
            return None
        return {"captioners": prior["captioners"], "values": values[np.asarray(positions, dtype=np.int64)]}

    def _sentence_log_ratios(self, name: str, texts: list[str], captioner, stored) -> np.ndarray:
        """(log P(s | I) − log P(s)) / words of each sentence for the photo ``name``, each by the
        captioner of its language; the priors from ``stored`` where that same captioner computed
        them, else computed now. A ``ScenetalkError`` when a language has no usable captioner."""
        from scenetalk.checkpoint import PRIOR_IMAGES, checkpoint_id, read_prior_images
        from scenetalk.weights import shipped_reranker

        image = self.global_features(name)
        languages = sentence_languages(texts, self.vocab)
        ratios = np.zeros(len(texts), np.float32)
        for language in sorted(set(languages)):
            rows = [i for i, lang in enumerate(languages) if lang == language]
            model, vocab = self._load_reranker(captioner, language)
            folder = os.fspath(captioner or shipped_reranker(language))
            identity = checkpoint_id(folder)
            if stored is not None and stored["captioners"].get(language) == identity:
                priors = stored["values"][rows]
            else:   # sentences given: their priors are computed once each, then kept (100 passes a sentence)
                known = self._priors.setdefault(identity, {})
                new = list(dict.fromkeys(texts[i] for i in rows if texts[i] not in known))
                if new:
                    prior_images = read_prior_images(folder)
                    if prior_images is None:
                        raise ScenetalkError(f"{folder}: the captioner has no prior images ({PRIOR_IMAGES}) "
                                             "to weigh sentences against; scripts/ship_prior_images.py writes them")
                    if len(known) + len(new) > MAX_KEPT_PRIORS:
                        known.clear()
                    known.update(zip(new, log_priors(model, vocab, prior_images, new).tolist()))
                priors = np.array([known[texts[i]] for i in rows], dtype=np.float32)
            ratios[rows] = log_ratios(model, vocab, image, [texts[i] for i in rows], priors)
        return ratios

    def best_regions(self, snippet: str, top: int = 8, per_photo: int = 1, include_whole: bool = False
                     ) -> SnippetRegions:
        """The ``top`` regions of the index's photos that best match a text snippet, by
        Σ_t v_iᵀ s_t over its words (Karpathy & Fei-Fei Figures 9-10), best first: the whole photo
        (region 0) only with ``include_whole``, at most ``per_photo`` regions of one photo."""
        if top < 1 or per_photo < 1:
            raise ScenetalkError(f"top and per_photo must be at least 1 (got {top} and {per_photo})")
        s, unknown, _ = self.embed_query(snippet)
        q, found = s.sum(axis=0), []
        best = sorted(((score, part, row, region) for part in self.parts
                       for row, region, score in best_regions(part.scored, q, top, include_whole, per_photo)),
                      key=lambda hit: -hit[0])[:top]  # each part's best `top`: the best of all among them
        for score, part, row, region in best:
            store, name = part.store, part.names[row]
            at = store.row(name)
            found.append(RegionHit(name, region, store.class_name(store.box_classes[at, region]),
                                   [float(x) for x in store.boxes[at, region]], score))
        return SnippetRegions(snippet, found, unknown)
