"""Sentence preprocessing and the vocabulary (Karpathy & Fei-Fei §4 and m-RNN §6).

The papers lowercase every sentence, discard non-alphanumeric characters and keep the words
that occur at least 5 times in the *training* split. We do the same, Unicode-aware, so that
German umlauts and Chinese characters survive:

* apostrophes are removed inside words ("dog's" -> "dogs", as Karpathy's tokens do);
* every other non-alphanumeric character separates words ("t-shirt" -> "t shirt");
* Chinese is segmented into words with jieba, or into single characters (``zh_mode``).
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from scenetalk.errors import ScenetalkError

_APOSTROPHES = re.compile(r"['’`´]")
_NON_ALNUM = re.compile(r"[^\w\s]|_", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

ZH_MODES = ("jieba", "char")


def normalize(text: str) -> str:
    """Lowercase, NFKC-normalise (full-width digits and letters become ASCII), strip punctuation."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _APOSTROPHES.sub("", text)
    return _NON_ALNUM.sub(" ", text)


def _segment_chinese(text: str, zh_mode: str) -> list[str]:
    if zh_mode == "char":
        # Each CJK character is a token; runs of Latin letters/digits stay whole words.
        out: list[str] = []
        for chunk in text.split():
            buf = ""
            for ch in chunk:
                if _CJK.match(ch):
                    if buf:
                        out.append(buf)
                        buf = ""
                    out.append(ch)
                else:
                    buf += ch
            if buf:
                out.append(buf)
        return out
    if zh_mode == "jieba":
        import jieba  # imported lazily: loading its dictionary takes about a second

        jieba.setLogLevel(60)
        return [w for w in jieba.lcut(text) if w.strip()]
    raise ValueError(f"unknown Chinese segmentation {zh_mode!r}; expected one of {ZH_MODES}")


def tokenize(text: str, language: str = "en", zh_mode: str = "jieba") -> list[str]:
    """Split a raw sentence into the papers' tokens. English and German share one rule."""
    cleaned = normalize(text)
    if language.startswith("zh"):
        return _segment_chinese(cleaned, zh_mode)
    return cleaned.split()


class Vocabulary:
    """Word <-> id mapping with the special tokens the generators and encoders need.

    Ids 0..3 are ``<pad>``, ``<start>``, ``<end>``, ``<unk>``; words follow in order of
    decreasing training count (ties alphabetical), so a vocabulary built twice from the same
    data is identical.
    """

    PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
    SPECIALS = (PAD, START, END, UNK)

    def __init__(self, words: Sequence[str], counts: dict[str, int] | None = None,
                 min_count: int | None = None, language: str = "en"):
        words = list(words)
        if any(w in self.SPECIALS for w in words):
            raise ValueError("vocabulary words may not include the special tokens")
        self.itos: list[str] = list(self.SPECIALS) + words
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary words must be unique")
        self.counts = dict(counts or {})
        self.min_count = min_count
        self.language = language

    pad_id, start_id, end_id, unk_id = 0, 1, 2, 3

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_count: int = 5,
              language: str = "en") -> "Vocabulary":
        """Keep words seen at least ``min_count`` times. Pass the training split only."""
        if min_count < 1:
            raise ValueError("min_count must be at least 1")
        counts = Counter(t for tokens in token_lists for t in tokens)
        kept = sorted((w for w, c in counts.items() if c >= min_count),
                      key=lambda w: (-counts[w], w))
        return cls(kept, {w: counts[w] for w in kept}, min_count=min_count, language=language)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    @property
    def num_words(self) -> int:
        """Words excluding the special tokens."""
        return len(self.itos) - len(self.SPECIALS)

    def encode(self, tokens: Sequence[str], add_start: bool = False, add_end: bool = False) -> list[int]:
        ids = [self.stoi.get(t, self.unk_id) for t in tokens]
        if add_start:
            ids.insert(0, self.start_id)
        if add_end:
            ids.append(self.end_id)
        return ids

    def decode(self, ids: Iterable[int], strip_specials: bool = True) -> list[str]:
        """Ids to words; stops at ``<end>`` and drops ``<pad>``/``<start>`` when stripping."""
        out = []
        for i in ids:
            i = int(i)
            if strip_specials:
                if i == self.end_id:
                    break
                if i in (self.pad_id, self.start_id):
                    continue
            out.append(self.itos[i])
        return out

    def encode_batch(self, token_lists: Sequence[Sequence[str]], add_start: bool = True,
                     add_end: bool = True, max_len: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pad a batch to a (B, T) int64 array of ids (``pad_id`` after each sentence) and a (B,)
        array of lengths (``torch.from_numpy`` makes tensors of them without a copy)."""
        seqs = [self.encode(t, add_start=add_start, add_end=add_end) for t in token_lists]
        if max_len is not None:
            seqs = [s[:max_len] for s in seqs]
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        out = np.full((len(seqs), int(lengths.max()) if seqs else 0), self.pad_id, dtype=np.int64)
        for row, s in enumerate(seqs):
            out[row, : len(s)] = s
        return out, lengths

    def decode_batch(self, ids) -> list[list[str]]:
        """Rows of ids (a tensor or an array) -> their words."""
        return [self.decode(row.tolist()) for row in ids]

    def to_dict(self) -> dict:
        return {"words": self.itos[len(self.SPECIALS):], "specials": list(self.SPECIALS),
                "counts": self.counts, "min_count": self.min_count, "language": self.language}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        if list(data.get("specials", cls.SPECIALS)) != list(cls.SPECIALS):
            raise ValueError("vocabulary was written with other special tokens")
        return cls(data["words"], data.get("counts"), data.get("min_count"), data.get("language", "en"))

    def save(self, path: str | os.PathLike) -> None:
        from scenetalk.io import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos







def sentence_tokens(sentences: Sequence[str], vocab: Vocabulary, what: str = "sentence") -> list[list[str]]:
    """Users' sentences as tokens (the training rule); a sentence with no words is an error
    whose message starts with ``what``."""
    tokens = [tokenize(s, vocab.language) for s in sentences]
    for sentence, words in zip(sentences, tokens):
        if not words:
            raise ScenetalkError(f"{what} {sentence!r} has no words: give a sentence, e.g. \"a dog runs on the beach\"")
    return tokens
