"""Reading dataset files so that every failure names the file and the place in it.

All dataset loaders read their files through these helpers: a missing file, a broken gzip
stream, bytes that are not in the expected encoding, and invalid JSON all become a
``DataError`` naming the file and the line (or byte offset, or JSON line and column).
Files ending in ``.gz`` are decompressed transparently. A UTF-8 byte-order mark is dropped.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from scenetalk.data.schema import SPLITS
from scenetalk.errors import DataError
from scenetalk.progress import progress_bar

T = TypeVar("T")

#: Loops over at least this many items show a progress bar (on a terminal only): about the
#: number of sentences tokenized, or image files looked up, in a couple of seconds.
PROGRESS_THRESHOLD = 100_000


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes (decompressed if the name ends in ``.gz``)."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except IsADirectoryError:
        raise DataError(path, "is a folder, expected a file") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(path, f"cannot read: {exc}") from None


def decode(data: bytes, path: str | os.PathLike, encodings: Sequence[str] = ("utf-8",)) -> str:
    """Decode with the first encoding that works; the error names the byte and its line."""
    for encoding in encodings[:-1]:
        try:
            return _strip_bom(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    encoding = encodings[-1]
    try:
        return _strip_bom(data.decode(encoding))
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            path,
            f"cannot decode byte 0x{data[exc.start]:02x} as {encoding} "
            f"(is the file in another encoding?)",
            record=f"line {line}, byte offset {exc.start}",
        ) from None


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def read_text(path: str | os.PathLike, encodings: Sequence[str] = ("utf-8",)) -> str:
    return decode(read_bytes(path), path, encodings)


def read_lines(path: str | os.PathLike, encodings: Sequence[str] = ("utf-8",),
               skip_blank: bool = True) -> list[tuple[int, str]]:
    """``(line number, line)`` pairs, 1-based, with trailing whitespace (and ``\\r``) removed.

    Only ``\\n`` ends a line (not the other characters ``str.splitlines`` breaks on, which
    can occur inside captions). Blank lines are left out unless ``skip_blank`` is false; a
    final newline never adds an empty line.
    """
    text = read_text(path, encodings)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    numbered = [(i, line.rstrip()) for i, line in enumerate(lines, start=1)]
    return [(i, line) for i, line in numbered if line] if skip_blank else numbered


def read_json(path: str | os.PathLike) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON: {exc.msg}",
                        record=f"line {exc.lineno} column {exc.colno}") from None


def read_split_lists(split_files: Mapping[str, str | os.PathLike],
                     resolve: Callable[[str], str | None],
                     captions_path: str | os.PathLike) -> dict[str, str]:
    """Read split lists (one image per line) into ``{image name: split}``.

    ``resolve`` turns a list entry into the image's name, or None when no image of that
    name has captions; such an entry, or an image listed twice, is a ``DataError`` naming
    the list file and line.
    """
    assigned: dict[str, tuple[str, Path, int]] = {}
    for split, list_path in split_files.items():
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        list_path = Path(list_path)
        for lineno, entry in read_lines(list_path):
            entry = entry.strip()
            name = resolve(entry)
            if name is None:
                raise DataError(list_path, f"image {entry!r} has no captions in {captions_path}",
                                record=f"line {lineno}")
            if name in assigned:
                _, other, other_line = assigned[name]
                raise DataError(list_path, f"image {name!r} is listed twice "
                                f"(also in {other} line {other_line})", record=f"line {lineno}")
            assigned[name] = (split, list_path, lineno)
    return {name: split for name, (split, _, _) in assigned.items()}


def progress(items: Iterable[T], total: int, desc: str,
             threshold: int = PROGRESS_THRESHOLD) -> Iterator[T]:
    """Wrap a long loop in a tqdm bar on stderr (only for ``total >= threshold``, only on a terminal)."""
    if total < threshold:
        return iter(items)
    return iter(progress_bar(items, total=total, desc=desc, unit="item", leave=False, disable=None))
