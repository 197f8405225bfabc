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
#: the ``language`` of a vocabulary of several languages, whose tokens are tagged ``lang:word``
#: (``tagged``) so that each language has its own word vectors
MULTILINGUAL = "multi"
#: the languages scenetalk reads, by code
LANGUAGES = {"en": "English", "zh": "Chinese", "de": "German"}
#: words far more frequent in German than in English captions (and the reverse), for ``detect_language``
_GERMAN_WORDS = frozenset(
    "ein eine einer einem einen der die das den dem des und mit auf im ist sind zwei drei vor über "
    "unter beim zum zur von sich hund hunde mann frau kind kinder junge mädchen spielt läuft rennt "
    "steht sitzt trägt springt wasser strand gras straße einem vom am aus bei nach hat neben zu mehrere "
    "menschen personen leute hunden eines seine seinem ihre ihrem ihren durch hinter einander nicht".split())
_ENGLISH_WORDS = frozenset(
    "a an the and with on is are of two three at while to his her their dog dogs man woman child children "
    "boy girl plays playing runs running stands standing sits sitting wearing jumps jumping water beach "
    "grass street from by near has its".split())


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


def script_of(text: str) -> str | None:
    """The writing system of the first letter of ``text`` that is not Latin or Chinese
    (``"CYRILLIC"``, ``"HIRAGANA"``, ``"HANGUL"``, ...; Unicode's name for it), or None."""
    for ch in text:
        if ch.isalpha() and not ("a" <= ch.lower() <= "z") and not _CJK.match(ch):
            name = unicodedata.name(ch, "")
            script = name.split(" ")[0] if name else "UNKNOWN"
            if script != "LATIN":
                return script
    return None


def check_script(text: str, languages: Sequence[str], chinese: bool = True) -> None:
    """A ``ScenetalkError`` when ``text`` is written in a script none of ``languages`` uses:
    another script than Latin and Chinese (Cyrillic, kana, Hangul, ...), or (``chinese``)
    Chinese characters when Chinese is not one of them."""
    names = ", ".join(LANGUAGES.get(code, code) for code in languages)
    script = script_of(text)
    if script is not None:
        raise ScenetalkError(f"{text[:40]!r} is written in {script.title()} script; this model reads {names}")
    if chinese and "zh" not in languages and _CJK.search(text):
        raise ScenetalkError(f"{text[:40]!r} is written in Chinese characters; this model reads {names}")


def detect_language(text: str, languages: Sequence[str] = tuple(LANGUAGES)) -> str:
    """Which of ``languages`` a sentence is written in: Chinese if it has Chinese characters;
    else German or English by which language's common caption words it uses more (umlauts and
    ß count for German; a tie is English). A sentence in another script (Cyrillic, Japanese
    kana, Hangul, ...) or in a language not in ``languages`` is a ``ScenetalkError`` saying so."""
    check_script(text, languages, chinese=False)   # Chinese is detected, then refused by name below
    names = ", ".join(LANGUAGES.get(code, code) for code in languages)
    if _CJK.search(text):
        found = "zh"
    else:
        words = normalize(text).split()
        # German cues: its common words, umlauts and ß, "sch", and nouns capitalised mid-sentence
        german = (sum(w in _GERMAN_WORDS for w in words) + sum(ch in "äöüß" for ch in text.lower())
                  + sum("sch" in w for w in words) + 0.5 * sum(w[:1].isupper() for w in text.split()[1:]))
        found = "de" if german > sum(w in _ENGLISH_WORDS for w in words) else "en"
    if found not in languages:
        raise ScenetalkError(f"{text[:40]!r} reads as {LANGUAGES[found]}; this model reads {names} "
                             "(pass the language with --lang / lang= if that is wrong)")
    return found


def tagged(language: str, tokens: Sequence[str]) -> list[str]:
    """Tokens of one language as a multilingual vocabulary holds them: ``lang:word``."""
    return [f"{language}:{t}" for t in tokens]


def untagged(token: str) -> str:
    """The word of a token, without a multilingual vocabulary's ``lang:`` tag."""
    head, sep, word = token.partition(":")
    return word if sep and head in LANGUAGES else token


