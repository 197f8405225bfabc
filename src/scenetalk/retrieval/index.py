"""The search index: a folder of photos made searchable with sentences, and its format.

An index folder holds the feature store of the photos (``features/``: global features and
the 20 regions of each), the region vectors v_i of every photo in the alignment model's space
(eq. 1, ``regions_embedded.npy``, float16), two vectors per photo for the candidate stage
(``bounds.npy``: the upper bounds u_k; ``whole.npy``: the whole-image vectors v_0; see
``retrieval.candidates``), for large collections a FAISS index of each, optionally a sentence
collection's word vectors (``sentences.npz``, for ``describe``) and ``index.json`` (format
version ``INDEX_FORMAT``, the alignment checkpoint's id, the feature extractor's id, the
photos and the folder they are in). It is built a block of photos at a time (``build_index``,
``write_index``; ``index_folder`` for a folder of photos): the regions of a whole collection
never are in memory (100 GB in float32 at 1M photos), and every file is renamed into place only
when all are complete.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scenetalk.checkpoint import as_alignment, checkpoint_id, load_alignment_engine
from scenetalk.data.text import sentence_tokens, tokenize
from scenetalk.errors import DataError, ScenetalkError, SearchIndexError
from scenetalk.io import atomic_path, atomic_write_text
from scenetalk.retrieval.candidates import (
    DEFAULT_FAISS_CODES,
    build_candidate_index,
    check_faiss_codes,
    scan_per_candidate,
)

INDEX_FILE, VECTORS_FILE, BOUNDS_FILE, FEATURES_DIR = "index.json", "regions_embedded.npy", "bounds.npy", "features"


WHOLE_FILE, FAISS_FILE, WHOLE_FAISS_FILE, SENTENCES_FILE = "whole.npy", "bounds.faiss", "whole.faiss", "sentences.npz"


#: Photos added to an index after it was built (``add_to_index``) are parts of it, each a
#: complete index folder of its own in ``parts/`` (like a search engine's segments): adding
#: reads and writes only the new photos, and search scores every part.
PARTS_DIR = "parts"


#: Version of the index folder's layout; 2 added the whole-image vectors (``WHOLE_FILE``), 3 the
#: parts (``PARTS_DIR``). Format 2 is format 3 without parts, so both are read.
INDEX_FORMAT = 3
READ_FORMATS = (2, 3)


#: Collections of at least this many photos get FAISS candidate indexes. Below it the exact
#: bounds (two matrix-vector products and the merge: 0.47 ms per 1,000 photos on the 2-core
#: development machine, so under 50 ms) are fast enough and can prove exactness
#: (benchmarks/bench_search_faiss.py, BENCHMARKS.md "Search: candidate stage").
FAISS_MIN_PHOTOS = 100_000


#: Photos embedded and written at a time when an index is built: 256 photos' regions are 26 MB
#: in float32, where a whole collection's would be 100 GB at 1M photos.
BUILD_BLOCK = 256


#: What ``index.json`` must hold, and the type of each value.
META_KEYS = {"format": int, "names": list, "extractor_id": str, "checkpoint_id": str}


def read_index_meta(meta_path: Path) -> dict:
    """``index.json`` of an index, checked: JSON, its format this code's (a newer one is named
    as such), the keys search reads, of the right types."""
    index = meta_path.parent
    rebuild = f"rebuild the index with `scenetalk index build DIR --out {index}`"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SearchIndexError(f"{meta_path}: damaged ({' '.join(str(exc).split())}); {rebuild}") from None
    if not isinstance(meta, dict):
        raise SearchIndexError(f"{meta_path}: damaged (not a JSON object); {rebuild}")
    version = meta.get("format")
    if type(version) is int and version > INDEX_FORMAT:
        raise SearchIndexError(f"{index}: an index of format {version}, made by a newer scenetalk (this one reads "
                               f"format {INDEX_FORMAT}); upgrade scenetalk")
    if version not in READ_FORMATS:
        raise SearchIndexError(f"{index}: an index of an earlier version of scenetalk; {rebuild}")
    for key, kind in META_KEYS.items():
        if key not in meta:
            raise SearchIndexError(f"{meta_path}: damaged (no {key!r}); {rebuild}")
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            raise SearchIndexError(f"{meta_path}: damaged ({key!r} is not a {kind.__name__}); {rebuild}")
    if not all(isinstance(n, str) for n in meta["names"]):
        raise SearchIndexError(f"{meta_path}: damaged ('names' is not a list of photo names); {rebuild}")
    for key, kind in (("folder", str), ("bad", list), ("sentences", dict), ("candidate_index", dict),
                      ("parts", list)):
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            raise SearchIndexError(f"{meta_path}: damaged ({key!r} is not a {kind.__name__}); {rebuild}")
    if not all(isinstance(p, str) and Path(p).parts[:1] == (PARTS_DIR,) and ".." not in Path(p).parts
               for p in meta.get("parts") or []):
        raise SearchIndexError(f"{meta_path}: damaged ('parts' is not a list of folders in {PARTS_DIR}/); {rebuild}")
    return meta


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


def unknown_words(texts: Sequence[str], tokens: Sequence[Sequence[str]], vocab,
                  where: str | os.PathLike | None = None) -> list[list[str]]:
    """The words of each sentence the model does not know (they are read as ``<unk>``). A
    sentence with no known word is refused, as ``Searcher.search`` refuses such a query: its
    score would say nothing about the photo (and can beat a real sentence's). ``where``: the
    file the sentences came from, named in the message."""
    out = []
    for text, words in zip(texts, tokens):
        unknown = [w for w in words if w not in vocab.stoi]
        if len(unknown) == len(words):
            raise ScenetalkError(f"{f'{where}: ' if where is not None else ''}none of the words of {text!r} is "
                                 f"known to the model (its vocabulary has {len(vocab)} words from its training "
                                 "sentences)")
        out.append(unknown)
    return out


def embed_sentences(model, vocab, texts: Sequence[str], batch_size: int = 256
                    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Word vectors s_t (eq. 6) of ``texts``, batch by batch: (B, T, h) and the (B, T) mask."""
    model = as_alignment(model)
    tokens = sentence_tokens(texts, vocab)
    for start in range(0, len(tokens), batch_size):
        ids, _ = vocab.encode_batch(tokens[start:start + batch_size], add_start=False, add_end=False)
        yield model.embed_words(ids)


class SentenceCollection:
    """Sentences and their word vectors, stored sparse: s_t is a ReLU output and about 3% of
    its entries are non-zero (Flickr8K val, the trained model), so each word keeps only its
    non-zero dimensions (uint16) and values (float32, the model's exact output): ~190 bytes a
    word instead of 4,000."""

    KEYS = ("text", "text_bytes", "words_per_sentence", "nonzeros_per_word", "dim", "value")

    def __init__(self, texts: list[str], arrays: dict[str, np.ndarray], dim: int):
        self.texts, self.dim = texts, dim
        #: each sentence's prior log P(s) by its language's captioner (NaN: none), when the index has them
        self.prior: np.ndarray | None = arrays.get("prior")
        #: each sentence's hubness (``retrieval.hubness``), when the index has them
        self.hubness: np.ndarray | None = arrays.get("hubness")
        self.words_per_sentence = arrays["words_per_sentence"].astype(np.int64)
        self.nonzeros_per_word = arrays["nonzeros_per_word"].astype(np.int64)
        self.word_start = np.concatenate([[0], self.words_per_sentence.cumsum()]).astype(np.int64)
        self.nonzero_start = np.concatenate([[0], self.nonzeros_per_word.cumsum()]).astype(np.int64)
        self.dims = arrays["dim"].astype(np.int64)
        self.values = arrays["value"]

    @staticmethod
    def write(path: str | os.PathLike, texts: Sequence[str], batches: Iterator[tuple[np.ndarray, np.ndarray]],
              prior: np.ndarray | None = None, hubness: np.ndarray | None = None) -> None:
        parts: dict[str, list[np.ndarray]] = {k: [] for k in SentenceCollection.KEYS[2:]}
        for s, mask in batches:
            words = np.asarray(s, dtype=np.float32)[np.asarray(mask, dtype=bool)]   # (W, h): in sentence order
            word, dim = np.nonzero(words)                      # row-major: word by word
            parts["words_per_sentence"].append(np.asarray(mask).sum(axis=1).astype(np.int32))
            parts["nonzeros_per_word"].append((words != 0).sum(axis=1).astype(np.int32))
            parts["dim"].append(dim.astype(np.uint16))
            parts["value"].append(words[word, dim].astype(np.float32))
        encoded = [t.encode("utf-8") for t in texts]
        text = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, text=text, text_bytes=np.array([len(e) for e in encoded], dtype=np.int64),
                     **{k: np.concatenate(v) for k, v in parts.items()},
                     **({"prior": np.asarray(prior, dtype=np.float32)} if prior is not None else {}),
                     **({"hubness": np.asarray(hubness, dtype=np.float32)} if hubness is not None else {}))

    @classmethod
    def load(cls, path: Path, dim: int) -> "SentenceCollection":
        damaged = f"{path}: damaged sentence collection; rebuild the index with --sentences FILE"
        try:
            with np.load(path) as data:
                arrays = {k: data[k] for k in cls.KEYS}
                for optional in ("prior", "hubness"):
                    if optional in data.files:
                        arrays[optional] = data[optional]
            data, ends = arrays["text"].tobytes(), np.cumsum(arrays["text_bytes"]).tolist()
            texts = [data[a:b].decode("utf-8") for a, b in zip([0] + ends[:-1], ends)]
        except (OSError, ValueError, KeyError, UnicodeDecodeError, EOFError, zipfile.BadZipFile, zlib.error):
            raise SearchIndexError(damaged) from None
        kinds = {"text": "u", "text_bytes": "i", "words_per_sentence": "i", "nonzeros_per_word": "i", "dim": "u",
                 "value": "f"}
        if not all(arrays[k].ndim == 1 and arrays[k].dtype.kind == kind for k, kind in kinds.items()):
            raise SearchIndexError(damaged)
        if not (len(arrays["text_bytes"]) and int(arrays["text_bytes"].sum()) == len(arrays["text"])
                and np.isfinite(arrays["value"]).all() and (arrays["text_bytes"] >= 0).all()
                and (arrays["words_per_sentence"] >= 1).all() and (arrays["nonzeros_per_word"] >= 0).all()):
            raise SearchIndexError(damaged)
        prior = arrays.get("prior")
        if prior is not None and not (prior.ndim == 1 and prior.dtype.kind == "f" and len(prior) == len(texts)
                                      and not np.isposinf(prior).any()):
            raise SearchIndexError(damaged)
        hubness = arrays.get("hubness")
        if hubness is not None and not (hubness.ndim == 1 and hubness.dtype.kind == "f" and len(hubness) == len(texts)
                                        and np.isfinite(hubness).all()):
            raise SearchIndexError(damaged)
        collection = cls(texts, arrays, dim)
        if not (len(texts) == len(collection.words_per_sentence)
                and int(collection.word_start[-1]) == len(collection.nonzeros_per_word)
                and int(collection.nonzero_start[-1]) == len(collection.dims) == len(collection.values)
                and (len(collection.dims) == 0 or int(collection.dims.max()) < dim)):
            raise SearchIndexError(damaged)
        return collection

    def batches(self, batch_size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The word vectors as ``embed_sentences`` gives them: (B, T, h) and the (B, T) mask."""
        for a in range(0, len(self.texts), batch_size):
            b = min(a + batch_size, len(self.texts))
            w0, w1 = int(self.word_start[a]), int(self.word_start[b])
            z0, z1 = int(self.nonzero_start[w0]), int(self.nonzero_start[w1])
            words = np.zeros((w1 - w0, self.dim), np.float32)
            owner = np.repeat(np.arange(w1 - w0), self.nonzeros_per_word[w0:w1])
            words[owner, self.dims[z0:z1]] = self.values[z0:z1]
            lengths = self.words_per_sentence[a:b]
            mask = np.arange(int(lengths.max()))[None] < lengths[:, None]
            s = np.zeros((b - a, mask.shape[1], self.dim), np.float32)
            s[mask] = words                                    # the order ``s[mask]`` was packed in
            yield s, mask


@dataclass
class IndexSummary:
    out: Path              # the index folder written
    folder: str            # the folder of photos indexed
    photos: int            # photos in the index
    skipped: list[str]     # files left out: not readable as images
    sentences: int         # sentences stored for ``describe`` (0: none given)
    blank_lines: int = 0   # blank lines of the sentence file, left out


def check_index_folder(out: str | os.PathLike) -> Path:
    """``out`` as a folder an index can be written to: absent or a folder, and not inside a file."""
    out = Path(out)
    for at in (out, *out.parents):
        if at.exists() and not at.is_dir():
            raise ScenetalkError(f"{out}: {'is' if at == out else f'{at} is'} a file, not a folder; "
                                 "give --out a folder to write the index to")
        if at.exists():
            break
    return out


def index_folder(folder: str | os.PathLike, out: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
                 recursive: bool = False, sentence_file: str | os.PathLike | None = None, progress: bool = True,
                 overwrite: bool = False, faiss_codes: str = DEFAULT_FAISS_CODES,
                 ray: bool | str | None = None) -> IndexSummary:
    """An index of the photos in ``folder`` (``build_index``; with ``recursive``, of its
    sub-folders too) with the alignment checkpoint (default: the shipped one), and the
    sentences of ``sentence_file`` (one a line) for ``describe``. The sentence file is read
    before the (long) feature extraction, so that a bad one fails fast. ``faiss_codes``: what
    the candidate lists of a large collection store (``candidates.DEFAULT_FAISS_CODES``);
    ``ray``: extract the features on a Ray cluster (True: a local one; or its address)."""
    from scenetalk.checkpoint import read_meta
    from scenetalk.vision.images import list_images
    from scenetalk.weights import shipped_alignment

    check_index_folder(out)  # before the photos are listed: a wrong --out or option fails fast
    checkpoint = checkpoint or shipped_alignment()
    check_faiss_codes(faiss_codes, model_dim(checkpoint))
    found = list_images(folder, recursive=recursive)
    if not found:
        raise ScenetalkError(f"{folder}: no images in this folder"
                             + ("" if recursive else " (use --recursive to look in sub-folders)"))
    sentences, blank = None, 0
    if sentence_file:
        language = read_meta(checkpoint).get("vocabulary", {}).get("language", "en")
        sentences, blank = read_sentence_file(sentence_file, language)
        from scenetalk.data.text import Vocabulary

        try:
            vocab = Vocabulary.from_dict(read_meta(checkpoint).get("vocabulary"))
        except (AttributeError, KeyError, TypeError, ValueError):
            vocab = None  # a damaged checkpoint: load_alignment names what is wrong with it
        if vocab is not None:
            unknown_words(sentences, sentence_tokens(sentences, vocab), vocab, where=sentence_file)
    out = build_index([(rel, os.path.join(folder, rel)) for rel in found], out, checkpoint, progress=progress,
                      sentences=sentences, overwrite=overwrite, folder=folder, faiss_codes=faiss_codes, ray=ray)
    meta = json.loads((out / INDEX_FILE).read_text(encoding="utf-8"))
    return IndexSummary(out, os.fspath(folder), len(meta["names"]), meta.get("bad", []),
                        len(sentences) if sentences else 0, blank)


class NoReadableImages(ScenetalkError):
    """None of the images given to ``build_index`` could be read; ``bad``: their names."""

    def __init__(self, message: str, bad: Sequence[str]):
        super().__init__(message)
        self.bad = list(bad)


@dataclass
class AddSummary:
    index: Path            # the index photos were added to
    folder: str            # the folder looked in
    added: int             # photos added (0: every photo found was indexed already)
    already: int           # photos found that the index held already
    photos: int            # photos in the index now, all parts together
    part: str | None       # the part written (``PARTS_DIR``/NNNN), None when nothing was added
    skipped: list[str]     # files left out: not readable as images


def part_metas(index: str | os.PathLike, meta: dict) -> list[dict]:
    """The ``index.json`` of each part an index lists (``meta``: its own), checked, in order."""
    found = []
    for part in meta.get("parts") or []:
        meta_path = Path(index) / part / INDEX_FILE
        if not meta_path.is_file():
            raise SearchIndexError(f"{Path(index) / part}: a part of the index is missing; rebuild the index")
        found.append(read_index_meta(meta_path))
    return found


def index_names(index: str | os.PathLike, meta: dict) -> list[str]:
    """The names of every photo of an index, its first part's (``meta``) and then its added
    parts' in order."""
    return [name for m in (meta, *part_metas(index, meta)) for name in m["names"]]


def add_to_index(index: str | os.PathLike, folder: str | os.PathLike | None = None,
                 checkpoint: str | os.PathLike | None = None, recursive: bool = False, progress: bool = True,
                 faiss_codes: str = DEFAULT_FAISS_CODES, faiss_min: int = FAISS_MIN_PHOTOS,
                 ray: bool | str | None = None) -> AddSummary:
    """Add the photos of ``folder`` (default: the folder the index was built from; it must be
    that folder or inside it, so that every photo's name stays its path relative to it) that
    the index does not hold yet, without touching what it holds: their features and region
    vectors are written as a new part (``PARTS_DIR``), and the part becomes part of the index
    only when it is complete, when ``index.json`` is renamed into place with it listed. An
    interrupted add resumes its extraction when run again. ``checkpoint``: the alignment model
    the index was built with (default: the one it records, else the shipped one); ``ray``: as
    for ``build_index``."""
    from scenetalk.vision.images import list_images
    from scenetalk.weights import shipped_alignment

    index = Path(index)
    meta_path = index / INDEX_FILE
    if not meta_path.is_file():
        raise SearchIndexError(f"{index}: not a scenetalk index (no {INDEX_FILE}); build one with "
                               "`scenetalk index build DIR --out INDEX`")
    meta = read_index_meta(meta_path)
    meta["format"] = INDEX_FORMAT   # it gets parts
    if not meta.get("folder"):
        raise SearchIndexError(f"{index}: the index does not record the folder its photos are in (it was written "
                               "from Python without one); build it with `scenetalk index build DIR --out INDEX`")
    root = Path(meta["folder"])
    folder = Path(folder) if folder is not None else root
    if not folder.is_dir():
        raise ScenetalkError(f"{folder}: not a folder" if folder.exists() else f"{folder}: no such folder")
    try:
        prefix = Path(os.path.relpath(folder.resolve(), root.resolve()))
    except ValueError:   # another drive (Windows)
        prefix = Path("..")
    if ".." in prefix.parts:
        raise ScenetalkError(f"{folder}: not inside the folder the index {index} was built from ({root}); put the "
                             "photos there, or build an index of this folder and search it on its own")
    if checkpoint is None:
        built_with = meta.get("checkpoint")
        checkpoint = built_with if built_with and Path(built_with).is_dir() else shipped_alignment()
    have = checkpoint_id(checkpoint)
    if have != meta["checkpoint_id"]:
        raise SearchIndexError(f"checkpoint (--checkpoint) {checkpoint}: the index {index} was built with alignment "
                               f"model {meta['checkpoint_id']}, not {have}; add photos with the model it was built "
                               "with")
    check_faiss_codes(faiss_codes, model_dim(checkpoint))
    known = set(index_names(index, meta))
    found = [os.path.normpath(prefix / name) for name in list_images(folder, recursive=recursive)]
    new = [name for name in found if name not in known]
    parts = list(meta.get("parts") or [])
    if not new:
        return AddSummary(index, os.fspath(folder), 0, len(found), len(known), None, [])
    # The next part's folder; one left by an interrupted add is reused (its extraction resumes
    # when the photos are the same, and starts again when they are not).
    part = f"{PARTS_DIR}/{len(parts) + 1:04d}"
    try:
        build_index([(name, os.path.join(root, name)) for name in new], index / part, checkpoint, progress=progress,
                    faiss_min=faiss_min, overwrite=True, folder=root, faiss_codes=faiss_codes, ray=ray)
    except NoReadableImages as exc:   # every new file is unreadable: reported, nothing added
        shutil.rmtree(index / part, ignore_errors=True)
        return AddSummary(index, os.fspath(folder), 0, len(found) - len(new), len(known), None, exc.bad)
    added = json.loads((index / part / INDEX_FILE).read_text(encoding="utf-8"))
    meta["parts"] = parts + [part]
    atomic_write_text(meta_path, json.dumps(meta, indent=1, ensure_ascii=False))  # the part is in the index now
    return AddSummary(index, os.fspath(folder), len(added["names"]), len(found) - len(new),
                      len(known) + len(added["names"]), part, added.get("bad", []))


@dataclass
class AttachSummary:
    index: Path            # the index the other one became part of
    attached: str          # the index folder copied in
    part: str              # the part it is now (``PARTS_DIR``/NNNN)
    added: int             # its photos
    photos: int            # photos in the index now, all parts together
    prefix: str            # the folder of its photos, relative to the index's folder ("." when the same)
    sentences_left: int    # sentences it held: describe reads the first part's collection only


def attach_index(index: str | os.PathLike, other: str | os.PathLike, folder: str | os.PathLike | None = None,
                 progress: bool = True) -> AttachSummary:
    """Make ``other``, an index built elsewhere (another machine, another folder) with the same
    alignment model and extractor, a part of ``index``, so that one search answers over both:
    it is copied into ``PARTS_DIR`` (``other`` is left as it is) with its photos' names rebased
    on ``index``'s folder (names are paths relative to the folder an index records). ``folder``:
    where ``other``'s photos are as this machine sees them (default: the folder it records),
    which must be ``index``'s folder or inside it. The copy is listed in ``index.json`` only
    once it is complete, so an interrupted attach leaves the index as it was. ``progress``: a
    bar of the bytes copied."""
    index, other = Path(index), Path(other)
    metas = []
    for path in (index, other):
        if not (path / INDEX_FILE).is_file():
            raise SearchIndexError(f"{path}: not a scenetalk index (no {INDEX_FILE}); build one with "
                                   "`scenetalk index build DIR --out INDEX`")
        metas.append(read_index_meta(path / INDEX_FILE))
    meta, theirs = metas
    if index.resolve() == other.resolve() or index.resolve() in other.resolve().parents:
        raise ScenetalkError(f"{other}: is the index {index} itself, or inside it")
    if (theirs["checkpoint_id"], theirs["extractor_id"]) != (meta["checkpoint_id"], meta["extractor_id"]):
        raise SearchIndexError(f"{other}: built with alignment model {theirs['checkpoint_id']} on features "
                               f"{theirs['extractor_id']!r}, but {index} with {meta['checkpoint_id']} on "
                               f"{meta['extractor_id']!r}; build both with the same model")
    if theirs.get("parts"):
        raise SearchIndexError(f"{other}: has photos added as parts of its own; fold them into one first "
                               "(`scenetalk index build` over its folder)")
    if not meta.get("folder"):
        raise SearchIndexError(f"{index}: the index does not record the folder its photos are in (it was written "
                               "from Python without one); build it with `scenetalk index build DIR --out INDEX`")
    where = folder if folder is not None else theirs.get("folder")
    if not where:
        raise SearchIndexError(f"{other}: the index does not record the folder its photos are in; say where they "
                               "are (--folder DIR)")
    root = Path(meta["folder"])
    try:
        prefix = Path(os.path.relpath(Path(where).resolve(), root.resolve()))
    except ValueError:   # another drive (Windows)
        prefix = Path("..")
    if ".." in prefix.parts:
        raise ScenetalkError(f"{where}: the photos of {other} are not inside the folder the index {index} was built "
                             f"from ({root}); put them there (--folder: where they are as this machine sees them)")
    rename = {name: os.path.normpath(prefix / name) for name in theirs["names"]}
    known = set(index_names(index, meta))
    clash = next((n for n in rename.values() if n in known), None)
    if clash is not None:
        raise SearchIndexError(f"{other}: photo {clash} is in {index} already; an index holds each photo once")
    parts = list(meta.get("parts") or [])
    part = f"{PARTS_DIR}/{len(parts) + 1:04d}"
    work = index / PARTS_DIR / f".{len(parts) + 1:04d}.attaching"
    shutil.rmtree(work, ignore_errors=True)   # left by an interrupted attach
    from scenetalk.progress import progress_bar

    files = [f for f in sorted(other.rglob("*")) if f.is_file() and f.name != SENTENCES_FILE
             and PARTS_DIR not in f.relative_to(other).parts]   # its sentences are not attached
    with progress_bar(total=sum(f.stat().st_size for f in files), unit="B", unit_scale=True,
                      desc=f"copying {other.name}", disable=not progress) as bar:
        for f in files:
            target = work / f.relative_to(other)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
            bar.update(f.stat().st_size)
    # the copy's names, in its index.json and its feature store, rebased on the index's folder
    store_meta_path = work / FEATURES_DIR / "index.json"
    for path in (work / INDEX_FILE, store_meta_path):
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        data["names"] = [rename.get(n, n) for n in data["names"]]
        data["bad"] = [rename.get(n, n) for n in data.get("bad", [])]
        if path == work / INDEX_FILE:
            data["folder"] = os.path.abspath(root)
            data.pop("sentences", None)
        atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False))
    shutil.rmtree(index / part, ignore_errors=True)
    os.replace(work, index / part)
    meta["format"] = INDEX_FORMAT   # it gets parts
    meta["parts"] = parts + [part]
    atomic_write_text(index / INDEX_FILE, json.dumps(meta, indent=1, ensure_ascii=False))  # in the index now
    held = theirs.get("sentences", {}).get("count", 0) if isinstance(theirs.get("sentences"), dict) else 0
    return AttachSummary(index, os.fspath(other), part, len(rename), len(known) + len(rename), os.fspath(prefix),
                         int(held))


