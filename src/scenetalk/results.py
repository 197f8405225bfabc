"""One JSON form for every result scenetalk returns.

Results are plain dataclasses (``Caption``, ``SearchResult``, ...). ``to_data`` turns one (or a
list or dict of them) into JSON-ready Python data, the same way everywhere: the CLI's
``--json`` prints ``to_json(result)``, and the web API will answer with it. The rules:

* a dataclass becomes a dict of its fields, in their order; fields whose metadata says
  ``json=False`` are left out (internal arrays a caller of the API may want, JSON may not);
* floats are rounded to 4 decimals (scores and log-probabilities mean nothing beyond that),
  and NaN or infinity become ``null`` (JSON has neither);
* paths become strings; NumPy scalars and arrays and PyTorch tensors become numbers and lists;
  tuples and sets become lists (sets sorted).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from typing import Any

DECIMALS = 4


def to_data(obj: Any) -> Any:
    """``obj`` as JSON-ready data (dicts, lists, strings, numbers, booleans, None)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.metadata.get("json", True)}
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return round(obj, DECIMALS) if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_data(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [to_data(v) for v in sorted(obj)]
    if hasattr(obj, "tolist"):  # NumPy scalars and arrays, PyTorch tensors
        return to_data(obj.tolist())
    raise TypeError(f"to_data: cannot turn a {type(obj).__name__} into JSON")


def to_json(obj: Any, indent: int | None = 1) -> str:
    """``to_data(obj)`` as JSON text (UTF-8 characters kept, not escaped)."""
    return json.dumps(to_data(obj), indent=indent, ensure_ascii=False)
