"""``scenetalk report``: an HTML folder with one section per photo and every picture it links,
all text escaped; on a tiny dataset of the sample photos (features extracted here) and on the
real Flickr8K test split; bad input is one line and leaves no folder behind."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image
from test_entities import NAME as ANNOTATED
from test_entities import write as write_entities

from scenetalk.cli import main
from scenetalk.data.sample_photos import sample_photo_paths

REPO = Path(__file__).resolve().parents[1]
REAL_STORE = REPO / "features" / "flickr8k-regions"
#: Flickr-style names (so Flickr30K Entities can be looked up); the first is annotated by
#: test_entities' files, the others are not.
NAMES = (ANNOTATED, "2000_aaaa.jpg", "3000_bbbb.jpg", "4000_cccc.jpg")
NASTY = 'A <b>bold</b> cat & a "dog" on <script>alert(1)</script> a sofa .'
#: Two sentences for each sample photo (astronaut, chelsea the cat, coffee, rocket).
SENTENCES = (["a man in a white suit", "a woman in a space suit smiles"], ["a cat looks at the camera", NASTY],
             ["a cup of coffee on a table", "a white cup on a plate"], ["a rocket in the sky", "a launch of a rocket"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A data root with a 4-photo Karpathy dataset (all test) and Flickr30K Entities for one
    photo, and a feature store of the photos made by the shipped models' extractor."""
    from scenetalk.features.extract import extract

    root = tmp_path_factory.mktemp("data")
    images = root / "flickr8k" / "images"
    images.mkdir(parents=True)
    entries = []
    for k, (name, photo) in enumerate(zip(NAMES, sample_photo_paths())):
        Image.open(photo).convert("RGB").save(images / name)
        entries.append({"filename": name, "imgid": k, "split": "test",
                        "sentences": [{"raw": s, "tokens": s.lower().split(), "sentid": 2 * k + j}
                                      for j, s in enumerate(SENTENCES[k])]})
    (root / "flickr8k" / "dataset_flickr8k.json").write_text(json.dumps({"dataset": "flickr8k", "images": entries}))
    (root / "flickr30k_entities").mkdir()
    write_entities(root / "flickr30k_entities")
    store = root / "store"
    extract([(n, images / n) for n in NAMES], store, regions=True, grid=False, progress=False)
    return root, store


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def check_report(folder: Path, sections: int) -> str:
    """The report's HTML, after checking its sections and that every picture it links exists
    inside the folder (relative links only)."""
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<section id="photo-\d+">', page)) == sections
    assert page.count('<li><a href="#photo-') == sections           # the table of contents
    pictures = re.findall(r'<img src="([^"]+)"', page)
    assert pictures and all("/" not in p and (folder / p).is_file() for p in pictures)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["index.html", *pictures])
    assert "<script" not in page and "scenetalk report --features" in page
    return page


@pytest.mark.slow
def test_report_of_two_sample_photos(tiny, tmp_path, capsys):
    root, store = tiny
    out = tmp_path / "report"
    code, stdout, err = run_cli(capsys, "report", "--features", store, "--root", root, "--images",
                                f"{NAMES[1]},{ANNOTATED}", "--out", out, "--quiet")
    assert code == 0, err
    assert "2 photos" in stdout
    page = check_report(out, 2)
    # The photo whose sentence has markup: shown as text, never as tags.
    assert "A &lt;b&gt;bold&lt;/b&gt; cat &amp; a &quot;dog&quot; on &lt;script&gt;" in page
    assert "<b>bold</b>" not in page
    # Every photo's sentences are ranked; its own are marked.
    assert page.count('<span class="badge">own</span>') >= 2 and "of 8</p>" in page
    # Human boxes only for the annotated photo; the other says why not.
    assert (out / "02-humans.png").is_file() and not (out / "01-humans.png").exists()
    assert "not annotated in Flickr30K Entities" in page and "a pink dress" in page
    assert "scenetalk/weights/alignment (shipped)" in page

    # Run again into the same folder: the old report is replaced, nothing else is left beside it.
    code, _, err = run_cli(capsys, "report", "--features", store, "--root", root, "--n", "3", "--seed", "1",
                           "--out", out, "--quiet")
    assert code == 0, err
    check_report(out, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


@pytest.mark.parametrize("argv, message", [
    (["--images", "2000_aaaa.jpg,nope.jpg"], "no image 'nope.jpg' in the test split of flickr8k"),
    (["--images", "2000_aaaa.jpg", "--split", "val"], "no images in split 'val'"),
    (["--n", "0"], "--n must be at least 1"),
    (["--beta", "-1"], "--beta) must be a finite number of at least 0"),
    pytest.param(["--captioner", "{store}"], "not a scenetalk checkpoint", marks=pytest.mark.slow),
])
def test_bad_input_is_one_line_and_leaves_no_folder(argv, message, tiny, tmp_path, capsys):
    root, store = tiny
    argv = [a.format(store=store) for a in argv]
    out = tmp_path / "report"
    code, stdout, err = run_cli(capsys, "report", "--features", store, "--root", root, "--out", out, "--quiet",
                                *argv)
    assert code == 2 and stdout == ""
    assert err.startswith("scenetalk report: error: ") and err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_an_other_folder_is_never_replaced(tiny, tmp_path, capsys):
    root, store = tiny
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "report", "--features", store, "--root", root, "--n", "1", "--out", tmp_path)
    assert code == 2 and "is not a report folder" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.shared_data
