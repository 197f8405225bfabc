"""Shared test fixtures.

``shared_data`` points at the real datasets beside the repository (``../shared/data``, or
``$SCENETALK_SHARED_DATA``); tests that use it are skipped, with a message, when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("SCENETALK_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not (root / "flickr8k").is_dir():
        pytest.skip(f"real data not found at {root} (set SCENETALK_SHARED_DATA to its folder)")
    return root
