"""Shared test fixtures.

``shared_data`` points at the real datasets beside the repository (``../shared/data``, or
``$SCENETALK_SHARED_DATA``); tests that use it are skipped, with a message, when it is absent.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import jieba
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def hermetic_home(tmp_path_factory) -> Path:
    """Every cache the tests fill goes under one temporary folder, so a test run writes
    nothing to ``$HOME`` or the repository: scenetalk's ONNX exports (``SCENETALK_CACHE``),
    matplotlib's font cache and config, ONNX Runtime's ``~/.cache/Microsoft`` device id,
    torch hub, and jieba's dictionary cache (otherwise ``/tmp/jieba.cache``). Session-scoped
    because exporting a backbone to ONNX takes 2-4 s per input size; subprocesses the tests
    start inherit the environment.

    Also one intra-op thread: the tests' models are tiny, and on a shared 2-core machine two
    threads spin against each other (a toy alignment run: 2.5 s with one thread, 15 s with two,
    same numbers)."""
    home = tmp_path_factory.mktemp("home")
    torch = sys.modules.get("torch") or (importlib.import_module("torch") if importlib.util.find_spec("torch")
                                         else None)   # the light install has none
    threads = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        for name, folder in {"HOME": home, "XDG_CACHE_HOME": home / ".cache", "XDG_CONFIG_HOME": home / ".config",
                             "SCENETALK_CACHE": home / ".cache" / "scenetalk",
                             "MPLCONFIGDIR": home / ".config" / "matplotlib",
                             "TORCH_HOME": home / ".cache" / "torch"}.items():
            mp.setenv(name, str(folder))
        mp.setenv("OMP_NUM_THREADS", "1")  # the same in the subprocesses some tests start
        mp.setattr(jieba.dt, "tmp_dir", str(home))
        yield home
    if torch:
        torch.set_num_threads(threads)


class FakeWordVectors:
    """Stands in for the pretrained word vectors (``data.word_vectors``): each word a fixed random
    unit vector (so no two words are near each other), except the ``SYNONYMS``, which sit next to
    their known word. Loading the real encoder takes seconds; tests marked ``word_vectors`` get it."""
    SYNONYMS = {"kitten": "cat", "puppy": "dog", "mug": "cup"}

    def vectors(self, words):
        out = []
        for w in words:
            base = self.SYNONYMS.get(w, w)
            v = np.random.default_rng(list(base.encode())).standard_normal(384)
            if w != base:
                v = v + 0.1 * np.random.default_rng(list(w.encode())).standard_normal(384)
            out.append(v / np.linalg.norm(v))
        return np.array(out, dtype=np.float32).reshape(len(words), 384)

    def nearest(self, word, candidates, k=1):
        sims = self.vectors(list(candidates)) @ self.vectors([word])[0]
        order = np.argsort(-sims, kind="stable")[:k]
        return [(candidates[i], float(sims[i])) for i in order]


@pytest.fixture(autouse=True)
def fake_word_vectors(request, monkeypatch):
    if request.node.get_closest_marker("word_vectors") is None:
        import scenetalk.data.word_vectors as wv

        monkeypatch.setattr(wv, "_shared", FakeWordVectors())


def shared_data_dir() -> Path:
    return Path(os.environ.get("SCENETALK_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not (root / "flickr8k").is_dir():
        pytest.skip(f"real data not found at {root} (set SCENETALK_SHARED_DATA to its folder)")
    return root


def copy_sample_photos(folder: Path) -> Path:
    """The bundled sample photos (``data.sample_photos``) copied into ``folder`` (made if
    needed), for tests that need a folder of real photos they may change."""
    import shutil

    from scenetalk.data.sample_photos import sample_photo_paths

    folder.mkdir(parents=True, exist_ok=True)
    for p in sample_photo_paths():
        shutil.copy(p, folder / p.name)
    return folder


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


@pytest.fixture(scope="session")
def squares(tmp_path_factory) -> Path:
    """18 colour squares (12 train, 6 val: ``write_colour_squares``) and their feature store
    (``features/``, with region features), for training runs end to end."""
    from scenetalk.cli import main

    folder = tmp_path_factory.mktemp("squares")
    write_colour_squares(folder)
    assert main(["features", str(folder / "data.json"), "--images", str(folder / "images"), "--regions",
                 "--out", str(folder / "features"), "--quiet"]) == 0
    return folder
