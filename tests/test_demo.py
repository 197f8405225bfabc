"""The README's main job: ``scenetalk demo`` on the bundled sample photos."""

import numpy as np

from scenetalk.cli import main
from scenetalk.data.sample_photos import SAMPLE_PHOTOS, sample_photo_paths
from scenetalk.features.store import FeatureStore


def test_sample_photos_ship_with_the_install():
    paths = sample_photo_paths()
    assert [p.name for p in paths] == [s.file for s in SAMPLE_PHOTOS]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_demo_captions_extracts_features_and_draws_regions(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--beam", "3"]) == 0
    out = capsys.readouterr().out
    assert "chelsea.png" in out and "cat" in out  # the detector finds the cat in the cat photo
    assert out.count("  1. ") == 4 and out.count("  3. ") == 4  # three captions of each photo
    store = FeatureStore.open(tmp_path / "features")
    assert len(store) == 4 and store.regions.shape == (4, 20, 1280)
    assert np.isfinite(np.asarray(store.global_features)).all()
    png = (tmp_path / "regions.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    # a second run finds the store complete and does not extract again
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--beam", "1"]) == 0
    assert "already extracted" in capsys.readouterr().out
