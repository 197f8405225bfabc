"""Shared test fixtures.

``shared_data`` points at the real datasets beside the repository (``../shared/data``, or
``$SCENETALK_SHARED_DATA``); tests that use it are skipped, with a message, when it is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("SCENETALK_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not (root / "flickr8k").is_dir():
        pytest.skip(f"real data not found at {root} (set SCENETALK_SHARED_DATA to its folder)")
    return root


def write_colour_squares(folder: Path, count: int = 18) -> Path:
    """A tiny Karpathy-format dataset of noisy red, blue and green squares (two thirds train,
    the rest val), each with two sentences naming its colour. Returns the JSON's path; the
    images are in ``folder / "images"``."""
    images = folder / "images"
    images.mkdir()
    colours = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30)}
    records, rng = [], np.random.default_rng(0)
    for i in range(count):
        name = list(colours)[i % 3]
        pixels = np.clip(np.array(colours[name]) + rng.normal(0, 10, (64, 64, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(images / f"{i}.jpg")
        split = "train" if i < count * 2 // 3 else "val"
        sents = [f"a {name} square", f"the square is {name}"]
        records.append({"filename": f"{i}.jpg", "imgid": i, "split": split, "sentids": [2 * i, 2 * i + 1],
                        "sentences": [{"raw": s, "tokens": s.split(), "imgid": i, "sentid": 2 * i + k}
                                      for k, s in enumerate(sents)]})
    (folder / "data.json").write_text(json.dumps({"images": records, "dataset": "tiny"}))
    return folder / "data.json"
