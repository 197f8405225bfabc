"""The README's main job: ``scenetalk demo`` on the bundled sample photos."""

import numpy as np
import pytest

from scenetalk.cli import main
from scenetalk.data.sample_photos import SAMPLE_PHOTOS, sample_photo_paths
from scenetalk.features.store import FeatureStore


def test_sample_photos_ship_with_the_install():
    paths = sample_photo_paths()
    assert [p.name for p in paths] == [s.file for s in SAMPLE_PHOTOS]
    assert all(p.stat().st_size > 10_000 for p in paths)


@pytest.mark.slow
def test_demo_captions_extracts_features_and_draws_regions(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--beam", "3"]) == 0
    out = capsys.readouterr().out
    # the detector finds the cat in the cat photo: "chelsea.png  <licence>  detected: cat 0.93, ..."
    chelsea = next(line for line in out.splitlines() if line.startswith("chelsea.png ") and "detected: " in line)
    assert "cat" in [d.rsplit(" ", 1)[0] for d in chelsea.split("detected: ", 1)[1].split(", ")], chelsea
    assert out.count("  1. ") == 4 and out.count("  3. ") == 4  # three captions of each photo
    store = FeatureStore.open(tmp_path / "features")
    assert len(store) == 4 and store.regions.shape == (4, 20, 1280)
    assert np.isfinite(np.asarray(store.global_features)).all()
    png = (tmp_path / "regions.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    # a second run finds the store complete and does not extract again
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--beam", "1"]) == 0
    assert "already extracted" in capsys.readouterr().out


def test_demo_picture_draws_confident_detections_under_titles_that_fit():
    from PIL import Image

    from scenetalk.presentation.demo import confident_detections
    from scenetalk.presentation.pictures import MARGIN, detections_picture

    scores = np.array([1.0, 0.91, 0.33, 0.06, 0.5, 0.3, 0.29])
    # The whole photo (region 0) and the boxes under the threshold are neither listed nor drawn.
    assert confident_detections(scores, 0.3) == [1, 4, 2, 5]
    assert confident_detections(scores, 0.3, most=2) == [1, 4] and confident_detections(scores, 0.95) == []
    photo = Image.new("RGB", (300, 200), (90, 140, 200))
    boxes = np.array([[0.1, 0.1, 0.5, 0.5]])
    short = detections_picture([(photo, "a.png\na cat", boxes, ["cat 0.91"])], size=300)
    long = detections_picture([(photo, "a.png\n" + "a cat on a very long caption " * 8, boxes, ["cat 0.91"])],
                              size=300)
    # A long title takes more lines, within the panel: nothing is drawn in the right margin.
    assert short.width == long.width == 300 + 2 * MARGIN and long.height > short.height
    right_margin = np.asarray(long.convert("L"))[:, 300 + MARGIN + 1:]
    assert (right_margin == 255).all()


@pytest.mark.slow
def test_demo_json_is_the_result_and_bad_arguments_are_one_line(tmp_path, capsys):
    import json

    assert main(["demo", "--out", str(tmp_path), "--quiet", "--beam", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in result["photos"]] == [s.file for s in SAMPLE_PHOTOS]
    assert all(len(p["captions"]) == 1 and p["captions"][0]["text"] for p in result["photos"])
    chelsea = next(p for p in result["photos"] if p["name"] == "chelsea.png")
    assert "cat" in [d["class"] for d in chelsea["detections"]]
    assert all(d["score"] >= 0.3 for p in result["photos"] for d in p["detections"])
    assert len(result["similarity"]) == 4 and result["similarity"][0][0] == 1.0
    for argv in (["--beam", "0"], ["--min-score", "2"]):
        assert main(["demo", "--out", str(tmp_path / "bad"), "--quiet", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error" in err
        assert not (tmp_path / "bad").exists()
