"""Small argument checkers for the façade (``api.Scenetalk``), written once for the CLI and
any other caller: each returns the value it accepted (normalised: an ``int``, a ``float``, a
``str``) or raises a ``ScenetalkError`` whose one line names the argument.

``name`` is what the user typed, e.g. ``"beam_size (--beam)"``. The limits are those of
``scenetalk.limits`` (README "Limits").
"""

from __future__ import annotations

import math
import numbers
import os

from scenetalk.errors import ScenetalkError
from scenetalk.limits import MAX_SENTENCE_CHARS, MAX_WORDS


def shown(value: object, width: int = 40) -> str:
    """``repr(value)``, cut to ``width`` characters: a message stays one short line."""
    text = repr(value) if not isinstance(value, str) else repr(value.replace("\n", " "))
    return text if len(text) <= width else text[:width - 3] + "..."


def _range_words(low, high) -> str:
    if low is not None and high is not None:
        return f" of at least {low} and at most {high}"
    if low is not None:
        return f" of at least {low}"
    if high is not None:
        return f" of at most {high}"
    return ""


def whole_number(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` when it is a whole number (an ``int`` or numpy integer, never a
    ``bool``, a float or a string) with ``low <= value <= high``; else a ``ScenetalkError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ScenetalkError(f"{name} must be a whole number{_range_words(low, high)} (got {shown(value)})")
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ScenetalkError(f"{name} must be a whole number{_range_words(low, high)} (got {number})")
    return number


def finite_number(name: str, value: object, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a ``float`` when it is a finite real number (not NaN or infinite, not a
    ``bool`` or a string) with ``low <= value <= high``; else a ``ScenetalkError``."""
    what = f"{name} must be a finite number{_range_words(low, high)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ScenetalkError(f"{what} (got {shown(value)})")
    try:
        number = float(value)
    except (OverflowError, ValueError):  # an int too large for a float
        raise ScenetalkError(f"{what} (got {shown(value)})") from None
    if not math.isfinite(number) or (low is not None and number < low) or (high is not None and number > high):
        raise ScenetalkError(f"{what} (got {shown(value)})")
    return number


def sentence(name: str, text: object) -> str:
    """``text`` when it is a ``str`` with at least one word and at most ``MAX_WORDS`` words
    (and ``MAX_SENTENCE_CHARS`` characters); else a ``ScenetalkError``. Longer sentences are
    refused, not truncated: a query's meaning would silently change."""
    if not isinstance(text, str):
        raise ScenetalkError(f"{name} must be a sentence (a str), not {type(text).__name__} (got {shown(text)})")
    if not text.strip():
        raise ScenetalkError(f"{name} is empty: give a sentence of at least one word")
    words = len(text.split())
    if words > MAX_WORDS:
        raise ScenetalkError(f"{name}: a sentence of {words:,} words is over the limit of {MAX_WORDS} "
                             f"(got {shown(text)})")
    if len(text) > MAX_SENTENCE_CHARS:
        raise ScenetalkError(f"{name}: a sentence of {len(text):,} characters is over the limit of "
                             f"{MAX_SENTENCE_CHARS:,} (got {shown(text)})")
    return text


def sentences(name: str, texts: object, single: bool = False) -> list[str]:
    """``texts`` (a list, tuple or other iterable of sentences; with ``single`` one ``str``
    also counts as a list of one) as a list, each checked by ``sentence`` and at least one;
    else a ``ScenetalkError`` naming the argument (and the item)."""
    if isinstance(texts, str):
        if not single:
            raise ScenetalkError(f"{name} must be a list of sentences, not one str (got {shown(texts)})")
        texts = [texts]
    if texts is None or isinstance(texts, (bytes, dict)) or not hasattr(texts, "__iter__"):
        raise ScenetalkError(f"{name} must be a list of sentences (got {shown(texts)})")
    out = [sentence(f"{name}[{i}]", t) for i, t in enumerate(texts)]
    if not out:
        raise ScenetalkError(f"{name} is empty: give at least one sentence")
    return out


def path(name: str, value: object, optional: bool = False) -> str | None:
    """``value`` as a ``str`` path when it is a non-empty ``str`` or ``os.PathLike`` (or, with
    ``optional``, None); else a ``ScenetalkError``."""
    if value is None and optional:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value or "\0" in value:
        raise ScenetalkError(f"{name} must be a path (a non-empty str or Path) (got {shown(value)})")
    return value
