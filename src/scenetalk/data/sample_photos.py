"""Built-in sample photos: four freely licensed pictures from scikit-image's data, copied into
the package (``data/photos``, with their licences in its README), so that ``scenetalk demo``
and the tests run on a fresh machine, in the light install too, with no dataset and no network.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
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
    """Paths of the sample photos inside the package."""
    folder = Path(str(resources.files("scenetalk") / "data" / "photos"))
    paths = [folder / p.file for p in SAMPLE_PHOTOS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ScenetalkError(f"sample photo missing from this install: {missing[0]}; reinstall scenetalk")
    return paths