def build_index(images: list[tuple[str, str]], out: str | os.PathLike, checkpoint: str | os.PathLike,
                progress: bool = True, sentences: Sequence[str] | None = None,
                faiss_min: int = FAISS_MIN_PHOTOS, overwrite: bool = False,
                folder: str | os.PathLike | None = None, faiss_codes: str = DEFAULT_FAISS_CODES,
                ray: bool | str | None = None) -> Path:
    """Features and regions of ``images`` ((name, path) pairs; resumable), then their region
    vectors in the checkpoint's space and the candidate vectors (``write_index``), streamed a
    block of photos at a time. The features are the ones the checkpoint was trained on
    (backbone and region crop size from its extractor id), without the grid search never
    reads; ``overwrite`` replaces features of another extractor or image list. ``folder``: where
    the photos are (their names are relative to it), recorded for ``scenetalk sheet``. ``ray``:
    the features are extracted on a Ray cluster (``features.jobs``; True: a local one)."""
    from functools import partial

    from scenetalk.checkpoint import read_meta
    from scenetalk.features.extract import extractor_for
    from scenetalk.features.jobs import extract_with
    from scenetalk.features.store import FeatureStore

    out = check_index_folder(out)
    extractor_id = read_meta(checkpoint).get("extractor_id") or ""
    make = partial(extractor_for, extractor_id, os.fspath(checkpoint), grid=False)
    if ray:
        make()                  # a backbone other than the checkpoint's fails here, not on every worker
    result = extract_with(images, out / FEATURES_DIR, make, ray, progress=progress, skip_bad=True,
                          overwrite=overwrite)
    store = FeatureStore.open(out / FEATURES_DIR)
    model, _, _ = load_alignment_engine(checkpoint, expect_extractor_id=store.extractor_id)
    bad = set(result.bad)  # unreadable files: reported by extract, left out of the index
    keep = np.array([i for i, name in enumerate(store.names) if name not in bad], dtype=np.int64)
    if not len(keep):
        raise NoReadableImages("none of the images could be read; nothing to index", result.bad)
    return write_index(out, region_vectors(model, store.regions, keep, progress=progress),
                       [store.names[i] for i in keep], checkpoint, store.extractor_id, result.bad,
                       sentences=sentences, faiss_min=faiss_min, folder=folder, progress=progress,
                       faiss_codes=faiss_codes)


