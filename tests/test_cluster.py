"""Feature extraction on Ray (``features.jobs.extract_on_ray``): on a local cluster of 2
workers, the store is the one a single process writes, array for array; complete shards are
not computed again; a bad image is listed as one process lists it; the options are checked
before any task runs."""

import json
import os
import sys
from functools import partial

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason="needs Ray (the cluster extra)")

from scenetalk.errors import FeatureStoreError, ScenetalkError  # noqa: E402
from scenetalk.features.extract import SHARDS_DIR, Extractor, extract  # noqa: E402
from scenetalk.features.jobs import extract_on_ray  # noqa: E402
from scenetalk.features.store import FeatureStore  # noqa: E402

pytestmark = pytest.mark.slow   # a Ray cluster starts in seconds, and every task loads the models


@pytest.fixture(scope="module", autouse=True)
def cluster(tmp_path_factory):
    """A local Ray cluster of 2 workers for the module; its session files in a temporary folder."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _temp_dir=str(tmp_path_factory.mktemp("ray")))
    yield
    ray.shutdown()


def photos(folder, count, seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(count):
        name = f"img{i:02d}.png"
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(os.path.join(folder, name))
        items.append((name, os.path.join(folder, name)))
    return items


def assert_same_store(a, b):
    one, other = FeatureStore.open(a), FeatureStore.open(b)
    assert one.names == other.names and one.bad == other.bad and one.extractor_id == other.extractor_id
    assert set(one.index["arrays"]) == set(other.index["arrays"])
    for name in one.index["arrays"]:
        np.testing.assert_array_equal(one.array(name), other.array(name), err_msg=name)


def test_ray_store_is_the_single_process_store_and_complete_shards_are_kept(tmp_path):
    images = photos(tmp_path / "images", 20)
    make = partial(Extractor, regions=True, grid=False)
    single = extract(images, tmp_path / "single", extractor=make(), batch_size=4, progress=False)
    # one shard done before (an interrupted run): it is not computed again
    extract(images[:8], tmp_path / "ray" / SHARDS_DIR / "0000", extractor=make(), batch_size=4, progress=False)
    result = extract_on_ray(images, tmp_path / "ray", make, batch_size=4, shard_photos=8, progress=False)
    assert (result.count, result.computed, result.extractor_id) == (20, 12, single.extractor_id)
    assert_same_store(tmp_path / "single", tmp_path / "ray")
    assert not (tmp_path / "ray" / SHARDS_DIR).exists()
    again = extract_on_ray(images, tmp_path / "ray", make, batch_size=4, shard_photos=8, progress=False)
    assert again.already_done and again.computed == 0


def test_ray_lists_bad_images_as_one_process_does_and_checks_before_any_task(tmp_path):
    images = photos(tmp_path / "images", 6)
    (tmp_path / "images" / "img02.png").write_bytes(b"not a png")
    make = partial(Extractor, grid=False)
    extract(images, tmp_path / "single", extractor=make(), progress=False, skip_bad=True)
    result = extract_on_ray(images, tmp_path / "ray", make, shard_photos=16, batch_size=2, progress=False,
                            skip_bad=True)
    assert result.bad == ["img02.png"]
    assert_same_store(tmp_path / "single", tmp_path / "ray")
    # without skip_bad the task's error is the one line a single process gives
    with pytest.raises(ScenetalkError, match="img02.png") as exc:
        extract_on_ray(images, tmp_path / "strict", make, batch_size=2, shard_photos=2, progress=False)
    assert "\n" not in str(exc.value)
    # a store of other images is refused before any task runs, unless overwrite
    with pytest.raises(FeatureStoreError, match="--overwrite"):
        extract_on_ray(images[:3], tmp_path / "ray", make, progress=False)
    assert extract_on_ray(images[3:], tmp_path / "ray", make, progress=False, overwrite=True).count == 3


def test_cli_features_and_index_build_on_ray(tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="the index test's alignment model needs PyTorch")
    from conftest import copy_sample_photos

    from scenetalk.checkpoint import save_checkpoint
    from scenetalk.cli import main
    from scenetalk.data.text import Vocabulary
    from scenetalk.models.alignment import AlignmentConfig, AlignmentModel

    images = photos(tmp_path / "images", 5)
    assert main(["features", "folder", "--images", str(tmp_path / "images"), "--out", str(tmp_path / "ray"),
                 "--no-grid", "--ray", "--quiet"]) == 0
    assert "images       5" in capsys.readouterr().out
    extract(images, tmp_path / "single", extractor=Extractor(grid=False), progress=False)
    assert_same_store(tmp_path / "single", tmp_path / "ray")

    torch.manual_seed(0)
    vocab = Vocabulary.build([["a", "dog", "cat", "on", "the", "table"]], min_count=1)
    cfg = {"vocab_size": len(vocab), "region_dim": 1280, "embed_dim": 16, "word_dim": 8, "hidden_dim": 16,
           "dropout": 0.0}
    ckpt = tmp_path / "align"
    save_checkpoint(ckpt, AlignmentModel(AlignmentConfig(**cfg)).state_dict(),
                    {"kind": "alignment", "model": cfg, "vocabulary": vocab.to_dict(),
                     "extractor_id": Extractor(regions=True).extractor_id})
    folder = copy_sample_photos(tmp_path / "photos")
    for flag in ([], ["--ray"]):
        out = tmp_path / ("index-ray" if flag else "index")
        assert main(["index", "build", str(folder), "--out", str(out), "--checkpoint", str(ckpt), "--quiet",
                     *flag]) == 0
    capsys.readouterr()
    assert_same_store(tmp_path / "index" / "features", tmp_path / "index-ray" / "features")
    one, other = (json.loads((tmp_path / f / "index.json").read_text()) for f in ("index", "index-ray"))
    assert one["names"] == other["names"]
    np.testing.assert_array_equal(np.load(tmp_path / "index" / "regions_embedded.npy"),
                                  np.load(tmp_path / "index-ray" / "regions_embedded.npy"))
    # index add --ray: the new photo's part is extracted on the cluster, as index build --ray's photos are
    last = sorted(folder.iterdir())[-1]
    last.rename(tmp_path / last.name)
    assert main(["index", "build", str(folder), "--out", str(tmp_path / "grown"), "--checkpoint", str(ckpt),
                 "--quiet"]) == 0
    (tmp_path / last.name).rename(last)
    assert main(["index", "add", str(tmp_path / "grown"), "--checkpoint", str(ckpt), "--ray", "--quiet"]) == 0
    assert "added 1 images" in capsys.readouterr().out
    grown = json.loads((tmp_path / "grown" / "index.json").read_text())
    part = json.loads((tmp_path / "grown" / grown["parts"][0] / "index.json").read_text())
    assert sorted(grown["names"] + part["names"]) == sorted(one["names"]) and part["names"] == [last.name]


def test_an_address_where_no_cluster_answers_is_a_one_line_error_in_seconds(tmp_path):
    from scenetalk.features.jobs import check_reachable

    for address in ("127.0.0.1:1", "ray://127.0.0.1:1"):
        with pytest.raises(ScenetalkError, match="nothing answers there") as exc:
            check_reachable(address)
        assert "\n" not in str(exc.value) and address in str(exc.value)
    for address in ("nowhere", "host:port"):
        with pytest.raises(ScenetalkError, match="not a cluster address"):
            check_reachable(address)
    check_reachable(None)
    check_reachable("auto")


def test_without_ray_the_option_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)   # import ray fails
    images = photos(tmp_path / "images", 2)
    with pytest.raises(ScenetalkError, match=r'pip install "scenetalk\[cluster\]"'):
        extract_on_ray(images, tmp_path / "out", partial(Extractor, grid=False), progress=False)
