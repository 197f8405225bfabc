"""The light install: every inference command runs without PyTorch.

Each command runs in a fresh Python in which PyTorch and the rest of the ``train`` extra
cannot be imported (``sys.modules[name] = None`` makes ``import name`` fail, as it does where
they are not installed), so these tests say the same in the full install as in a venv made
with ``pip install .`` alone, where CI runs them too.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO, copy_sample_photos

#: the train extra's packages, none of which inference may need
TRAIN_EXTRA = ("torch", "onnx", "efficientnet_lite_pytorch", "sentence_transformers", "transformers",
               "pycocoevalcap", "pycocotools", "matplotlib", "skimage", "cv2")
BLOCK = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in TRAIN_EXTRA)


def run_light(code: str, cwd, timeout: int = 300) -> subprocess.CompletedProcess:
    """``code`` in a new Python without the train extra; its stdout, stderr and exit status."""
    return subprocess.run([sys.executable, "-c", BLOCK + code], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=None)


def scenetalk(args: list[str], cwd) -> subprocess.CompletedProcess:
    return run_light(f"from scenetalk.cli import main\nsys.exit(main({args!r}))", cwd)


def test_help_and_the_facade_import_nothing_of_the_train_extra(tmp_path):
    done = run_light("import scenetalk, scenetalk.api, scenetalk.service.app, scenetalk.retrieval.search, "
                     "scenetalk.grounding.word_regions, scenetalk.presentation.report\n"
                     "from scenetalk.cli import build_parser\nbuild_parser()\n"
                     f"print([m for m in sys.modules if m.split('.')[0] in {TRAIN_EXTRA!r} and sys.modules[m]])",
                     tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_backbone_with_no_shipped_graph_says_it_needs_the_train_extra(tmp_path):
    photos = copy_sample_photos(tmp_path / "photos")
    done = scenetalk(["features", "folder", "--images", str(photos), "--backbone", "efficientnet-lite2", "--out",
                      str(tmp_path / "store"), "--quiet"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert "efficientnet-lite2" in done.stderr and 'pip install "scenetalk[train]"' in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "store" / "index.json").exists()


def test_training_commands_say_they_need_the_train_extra(tmp_path):
    for args in (["train", "mrnn_flickr8k"], ["export", "x"], ["learn-word", "kite", "--images", "d", "--captions",
                                                                "c.tsv", "--out", "o"]):
        done = scenetalk(args, tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert "needs PyTorch" in done.stderr and 'pip install "scenetalk[train]"' in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_caption_features_index_search_describe_align_regions_sheet_demo(tmp_path):
    photos = copy_sample_photos(tmp_path / "photos")
    done = scenetalk(["caption", str(photos), "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    captions = {r["image"].split("/")[-1]: r["captions"][0]["text"] for r in json.loads(done.stdout)}
    assert set(captions) == {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"}
    assert all(len(t.split()) >= 3 for t in captions.values())

    done = scenetalk(["features", "folder", "--images", str(photos), "--regions", "--out", str(tmp_path / "store"),
                      "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    index = json.loads((tmp_path / "store" / "index.json").read_text())
    assert index["engine"] == "onnxruntime" and "torch" not in index["versions"]

    (tmp_path / "sentences.txt").write_text("a cat lying on a blanket\na man in a white suit\n"
                                           "a cup of coffee on a table\n")
    done = scenetalk(["index", "build", str(photos), "--out", str(tmp_path / "idx"), "--sentences",
                      str(tmp_path / "sentences.txt"), "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    expected = {"a cat lying on a blanket": "chelsea.png", "a man in a white suit": "astronaut.png",
                "a cup of coffee on a table": "coffee.png"}
    for query, photo in expected.items():
        done = scenetalk(["search", str(tmp_path / "idx"), query, "--top", "1", "--json"], tmp_path)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["hits"][0]["name"] == photo and result["reranked"] > 0   # re-ranked by the captioner
    done = scenetalk(["describe", str(tmp_path / "idx"), "chelsea.png", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    described = json.loads(done.stdout)
    assert described["hits"][0]["sentence"] == "a cat lying on a blanket"
    assert described["reranked"] > 0 and described["hits"][0]["log_ratio"] is not None  # with the stored prior
    # and the hubness the build stored against the shipped bank of photos (retrieval.hubness)
    assert described["hub_weight"] == 1.0 and described["hits"][0]["hubness"] is not None

    done = scenetalk(["align", str(photos / "chelsea.png"), "a cat lying on a blanket", "--out",
                      str(tmp_path / "align.png"), "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "align.png").stat().st_size > 0 and json.loads(done.stdout)["words"]
    done = scenetalk(["regions", str(photos / "astronaut.png"), "--top", "2", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["regions"]) == 2
    done = scenetalk(["sheet", str(tmp_path / "idx"), "a cup", "--out", str(tmp_path / "sheet.png"),
                      "--images", str(photos)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "sheet.png").stat().st_size > 0
    done = scenetalk(["demo", "--out", str(tmp_path / "demo")], tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_captions_in_chinese_and_german_without_pytorch(tmp_path):
    photos = copy_sample_photos(tmp_path / "photos")
    for lang in ("zh", "de"):
        done = scenetalk(["caption", str(photos), "--lang", lang, "--json", "--quiet"], tmp_path)
        assert done.returncode == 0, done.stderr
        captions = [item["captions"][0] for item in json.loads(done.stdout)]
        assert len(captions) == 4 and all(c["text"] and c["words"] for c in captions)
        for c in captions:
            if lang == "zh":   # Chinese characters, written without spaces between the words
                assert " " not in c["text"] and any("\u4e00" <= ch <= "\u9fff" for ch in c["text"])
                assert c["text"] == "".join(c["words"])
            else:
                assert c["text"].lower() == " ".join(c["words"]) and c["text"][0].isupper()


def test_the_web_service_answers_without_pytorch(tmp_path):
    photo = copy_sample_photos(tmp_path / "photos") / "coffee.png"
    code = f"""
from fastapi.testclient import TestClient
from scenetalk.service import ServiceSettings, create_app
import time
with TestClient(create_app(ServiceSettings())) as client:
    for _ in range(600):
        if client.get("/readyz").status_code == 200:
            break
        time.sleep(0.1)
    with open({str(photo)!r}, "rb") as f:
        answer = client.post("/v1/caption", files={{"image": ("coffee.png", f, "image/png")}})
    print(answer.status_code, answer.text)
"""
    done = run_light(code, tmp_path)
    assert done.returncode == 0, done.stderr
    status, body = done.stdout.strip().split(" ", 1)
    assert status == "200", body
    assert len(json.loads(body)["captions"][0]["text"].split()) >= 3


def test_the_light_route_is_in_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert 'pip install "scenetalk[train]"' in readme and "bootstrap.sh --light" in readme


def test_the_package_stays_within_90_mb():
    # the shipped graphs read their checkpoints' weights in place: nothing is on disk twice.
    # 90 MiB (80 before the top-down captioner joined; it ships in int8, 9.4 MiB, beside the
    # alignment model's 12 MiB bank of photos for describe): its wheel stays under PyPI's 100 MB
    # a file
    from pathlib import Path

    import scenetalk

    package = Path(scenetalk.__file__).parent
    size = sum(p.stat().st_size for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert size <= 90 * 2**20, f"{size / 2**20:.1f} MB"