def region_vectors(model, regions: np.ndarray, rows: np.ndarray, block: int = BUILD_BLOCK,
                   progress: bool = False) -> Iterator[np.ndarray]:
    """Region vectors v_i (eq. 1), (B, R, h), of the photos ``rows`` of ``regions`` (N, R, D;
    a feature store's memory map, read ``block`` rows at a time), block by block. With
    ``progress``, a bar: at 1M photos this is ~50 TFLOP, minutes on a laptop."""
    from scenetalk.progress import progress_bar

    model = as_alignment(model)
    with progress_bar(total=len(rows), disable=not progress, unit="photo", desc="embedding regions") as bar:
        for a in range(0, len(rows), block):
            x = np.asarray(regions[rows[a:a + block]], dtype=np.float32)
            yield model.embed_regions(x)
            bar.update(len(x))


def write_index(out: str | os.PathLike, v: np.ndarray | Iterable[np.ndarray], names: list[str],
                checkpoint: str | os.PathLike, extractor_id: str, bad: Sequence[str] = (),
                sentences: Sequence[str] | None = None, faiss_min: int = FAISS_MIN_PHOTOS,
                folder: str | os.PathLike | None = None, progress: bool = False,
                faiss_codes: str = DEFAULT_FAISS_CODES) -> Path:
    """The searchable part of an index from the region vectors of the photos ``names``: ``v``
    is an (N, R, h) array, or an iterable of (B, R, h) arrays, consecutive blocks of the
    photos in the order of ``names`` (only one block is in memory at a time). Written: the
    vectors in float16, their bounds u_k and whole-image vectors v_0, a FAISS index of each
    (storing ``faiss_codes``) for ``faiss_min`` photos or more, the word vectors of
    ``sentences``, and ``index.json`` (with ``folder``, the absolute path of the photos'
    folder). Parts added to an earlier index in ``out`` are removed: these photos replace them."""
    out, n = Path(out), len(names)
    if hasattr(v, "shape"):   # one array (or tensor) of every photo
        v = np.asarray(v)
        blocks = (v[a:a + BUILD_BLOCK] for a in range(0, len(v), BUILD_BLOCK))
    else:
        blocks = v
    meta = {"format": INDEX_FORMAT, "names": list(names), "extractor_id": extractor_id,
            "checkpoint_id": checkpoint_id(checkpoint), "checkpoint": str(checkpoint), "bad": list(bad)}
    if folder is not None:
        meta["folder"] = os.path.abspath(folder)
    # Each file is written under a temporary name, and all are renamed into place only once
    # every one is complete (an error removes them and leaves an earlier index as it was).
    with ExitStack() as files:
        tmp = {f: files.enter_context(atomic_path(out / f)) for f in (VECTORS_FILE, BOUNDS_FILE, WHOLE_FILE)}
        arrays: dict[str, np.memmap] = {}
        done = 0
        for block in blocks:
            v16 = np.asarray(block, dtype=np.float16)
            if done + len(v16) > n:
                raise ValueError(f"write_index: the blocks of region vectors hold more than the {n} photos named")
            if not arrays:
                _, r, h = v16.shape
                arrays = {VECTORS_FILE: np.lib.format.open_memmap(tmp[VECTORS_FILE], "w+", np.float16, (n, r, h)),
                          BOUNDS_FILE: np.lib.format.open_memmap(tmp[BOUNDS_FILE], "w+", np.float32, (n, h)),
                          WHOLE_FILE: np.lib.format.open_memmap(tmp[WHOLE_FILE], "w+", np.float32, (n, h))}
            rows = slice(done, done + len(v16))
            arrays[VECTORS_FILE][rows] = v16
            # Both bounds of the vectors as stored (rounded to float16), so that they bound their scores.
            arrays[BOUNDS_FILE][rows] = v16.max(axis=1).astype(np.float32)
            arrays[WHOLE_FILE][rows] = v16[:, 0].astype(np.float32)
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
                index = build_candidate_index(array, codes=faiss_codes)  # reads the memory map in slices
                faiss.write_index(index, files.enter_context(atomic_path(out / f)))
            meta["candidate_index"] = {"files": {"bound": FAISS_FILE, "whole": WHOLE_FAISS_FILE},
                                       "faiss": f"IVF{faiss.extract_index_ivf(index).nlist},{faiss_codes}",
                                       "scan_per_candidate": scan_per_candidate(faiss_codes)}
    if n < faiss_min:
        for f in (FAISS_FILE, WHOLE_FAISS_FILE):  # from an earlier, larger build: they would not match these photos
            with suppress(FileNotFoundError):
                os.unlink(out / f)
    old = _old_meta(out)
    if sentences is not None:
        model, vocab, _ = load_alignment_engine(checkpoint)
        prior, captioners = sentence_priors(sentences, vocab, out / FEATURES_DIR, progress)
        hubness, hub = sentences_hubness(model, checkpoint, vocab, sentences)
        SentenceCollection.write(out / SENTENCES_FILE, sentences, embed_sentences(model, vocab, sentences), prior,
                                 hubness)
        meta["sentences"] = {"file": SENTENCES_FILE, "count": len(sentences),
                             **({"prior": {"captioners": captioners}} if captioners else {}),
                             **({"hubness": hub} if hub else {})}
    elif old.get("sentences") and old.get("checkpoint_id") == meta["checkpoint_id"]:
        meta["sentences"] = old["sentences"]  # embedded by this same model: still valid
    else:
        with suppress(FileNotFoundError):
            os.unlink(out / SENTENCES_FILE)
    atomic_write_text(out / INDEX_FILE, json.dumps(meta, indent=1, ensure_ascii=False))
    if old.get("parts"):  # photos added to the earlier index: this build replaces them
        shutil.rmtree(out / PARTS_DIR, ignore_errors=True)
    return out


