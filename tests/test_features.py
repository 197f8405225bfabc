"""The feature store and resumable extraction (scenetalk.features), and ``scenetalk features``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from scenetalk import cli
from scenetalk.errors import FeatureStoreError, ImageError, ScenetalkError
from scenetalk.features.extract import PROGRESS_FILE, Extractor, extract
from scenetalk.features.store import INDEX_FILE, PARTIAL_DIR, FeatureStore
from scenetalk.vision.backbones import create_backbone
from scenetalk.vision.regions import GRID_CLASS, IMAGE_CLASS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def backbone():
    return create_backbone()


@pytest.fixture(scope="module")
def extractor(backbone):
    return Extractor(backbone)


def make_images(folder, count: int, size=(48, 40), seed: int = 0) -> list[tuple[str, str]]:
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(count):
        name = f"img{i:02d}.png"
        array = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(array).save(os.path.join(folder, name))
        items.append((name, os.path.join(folder, name)))
    return items


class Interrupt(Exception):
    pass


def stop_after(images: int):
    def hook(done):
        if done >= images:
            raise Interrupt
    return hook


def counting(extractor: Extractor) -> tuple[Extractor, list[int]]:
    """The extractor, with its torch step counting the images it computes."""
    seen: list[int] = []
    original = extractor.compute

    class Counting(Extractor):
        def compute(self, prepared):
            seen.append(len(prepared["global"]))
            return original(prepared)

    counted = Counting.__new__(Counting)
    counted.__dict__.update(extractor.__dict__)
    return counted, seen


def test_round_trip(tmp_path, extractor):
    items = make_images(tmp_path / "images", 5)
    out = tmp_path / "store"
    result = extract(items, out, batch_size=2, progress=False, extractor=extractor)
    assert result.computed == 5 and not result.already_done and result.count == 5

    store = FeatureStore.open(out, expect_extractor_id=extractor.extractor_id)
    assert store.names == [n for n, _ in items] and len(store) == 5
    assert store.global_features.shape == (5, 1280) and store.global_features.dtype == np.float32
    assert store.grid.shape == (5, 49, 1280) and store.grid.dtype == np.float16
    assert isinstance(store.global_features, np.memmap)
    assert not store.has_regions and store.row("img03.png") == 3 and "img04.png" in store
    with pytest.raises(FeatureStoreError, match="regions"):
        store.regions

    direct = extractor.features([Image.open(p).convert("RGB") for _, p in items])
    assert np.allclose(store.global_features, direct["global"], atol=1e-4)
    assert np.allclose(store.grid.astype(np.float32), direct["grid"].astype(np.float32), atol=1e-2)
    assert np.allclose(store.grid.astype(np.float32).mean(1), store.global_features, atol=1e-2)

    index = json.loads((out / INDEX_FILE).read_text())
    assert index["extractor_id"] == extractor.extractor_id == result.extractor_id
    assert index["arrays"]["global"] == {"shape": [5, 1280], "dtype": "float32"}
    assert index["extractor"]["backbone"]["weights_sha256"] == extractor.backbone.weights_sha256
    assert index["bad"] == []
    assert sorted(os.listdir(out)) == ["global.npy", "grid.npy", INDEX_FILE]  # no .partial left


def test_extractor_ids(backbone):
    sha = backbone.weights_sha256[:12]
    assert Extractor(backbone).extractor_id == f"efficientnet-lite0-224-{sha}"
    with_regions = Extractor(backbone, regions=True, region_method="roi", region_size=448)
    det = with_regions.detector.weights_sha256[:12]
    assert with_regions.extractor_id == f"efficientnet-lite0-224-{sha}+ssd-mobilenet-v2-coco-{det}-top19-roi448"
    crop = Extractor(backbone, regions=True, region_method="crop", detector=with_regions.detector)
    assert crop.extractor_id.endswith("-top19-crop224")


def test_open_errors(tmp_path, extractor):
    with pytest.raises(FeatureStoreError, match="no feature store"):
        FeatureStore.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FeatureStoreError, match="not a feature store"):
        FeatureStore.open(tmp_path / "empty")

    items = make_images(tmp_path / "images", 2)
    out = tmp_path / "store"
    extract(items, out, progress=False, extractor=extractor)
    with pytest.raises(FeatureStoreError) as exc_info:
        FeatureStore.open(out, expect_extractor_id="efficientnet-lite2-260-0123456789ab")
    message = str(exc_info.value)
    assert extractor.extractor_id in message and "efficientnet-lite2-260-0123456789ab" in message
    assert str(out) in message

    os.unlink(out / "grid.npy")
    with pytest.raises(FeatureStoreError, match="grid.npy: missing"):
        FeatureStore.open(out)
    np.save(out / "grid.npy", np.zeros((1, 49, 1280), np.float16))
    with pytest.raises(FeatureStoreError, match="expected shape"):
        FeatureStore.open(out)
    (out / INDEX_FILE).write_text("{not json")
    with pytest.raises(FeatureStoreError, match="unreadable index"):
        FeatureStore.open(out)


def test_resume_after_interruption(tmp_path, extractor):
    items = make_images(tmp_path / "images", 9)
    out = tmp_path / "store"
    first, seen_first = counting(extractor)
    with pytest.raises(Interrupt):
        extract(items, out, batch_size=2, progress=False, extractor=first, on_batch=stop_after(4))
    assert seen_first == [2, 2]

    # Nothing half-written is visible: no index, no arrays outside .partial.
    assert sorted(os.listdir(out)) == [PARTIAL_DIR]
    with pytest.raises(FeatureStoreError, match="interrupted"):
        FeatureStore.open(out)
    progress = json.loads((out / PARTIAL_DIR / PROGRESS_FILE).read_text())
    assert progress["done"] == 4 and progress["extractor_id"] == extractor.extractor_id

    second, seen_second = counting(extractor)
    done_at = []
    result = extract(items, out, batch_size=2, progress=False, extractor=second, on_batch=done_at.append)
    assert seen_second == [2, 2, 1]  # the four finished images were not recomputed
    assert done_at == [6, 8, 9]
    assert result.resumed_from == 4 and result.computed == 5

    reference = tmp_path / "reference"
    extract(items, reference, batch_size=2, progress=False, extractor=extractor)
    resumed, whole = FeatureStore.open(out), FeatureStore.open(reference)
    assert resumed.names == whole.names
    assert np.array_equal(resumed.global_features, whole.global_features)
    assert np.array_equal(resumed.grid, whole.grid)


def test_nothing_visible_until_complete(tmp_path, extractor):
    items = make_images(tmp_path / "images", 5)
    out = tmp_path / "store"
    listings = []

    def look(done):
        listings.append(sorted(os.listdir(out)))
        with pytest.raises(FeatureStoreError, match="incomplete"):
            FeatureStore.open(out)

    extract(items, out, batch_size=2, progress=False, extractor=extractor, on_batch=look)
    assert listings == [[PARTIAL_DIR]] * 3
    FeatureStore.open(out)


def test_crash_while_moving_arrays_into_place(tmp_path, extractor):
    items = make_images(tmp_path / "images", 4)
    out = tmp_path / "store"
    with pytest.raises(Interrupt):  # every image done, nothing moved yet
        extract(items, out, batch_size=2, progress=False, extractor=extractor, on_batch=stop_after(4))
    os.replace(out / PARTIAL_DIR / "global.npy", out / "global.npy")  # one moved, then the crash
    with pytest.raises(FeatureStoreError):
        FeatureStore.open(out)
    counted, seen = counting(extractor)
    result = extract(items, out, batch_size=2, progress=False, extractor=counted)
    assert seen == [] and result.resumed_from == 4 and result.computed == 0
    assert FeatureStore.open(out).global_features.shape == (4, 1280)


def test_partial_of_another_extractor_is_refused(tmp_path, extractor, backbone):
    items = make_images(tmp_path / "images", 4)
    out = tmp_path / "store"
    with pytest.raises(Interrupt):
        extract(items, out, batch_size=2, progress=False, extractor=extractor, on_batch=stop_after(2))
    other = Extractor(backbone, grid=False)
    with pytest.raises(FeatureStoreError, match="interrupted extraction"):
        extract(items, out, batch_size=2, progress=False, extractor=other)
    with pytest.raises(FeatureStoreError, match="another image list"):
        extract(items[:3], out, batch_size=2, progress=False, extractor=extractor)
    result = extract(items[:3], out, batch_size=2, progress=False, extractor=extractor, overwrite=True)
    assert result.resumed_from == 0 and FeatureStore.open(out).names == [n for n, _ in items[:3]]


@pytest.mark.slow
def test_kill_9_then_resume(tmp_path):
    items = make_images(tmp_path / "images", 6)
    out = tmp_path / "store"
    script = textwrap.dedent(f"""
        import os, signal
        from scenetalk.features.extract import extract
        def hook(done):
            if done >= 4:
                os.kill(os.getpid(), signal.SIGKILL)
        extract({items!r}, {str(out)!r}, batch_size=2, progress=False, on_batch=hook)
    """)
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    assert not (out / INDEX_FILE).exists()
    assert json.loads((out / PARTIAL_DIR / PROGRESS_FILE).read_text())["done"] == 4

    result = extract(items, out, batch_size=2, progress=False)
    assert result.resumed_from == 4 and result.computed == 2
    reference = extract(items, tmp_path / "reference", batch_size=2, progress=False)
    assert reference.extractor_id == result.extractor_id
    assert np.array_equal(FeatureStore.open(out).global_features,
                          FeatureStore.open(tmp_path / "reference").global_features)


def test_already_extracted_is_a_no_op(tmp_path, extractor, backbone):
    items = make_images(tmp_path / "images", 3)
    out = tmp_path / "store"
    extract(items, out, progress=False, extractor=extractor)
    before = {name: os.stat(out / name).st_mtime_ns for name in os.listdir(out)}
    counted, seen = counting(extractor)
    again = extract(items, out, progress=False, extractor=counted)
    assert again.already_done and again.computed == 0 and seen == []
    assert {name: os.stat(out / name).st_mtime_ns for name in os.listdir(out)} == before

    # A store with the grid also serves a run that does not want it.
    assert extract(items, out, progress=False, extractor=Extractor(backbone, grid=False)).already_done


def test_different_extractor_refused_unless_overwrite(tmp_path, extractor, backbone):
    items = make_images(tmp_path / "images", 3)
    out = tmp_path / "store"
    extract(items, out, progress=False, extractor=Extractor(backbone, grid=False))

    class Renamed(Extractor):
        extractor_id = "efficientnet-lite0-224-000000000000"

    renamed = Renamed(backbone, grid=False)
    with pytest.raises(FeatureStoreError) as exc_info:
        extract(items, out, progress=False, extractor=renamed)
    assert extractor.extractor_id in str(exc_info.value) and renamed.extractor_id in str(exc_info.value)
    assert "--overwrite" in str(exc_info.value)

    with pytest.raises(FeatureStoreError, match="without grid"):
        extract(items, out, progress=False, extractor=extractor)
    result = extract(items, out, progress=False, extractor=extractor, overwrite=True)
    assert not result.already_done and FeatureStore.open(out).has("grid")


def test_bad_image_fails_fast_then_skip_bad(tmp_path, extractor):
    items = make_images(tmp_path / "images", 6)
    bad_path = tmp_path / "images" / "img03.png"
    bad_path.write_bytes(b"not a png at all")
    out = tmp_path / "store"
    with pytest.raises(ImageError) as exc_info:
        extract(items, out, batch_size=2, progress=False, extractor=extractor)
    assert str(bad_path) in str(exc_info.value)
    assert json.loads((out / PARTIAL_DIR / PROGRESS_FILE).read_text())["done"] == 2  # kept, resumable

    result = extract(items, out, batch_size=2, progress=False, extractor=extractor, skip_bad=True)
    assert result.resumed_from == 2 and result.bad == ["img03.png"]
    store = FeatureStore.open(out)
    assert store.bad == ["img03.png"] and store.bad_mask.tolist() == [False, False, False, True, False, False]
    assert not store.global_features[3].any() and store.global_features[2].any() and store.global_features[4].any()
    assert str(bad_path) in store.index["bad_reasons"]["img03.png"]


def test_refuses_a_folder_with_other_files(tmp_path, extractor):
    items = make_images(tmp_path / "images", 1)
    with pytest.raises(FeatureStoreError, match="other files"):
        extract(items, tmp_path / "images", progress=False, extractor=extractor)


def test_input_checks(tmp_path, extractor):
    items = make_images(tmp_path / "images", 2)
    with pytest.raises(ScenetalkError, match="twice"):
        extract(items + items[:1], tmp_path / "s", progress=False, extractor=extractor)
    with pytest.raises(ScenetalkError, match="no images"):
        extract([], tmp_path / "s", progress=False, extractor=extractor)


def test_regions_round_trip(tmp_path, backbone):
    items = make_images(tmp_path / "images", 3, size=(64, 64))
    ex = Extractor(backbone, regions=True, region_method="roi", region_size=224)
    out = tmp_path / "store"
    result = extract(items, out, batch_size=2, progress=False, extractor=ex)
    store = FeatureStore.open(out, expect_extractor_id=result.extractor_id)
    assert store.regions.shape == (3, 20, 1280) and store.regions.dtype == np.float16
    assert store.boxes.shape == (3, 20, 4) and store.box_scores.shape == (3, 20)
    assert store.box_classes.dtype == np.int16
    assert np.allclose(store.boxes[:, 0], [0, 0, 1, 1]) and np.all(store.box_classes[:, 0] == IMAGE_CLASS)
    assert np.all((store.boxes >= 0) & (store.boxes <= 1))
    names = store.box_class_names("img01.png")
    assert names[0] == "image" and len(names) == 20
    assert store.class_name(GRID_CLASS) == "grid" and store.class_name(1) == "person"
    assert np.allclose(store.regions[:, 0].astype(np.float32), store.global_features, atol=2e-2)


# -- the command line ------------------------------------------------------------------------

@pytest.fixture
def main(monkeypatch):
    if "features" not in cli.COMMANDS:  # until the command is registered in cli.py
        monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, "features"))
    return cli.main


def test_cli_on_a_folder(tmp_path, capsys, main):
    make_images(tmp_path / "images", 3)
    (tmp_path / "images" / "readme.txt").write_text("not an image")
    out = tmp_path / "store"
    argv = ["features", "folder", "--images", str(tmp_path / "images"), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "images       3" in printed and "extractor id efficientnet-lite0-224-" in printed
    assert "global 1280" in printed and "grid 49x1280" in printed
    assert FeatureStore.open(out).names == ["img00.png", "img01.png", "img02.png"]

    assert main(argv) == 0
    assert "already extracted" in capsys.readouterr().out

    assert main(["features", "folder", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "--images" in capsys.readouterr().err
    assert main(["features", "folder", "--images", str(tmp_path / "images"), "--out", str(tmp_path / "y"),
                 "--region-method", "roi"]) == 2
    assert "--regions" in capsys.readouterr().err


def test_cli_on_a_dataset_file(tmp_path, capsys, main):
    make_images(tmp_path / "images", 3)
    dataset = {"dataset": "tiny", "images": [
        {"filename": f"img{i:02d}.png", "imgid": i, "split": split, "sentids": [i],
         "sentences": [{"raw": "A dog runs.", "tokens": ["a", "dog", "runs"], "imgid": i, "sentid": i}]}
        for i, split in enumerate(["train", "val", "test"])]}
    (tmp_path / "dataset_tiny.json").write_text(json.dumps(dataset))
    out = tmp_path / "store"
    code = main(["features", str(tmp_path / "dataset_tiny.json"), "--images", str(tmp_path / "images"),
                 "--out", str(out), "--quiet", "--limit", "2"])
    assert code == 0, capsys.readouterr().err
    assert FeatureStore.open(out).names == ["img00.png", "img01.png"]

    (tmp_path / "images" / "img02.png").unlink()
    code = main(["features", str(tmp_path / "dataset_tiny.json"), "--images", str(tmp_path / "images"),
                 "--out", str(tmp_path / "other"), "--quiet"])
    assert code == 2 and "img02.png" in capsys.readouterr().err


@pytest.mark.slow
def test_real_images_with_regions(tmp_path, shared_data, backbone):
    pytest.importorskip("torch", reason="96x96 crops: a size with no shipped graph is exported from PyTorch")
    folder = shared_data / "flickr8k" / "images"
    names = sorted(os.listdir(folder))[:2]
    ex = Extractor(backbone, regions=True, region_method="crop", region_size=96)
    result = extract([(n, str(folder / n)) for n in names], tmp_path / "store", progress=False, extractor=ex)
    store = FeatureStore.open(tmp_path / "store", expect_extractor_id=result.extractor_id)
    assert store.box_class_names(names[0])[1] == "person"  # a girl on the steps of a cabin
    assert np.all(store.box_classes[:, 1:] > 0)  # real photos: 19 real detections each


# -- a dataset's or a folder's images, checked as ``scenetalk features`` checks them ----------------------------

def write_dataset(path, names) -> str:
    """A Karpathy-style dataset file listing ``names`` (one sentence each, splits in turn)."""
    images = [{"filename": name, "imgid": i, "split": ("train", "val", "test")[i % 3], "sentids": [i],
               "sentences": [{"raw": "A dog runs.", "tokens": ["a", "dog", "runs"], "imgid": i, "sentid": i}]}
              for i, name in enumerate(names)]
    path.write_text(json.dumps({"dataset": "tiny", "images": images}))
    return str(path)


def test_image_list_of_a_folder_and_of_a_dataset(tmp_path):
    from scenetalk.features.extract import image_list

    make_images(tmp_path / "images", 2)
    (tmp_path / "images" / "readme.txt").write_text("not an image")
    folder = str(tmp_path / "images")
    expected = [("img00.png", os.path.join(folder, "img00.png")), ("img01.png", os.path.join(folder, "img01.png"))]
    assert image_list("folder", folder) == expected
    (tmp_path / "text").mkdir()  # no images folder beside the dataset file
    dataset = write_dataset(tmp_path / "text" / "dataset_tiny.json", ["img01.png", "img00.png"])
    assert image_list(dataset, folder) == expected[::-1]     # the dataset's order
    with pytest.raises(ScenetalkError, match="image folder unknown; pass --images DIR"):
        image_list(dataset)


@pytest.mark.parametrize("options, error, message", [
    ({"limit": 0}, ScenetalkError, "--limit must be at least 1, got 0"),
    ({"region_method": "roi"}, ScenetalkError, "--region-method and --region-size need --regions"),
    ({"region_size": 96}, ScenetalkError, "--region-method and --region-size need --regions"),
    ({"images_dir": None}, ScenetalkError, "DATASET 'folder' needs --images DIR"),
    ({"images_dir": "{tmp}/empty"}, ScenetalkError, "no images found in .*empty"),
    ({"images_dir": "{tmp}/nowhere"}, ImageError, "nowhere: not a folder"),
])
def test_extract_images_refuses_bad_arguments_before_any_work(tmp_path, options, error, message):
    from scenetalk.features.jobs import extract_images

    make_images(tmp_path / "images", 2)
    (tmp_path / "empty").mkdir()
    options = {"images_dir": str(tmp_path / "images"), **options}
    if options["images_dir"]:
        options["images_dir"] = options["images_dir"].format(tmp=tmp_path)
    with pytest.raises(error, match=message):
        extract_images("folder", tmp_path / "store", progress=False, **options)
    assert not (tmp_path / "store").exists()


def test_extract_images_fails_fast_on_a_missing_file_unless_skip_bad(tmp_path, extractor):
    from scenetalk.features.jobs import extract_images

    make_images(tmp_path / "images", 2)
    dataset = write_dataset(tmp_path / "dataset_tiny.json", ["img00.png", "gone.png", "img01.png"])
    with pytest.raises(ImageError, match=r"gone.png: file not found \(1 of 3 images are missing; check --images"):
        extract_images(dataset, tmp_path / "store", images_dir=tmp_path / "images", progress=False)
    assert not (tmp_path / "store").exists()

    result = extract_images(dataset, tmp_path / "store", images_dir=tmp_path / "images", limit=2,
                            skip_bad=True, grid=False, progress=False)
    assert (result.count, result.bad) == (2, ["gone.png"])
    assert FeatureStore.open(tmp_path / "store").names == ["img00.png", "gone.png"]


def test_training_reads_features_through_the_memory_map_as_the_copy_gives_them(squares):
    torch = pytest.importorskip("torch", reason="model_input gives PyTorch tensors (the train extra)")

    store = FeatureStore.open(squares / "features")
    for kind in ("global", "regions", "grid", "regions+grid"):
        rows, copy = store.model_rows(kind), store.model_input(kind)
        assert rows.size() == tuple(copy.shape) and rows.size(-1) == copy.size(-1) and len(rows) == len(copy)
        for idx in (torch.tensor([5, 0, 5]), [3, 1], slice(2, 6)):
            got = rows[idx]
            assert got.dtype == torch.float32 and torch.equal(got, copy[idx])
        assert rows.float() is rows


def test_regions_and_grid_reach_a_model_as_one_set_regions_first(squares):
    pytest.importorskip("torch", reason="model_input gives PyTorch tensors (the train extra)")
    store = FeatureStore.open(squares / "features")
    both = store.model_input("regions+grid").numpy()
    regions, grid = store.regions, store.grid
    assert both.shape == (len(store.names), regions.shape[1] + grid.shape[1], store.feature_dim)
    assert np.array_equal(both[:, :regions.shape[1]], regions.astype(np.float32))
    assert np.array_equal(both[:, regions.shape[1]:], grid.astype(np.float32))
    with pytest.raises(ValueError, match="unknown model input 'boxes'"):
        store.model_rows("boxes")
