"""Strict validation of the config dataclasses (models' and trainers'), in one place.

Each config is a plain dataclass whose ``__post_init__`` calls ``check_fields``: the type of
every field comes from its annotation (``int``, ``float``, ``bool``, ``str``, a ``dict``,
``X | None``), the allowed strings from the class's ``choices`` and the ranges from its
``ranges`` (``name -> Bounds``). A wrong value raises a ``FieldError`` naming the key; the
callers that read files (``training.config``, ``checkpoint``) put the file in front. We use
this rather than pydantic: the configs stay the dataclasses the code already passes around,
and the rules are few (a whole number is never a bool or a float, a real number is finite).

``check_size`` counts a model's parameters on PyTorch's ``meta`` device (no memory) before
the model is built for real, so an absurd config fails in milliseconds, not in a 50 GB
allocation.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
import types
import typing
from typing import Any, NamedTuple

from scenetalk.errors import ScenetalkError
from scenetalk.limits import MAX_LAYER_SIZE, MAX_PARAMETERS, MAX_VOCABULARY


class FieldError(ScenetalkError, ValueError):
    """One bad config value: ``key`` (dotted, e.g. ``model.hidden_dim``) and what is wrong."""

    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem
        super().__init__(f"{key} {problem}".strip())

    def within(self, prefix: str) -> FieldError:
        """The same error for a config nested under ``prefix`` (``train``, ``model``)."""
        return FieldError(f"{prefix}.{self.key}" if self.key else prefix, self.problem)


class Bounds(NamedTuple):
    """``low <= value <= high`` (``low < value`` with ``low_open``); None: no bound."""
    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def words(self) -> str:
        low = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low:,}"
        high = "" if self.high is None else f"<= {self.high:,}"
        return " and ".join(w for w in (low, high) if w)

    def holds(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high


#: the bounds of every layer width and of a vocabulary (``scenetalk.limits``)
LAYER = Bounds(1, MAX_LAYER_SIZE)
VOCABULARY = Bounds(5, MAX_VOCABULARY)   # the four special tokens and at least one word
DROPOUT = Bounds(0.0, 0.95)

# YAML 1.1 (PyYAML) reads ``1e-3`` as a string: it wants ``1.0e-3``. A float field takes it.
_EXPONENT_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _field_types(cls: type) -> dict[str, tuple[type, ...]]:
    """The types each field accepts, from its annotation (``NoneType`` for ``| None``)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
            else (hint,)
        out[f.name] = tuple(typing.get_origin(a) or a for a in args)
    return out


def _checked(name: str, value: Any, accepted: tuple[type, ...], bounds: Bounds | None, allowed, default) -> Any:
    if value is None:
        if type(None) in accepted:
            return None
        raise FieldError(name, "is required (got null)")
    if allowed is not None:
        if not isinstance(value, str) or value not in allowed:
            raise FieldError(name, f"must be one of {', '.join(allowed)} (got {_shown(value)})")
        return value
    number = None
    if bool in accepted:
        if not isinstance(value, bool):
            raise FieldError(name, f"must be true or false (got {_shown(value)})")
        return value
    if int in accepted:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            what = f"a whole number {bounds.words()}" if bounds else "a whole number"
            raise FieldError(name, f"must be {what.strip()} (got {_shown(value)})")
        number = value = int(value)
    elif float in accepted:
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            value = float(value)
        what = f"a finite number {bounds.words()}" if bounds else "a finite number"
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise FieldError(name, f"must be {what.strip()} (got {_shown(value)})")
        try:
            number = value = float(value)
        except (OverflowError, ValueError):
            raise FieldError(name, f"must be {what.strip()} (got {_shown(value)})") from None
        if not math.isfinite(number):
            raise FieldError(name, f"must be {what.strip()} (got {_shown(value)})")
    elif str in accepted:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not (value.strip() or value == default):
            raise FieldError(name, f"must be a non-empty string (got {_shown(value)})")
        return value
    elif dict in accepted:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise FieldError(name, f"must be a mapping of settings (got {_shown(value)})")
        return dict(value)
    if number is not None and bounds is not None and not bounds.holds(number):
        kind = "a whole number" if int in accepted else "a finite number"
        raise FieldError(name, f"must be {kind} {bounds.words()} (got {_shown(value)})")
    return value


def check_fields(config: Any) -> None:
    """Check (and normalise: ints to floats for float fields) every field of the dataclass
    ``config`` against its annotation and its class's ``choices`` and ``ranges``; the first
    bad one raises a ``FieldError`` naming it."""
    cls = type(config)
    accepted = _field_types(cls)
    choices = getattr(cls, "choices", {})
    ranges = getattr(cls, "ranges", {})
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for name, types_ in accepted.items():
        value = _checked(name, getattr(config, name), types_, ranges.get(name), choices.get(name), defaults[name])
        object.__setattr__(config, name, value)


def config_from(cls: type, data: Any, partial: bool = False) -> Any:
    """``cls(**data)`` for a dict read from a file, with unknown and missing keys named as a
    ``FieldError`` rather than a ``TypeError``. With ``partial``, missing required fields
    (those the trainer fills in, such as ``vocab_size``) get a valid stand-in value and only
    the given ones are checked; the result is then only good for checking."""
    if not isinstance(data, dict):
        raise FieldError("", f"must be a mapping of settings (got {_shown(data)})")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in data if k not in fields)
    if unknown:
        raise FieldError(unknown[0], f"is not a setting of this model (known: {', '.join(fields)})")
    values = dict(data)
    for name, f in fields.items():
        if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if not partial:
                raise FieldError(name, "is missing")
            values[name] = VOCABULARY.low if name == "vocab_size" else LAYER.low
    return cls(**values)


def check_size(module_class: type, config: Any) -> None:
    """Refuse a model of more than ``MAX_PARAMETERS`` parameters, counted by building it on
    the ``meta`` device (shapes only, no memory)."""
    import torch

    with torch.device("meta"):
        count = sum(p.numel() for p in module_class(config).parameters())
    if count > MAX_PARAMETERS:
        raise FieldError("", f"would have {count:,} parameters, over the limit of {MAX_PARAMETERS:,}; "
                             "use smaller layers (or a smaller vocabulary)")
