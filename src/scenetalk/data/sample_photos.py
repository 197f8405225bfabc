"""Built-in sample photos: freely licensed pictures that ship inside scikit-image's wheel.

They let ``scenetalk demo`` and the tests run on a fresh machine with no dataset and no
network. Licences are scikit-image's own notes for each file.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from scenetalk.errors import ScenetalkError


@dataclass(frozen=True)
class SamplePhoto:
    name: str
    file: str
    licence: str


SAMPLE_PHOTOS = (
    SamplePhoto("astronaut", "astronaut.png", "public domain (NASA)"),
    SamplePhoto("chelsea", "chelsea.png", "CC0 (Stefan van der Walt)"),
    SamplePhoto("coffee", "coffee.png", "CC0 (Rachel Michetti)"),
    SamplePhoto("rocket", "rocket.jpg", "public domain (SpaceX)"),
)


def sample_photo_paths() -> list[Path]:
    """Paths of the sample photos, found without importing scikit-image (which is slow)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ScenetalkError("the sample photos come with scikit-image; install it with `pip install scikit-image`")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    paths = [folder / p.file for p in SAMPLE_PHOTOS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ScenetalkError(f"sample photo missing from the scikit-image install: {missing[0]}")
    return paths
