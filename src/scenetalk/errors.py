"""The errors scenetalk raises for user mistakes.

Every user-facing error is a ``ScenetalkError``: the command line prints its message on one
line and exits non-zero, without a traceback. Messages name the file (and record or line)
that is wrong, so the user can fix it.
"""

from __future__ import annotations

import os


class ScenetalkError(Exception):
    """A user mistake or bad input; its message is shown as is."""


class DataError(ScenetalkError):
    """Malformed dataset file. ``where`` is the file, ``record`` the line or record in it."""

    def __init__(self, path: str | os.PathLike, message: str, record: str | int | None = None):
        self.path = os.fspath(path)
        self.record = record
        where = self.path if record is None else f"{self.path}: {record}"
        super().__init__(f"{where}: {message}")


class ImageError(ScenetalkError):
    """An image that cannot be read (missing, truncated, not an image, too large)."""

    def __init__(self, path: str | os.PathLike, message: str):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {message}")


class FeatureStoreError(ScenetalkError):
    """A feature store that is missing, incomplete, or made by another extractor."""


class SearchIndexError(ScenetalkError):
    """A search index that is missing, damaged, or made with another model."""


class CheckpointError(ScenetalkError):
    """A checkpoint that is missing, damaged, or made for other features."""