class Vocabulary:
    """Word <-> id mapping with the special tokens the generators and encoders need.

    Ids 0..3 are ``<pad>``, ``<start>``, ``<end>``, ``<unk>``; words follow in order of
    decreasing training count (ties alphabetical), so a vocabulary built twice from the same
    data is identical.
    """

    PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
    SPECIALS = (PAD, START, END, UNK)

    def __init__(self, words: Sequence[str], counts: dict[str, int] | None = None,
                 min_count: int | None = None, language: str = "en", zh_mode: str | None = None):
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
        #: how Chinese text is cut into this vocabulary's tokens (``ZH_MODES``); None otherwise
        self.zh_mode = (zh_mode or "jieba") if language.startswith("zh") or language == MULTILINGUAL else None
        #: word -> how its training sentences write it, where that is not lower-case (German nouns)
        self.forms: dict[str, str] = {}
        if self.zh_mode is not None and self.zh_mode not in ZH_MODES:
            raise ValueError(f"unknown Chinese segmentation {zh_mode!r}; expected one of {ZH_MODES}")

    pad_id, start_id, end_id, unk_id = 0, 1, 2, 3

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_count: int = 5,
              language: str = "en", zh_mode: str | None = None) -> "Vocabulary":
        """Keep words seen at least ``min_count`` times. Pass the training split only."""
        if min_count < 1:
            raise ValueError("min_count must be at least 1")
        counts = Counter(t for tokens in token_lists for t in tokens)
        kept = sorted((w for w, c in counts.items() if c >= min_count),
                      key=lambda w: (-counts[w], w))
        return cls(kept, {w: counts[w] for w in kept}, min_count=min_count, language=language, zh_mode=zh_mode)

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def languages(self) -> list[str]:
        """The languages of the words: one, or (``MULTILINGUAL``) those the tags name."""
        if self.language != MULTILINGUAL:
            return [self.language]
        return sorted({w.partition(":")[0] for w in self.itos[len(self.SPECIALS):]})

    def word_languages(self) -> np.ndarray:
        """The language of every id, as an index into ``languages`` (-1: a special token): what
        a model with a sentence side per language reads a sentence's language from."""
        index = {code: k for k, code in enumerate(self.languages)}
        if self.language != MULTILINGUAL:
            return np.array([-1] * len(self.SPECIALS) + [0] * self.num_words, dtype=np.int64)
        return np.array([-1] * len(self.SPECIALS) + [index[w.partition(":")[0]] for w in self.itos[len(self.SPECIALS):]],
                        dtype=np.int64)

    def tokenize(self, text: str, language: str | None = None) -> list[str]:
        """A raw sentence cut into tokens the way this vocabulary's training sentences were.
        A multilingual vocabulary's tokens are tagged with the sentence's language:
        ``language`` if given (one of ``languages``), else ``detect_language``'s."""
        if self.language != MULTILINGUAL:
            if language is not None and language != self.language:
                raise ScenetalkError(f"lang {language!r}: this model reads "
                                     f"{LANGUAGES.get(self.language, self.language)} only")
            check_script(text, ["zh" if self.language.startswith("zh") else self.language])
            return tokenize(text, self.language, self.zh_mode or "jieba")
        if language is None:
            language = detect_language(text, self.languages)
        elif language not in self.languages:
            raise ScenetalkError(f"lang {language!r}: this model reads {', '.join(self.languages)}")
        return tagged(language, tokenize(text, language, self.zh_mode or "jieba"))

    def join(self, words: Sequence[str]) -> str:
        """Words as the language writes them: Chinese without spaces, others with; German with
        its nouns capitalised as its training sentences write them (``forms``) and a capital
        first letter. (English stays lower-case, as the papers' captions are.)"""
        if self.language.startswith("zh"):
            return "".join(words)
        if not self.forms:
            return " ".join(words)
        text = " ".join(self.forms.get(w, w) for w in words)
        return text[:1].upper() + text[1:]

    def learn_forms(self, raw_sentences: Iterable[str], token_lists: Iterable[Sequence[str]]) -> None:
        """Keep, for each word that its training sentences mostly write with capitals (German
        nouns), that form (``join`` writes it). Only for German, where the case is the grammar's."""
        if self.language != "de":
            return
        seen: dict[str, Counter] = {}
        for raw, tokens in zip(raw_sentences, token_lists):
            cased = _APOSTROPHES.sub("", unicodedata.normalize("NFKC", raw))
            surface = _NON_ALNUM.sub(" ", cased).split()
            if len(surface) != len(tokens):
                continue
            for position, (form, token) in enumerate(zip(surface, tokens)):
                if position and token in self.stoi:   # a sentence's first word is capitalised anyway
                    seen.setdefault(token, Counter())[form] += 1
        self.forms = {}
        for token, forms in seen.items():
            form, count = forms.most_common(1)[0]
            if form != token and 2 * count > sum(forms.values()):
                self.forms[token] = form

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
                "counts": self.counts, "min_count": self.min_count, "language": self.language,
                **({"zh_mode": self.zh_mode} if self.zh_mode else {}), **({"forms": self.forms} if self.forms else {})}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        if list(data.get("specials", cls.SPECIALS)) != list(cls.SPECIALS):
            raise ValueError("vocabulary was written with other special tokens")
        vocab = cls(data["words"], data.get("counts"), data.get("min_count"), data.get("language", "en"),
                    data.get("zh_mode"))
        vocab.forms = {w: f for w, f in (data.get("forms") or {}).items() if w in vocab.stoi}
        return vocab

    def save(self, path: str | os.PathLike) -> None:
        from scenetalk.io import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos







def sentence_tokens(sentences: Sequence[str], vocab: Vocabulary, what: str = "sentence",
                    language: str | None = None) -> list[list[str]]:
    """Users' sentences as tokens (the training rule; ``Vocabulary.tokenize``, which detects
    each sentence's language for a multilingual model unless ``language`` says it); a sentence
    with no words is an error whose message starts with ``what``."""
    tokens = [vocab.tokenize(s, language) for s in sentences]
    for sentence, words in zip(sentences, tokens):
        if not words:
            raise ScenetalkError(f"{what} {sentence!r} has no words: give a sentence, e.g. \"a dog runs on the beach\"")
    return tokens