def model_dim(checkpoint: str | os.PathLike) -> int:
    """The dimension h of an alignment checkpoint's space (0 when its config does not say;
    loading it then names what is wrong)."""
    from scenetalk.checkpoint import read_meta

    try:
        return int(read_meta(checkpoint)["model"]["embed_dim"])
    except (KeyError, TypeError, ValueError):
        return 0


def sentence_priors(texts: Sequence[str], vocab, store_path: Path, progress: bool = False
                    ) -> tuple[np.ndarray | None, dict[str, str]]:
    """Each sentence's prior log P(s) (``retrieval.sentence_ranking``) by the shipped captioner of
    its language, for ``describe`` to re-rank with: (L,) with NaN where no captioner of that
    language reads the index's features (``store_path``) with prior images, and the ids of the
    captioners used, by language; (None, {}) when none could be."""
    from scenetalk.captioning.captioner import load_generator_for
    from scenetalk.checkpoint import read_prior_images
    from scenetalk.features.store import FeatureStore
    from scenetalk.retrieval.sentence_ranking import log_priors, sentence_languages
    from scenetalk.weights import shipped_reranker

    try:
        store = FeatureStore.open(store_path)
    except ScenetalkError:   # vectors written without a feature store (tests, benchmarks): nothing to read
        return None, {}
    languages = sentence_languages(texts, vocab)
    prior = np.full(len(texts), np.nan, np.float32)
    captioners: dict[str, str] = {}
    for language in sorted(set(languages)):
        try:
            folder = shipped_reranker(language)
            model, captioner_vocab, _ = load_generator_for(folder, store, one_vector=True)
            images = read_prior_images(folder)
        except ScenetalkError:
            continue   # describe then says why it does not re-rank these
        if images is None:
            continue
        rows = [i for i, lang in enumerate(languages) if lang == language]
        prior[rows] = log_priors(model, captioner_vocab, images, [texts[i] for i in rows], progress=progress)
        captioners[language] = checkpoint_id(folder)
    return (prior, captioners) if captioners else (None, {})


def sentences_hubness(model, checkpoint: str | os.PathLike, vocab, texts: Sequence[str]
                      ) -> tuple[np.ndarray | None, dict]:
    """Each sentence's hubness (``retrieval.hubness``) against the alignment checkpoint's bank of
    photos, for ``describe`` to correct S_kl with, and what it was computed with (the bank's
    hash, k); (None, {}) when the checkpoint has no bank."""
    from scenetalk.checkpoint import read_meta
    from scenetalk.retrieval.hubness import HUB_NEIGHBOURS, bank_id, read_hub_photos, sentence_hubness

    bank = read_hub_photos(checkpoint)
    if bank is None:
        return None, {}
    score = read_meta(checkpoint)["model"].get("score", "max")
    hubness = sentence_hubness(model, bank, embed_sentences(model, vocab, texts), score, HUB_NEIGHBOURS)
    return hubness, {"bank": bank_id(checkpoint), "neighbours": HUB_NEIGHBOURS}


def _old_meta(out: Path) -> dict:
    try:
        return json.loads((out / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