@pytest.mark.slow
def test_report_on_flickr8k_test(shared_data, tmp_path, capsys):
    if not (REAL_STORE / "index.json").is_file():
        pytest.skip(f"the Flickr8K region feature store is not at {REAL_STORE} "
                    "(make it with `scenetalk features --regions`)")
    out = tmp_path / "report"
    code, _, err = run_cli(capsys, "report", "--features", REAL_STORE, "--root", shared_data, "--split", "test",
                           "--n", "2", "--out", out, "--quiet")
    assert code == 0, err
    page = check_report(out, 2)
    assert "of 5,000</p>" in page and page.count('-humans.png"') == 2   # every test photo is annotated

    code, _, err = run_cli(capsys, "report", "--features", REAL_STORE, "--root", shared_data,
                           "--images", "not-a-photo.jpg", "--out", tmp_path / "bad", "--quiet")
    assert code == 2 and "no image 'not-a-photo.jpg'" in err and not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_write_report_from_python(tiny, tmp_path):
    from scenetalk.presentation.report import write_report
    from scenetalk.results import to_data

    root, store = tiny
    out = tmp_path / "report"
    summary = write_report(store, out, root=root, images=[ANNOTATED], progress=False)
    assert summary.index == str(out / "index.html") and summary.photos == 1
    assert summary.pictures == len(list(out.glob("*.png"))) == 3          # alignment, regions, humans
    assert [r.image.relpath for r in summary.reports] == [ANNOTATED]
    assert to_data(summary) == {"index": str(out / "index.html"), "photos": 1, "pictures": 3}
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "1 named with --images from the 4 of the test split" in page and "<pre></pre>" in page  # no command


@pytest.mark.parametrize("options, message", [
    ({"n": 0}, r"--n must be at least 1 \(got 0\)"),
    ({"beta": -0.5}, r"--beta\) must be a finite number of at least 0 \(got -0.5\)"),
    ({"top_regions": 20}, r"--top-regions must be between 1 and 19, the detections kept per photo \(got 20\)"),
    pytest.param({"captioner": "{tmp}/nowhere"}, "nowhere: not a scenetalk checkpoint", marks=pytest.mark.slow),
])
def test_write_report_refuses_bad_arguments_and_writes_nothing(options, message, tiny, tmp_path):
    from scenetalk.errors import ScenetalkError
    from scenetalk.presentation.report import write_report

    root, store = tiny
    options = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in options.items()}
    with pytest.raises(ScenetalkError, match=message):
        write_report(store, tmp_path / "report", root=root, progress=False, **{"n": 1, **options})
    assert list(tmp_path.iterdir()) == []


def test_a_store_without_regions_is_refused(tiny, tmp_path, capsys):
    from scenetalk.features.extract import extract

    root, store = tiny
    images = root / "flickr8k" / "images"
    extract([(n, images / n) for n in NAMES[:1]], tmp_path / "global", grid=False, progress=False)
    code, stdout, err = run_cli(capsys, "report", "--features", tmp_path / "global", "--root", root,
                                "--out", tmp_path / "report", "--quiet")
    assert code == 2 and stdout == ""
    assert "has no region features; extract them with `scenetalk features --regions`" in err
    assert not (tmp_path / "report").exists()
