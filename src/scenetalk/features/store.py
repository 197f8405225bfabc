"""A folder of image features on disk, read through memory maps.

Layout (all arrays are ``.npy``, row i belongs to ``names[i]``)::

    index.json        format version, extractor id and config, image names, array specs,
                      region class names, images that could not be read ("bad")
    global.npy        (N, 1280) float32   whole-image feature (global average of the map)
    grid.npy          (N, h*w, 1280) float16   the feature map's cells, row-major (optional)
    regions.npy       (N, 20, 1280) float16    region features, region 0 = the whole image
    boxes.npy         (N, 20, 4) float32       normalised x1, y1, x2, y2
    box_scores.npy    (N, 20) float32          detector score (whole image 1, grid fillers 0)
    box_classes.npy   (N, 20) int16            COCO id; 0 = whole image, -1 = grid filler

``index.json`` is written last, after every array is complete and in place, so a folder
with an index is a complete store; extraction in progress lives in ``.partial/``.

The extractor id names exactly how the features were made (backbone, input size, weights
hash; for regions also the detector, its weights hash, top-k, region method and size).
Models keep it in their checkpoints and pass it as ``expect_extractor_id`` when loading
features, so features of one extractor are never fed to a model trained on another's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from scenetalk.errors import FeatureStoreError

if TYPE_CHECKING:
    import torch

FORMAT = "scenetalk-features"
FORMAT_VERSION = 1
INDEX_FILE = "index.json"
PARTIAL_DIR = ".partial"

#: Every array a store may hold, with its file name; the order is the order of writing.
ARRAY_NAMES = ("global", "grid", "regions", "boxes", "box_scores", "box_classes")
REGION_ARRAYS = ("regions", "boxes", "box_scores", "box_classes")


@dataclass(frozen=True)
class ArraySpec:
    shape: tuple[int, ...]
    dtype: str

    def to_json(self) -> dict:
        return {"shape": list(self.shape), "dtype": self.dtype}


def array_file(name: str) -> str:
    return f"{name}.npy"


def array_specs(count: int, feature_dim: int, grid_cells: int | None, num_regions: int | None) -> dict[str, ArraySpec]:
    """The arrays of a store of ``count`` images (``grid_cells``/``num_regions`` None: absent)."""
    specs = {"global": ArraySpec((count, feature_dim), "float32")}
    if grid_cells:
        specs["grid"] = ArraySpec((count, grid_cells, feature_dim), "float16")
    if num_regions:
        specs["regions"] = ArraySpec((count, num_regions, feature_dim), "float16")
        specs["boxes"] = ArraySpec((count, num_regions, 4), "float32")
        specs["box_scores"] = ArraySpec((count, num_regions), "float32")
        specs["box_classes"] = ArraySpec((count, num_regions), "int16")
    return specs


#: Rows of an array checked for finite values at a time (``first_non_finite``): a block of a
#: (N, 20, 1280) float16 memory map is 50 MB, so a large array is never read into memory at once.
FINITE_BLOCK = 1024


def first_non_finite(array: np.ndarray, block: int = FINITE_BLOCK) -> int | None:
    """The first row of ``array`` (a memory map is read ``block`` rows at a time) holding NaN or
    ±inf, or None when every value is finite (integer arrays always are)."""
    if not np.issubdtype(array.dtype, np.floating):
        return None
    for a in range(0, len(array), block):
        part = np.asarray(array[a:a + block])
        if not np.isfinite(part).all():
            bad = ~np.isfinite(part.reshape(len(part), -1)).all(axis=1)
            return a + int(np.argmax(bad))
    return None


def check_array(path: str, array: np.ndarray, spec: ArraySpec) -> None:
    if tuple(array.shape) != tuple(spec.shape) or array.dtype != np.dtype(spec.dtype):
        raise FeatureStoreError(
            f"{path}: expected shape {tuple(spec.shape)} {spec.dtype}, found {tuple(array.shape)} {array.dtype} "
            "(incomplete or damaged feature store; extract again with --overwrite)"
        )


class FeatureStore:
    """A complete feature store, memory-mapped read-only. Open it with ``FeatureStore.open``."""

    def __init__(self, path: str, index: dict, arrays: dict[str, np.ndarray]):
        self.path = path
        self.index = index
        self.extractor_id: str = index["extractor_id"]
        self.extractor: dict = index.get("extractor", {})
        self.names: list[str] = list(index["names"])
        self.bad: list[str] = list(index.get("bad", []))
        self._rows = {name: i for i, name in enumerate(self.names)}
        self._arrays = arrays
        self._class_names = {int(k): v for k, v in index.get("class_names", {}).items()}

    @classmethod
    def open(cls, path: str | os.PathLike, expect_extractor_id: str | None = None) -> FeatureStore:
        path = os.fspath(path)
        index_path = os.path.join(path, INDEX_FILE)
        if not os.path.isdir(path):
            raise FeatureStoreError(f"{path}: no feature store here (extract one with `scenetalk features`)")
        if not os.path.isfile(index_path):
            if os.path.isdir(os.path.join(path, PARTIAL_DIR)):
                raise FeatureStoreError(
                    f"{path}: incomplete feature store (extraction was interrupted; run the same "
                    "`scenetalk features` command again to resume it)"
                )
            raise FeatureStoreError(f"{path}: not a feature store (no {INDEX_FILE})")
        index = read_index(index_path)
        if expect_extractor_id is not None and index["extractor_id"] != expect_extractor_id:
            raise FeatureStoreError(
                f"{path}: features were extracted by {index['extractor_id']}, but {expect_extractor_id} "
                "is expected; extract them again with the matching backbone and options"
            )
        arrays = {}
        for name, raw in index["arrays"].items():
            spec = ArraySpec(tuple(raw["shape"]), raw["dtype"])
            file = os.path.join(path, array_file(name))
            try:
                arrays[name] = np.load(file, mmap_mode="r", allow_pickle=False)
            except FileNotFoundError:
                raise FeatureStoreError(
                    f"{file}: missing (incomplete feature store; extract again with --overwrite)") from None
            except (OSError, ValueError, EOFError) as exc:
                raise FeatureStoreError(f"{file}: damaged feature array ({_one_line(exc)}); "
                                        "rebuild it: extract again with --overwrite") from None
            check_array(file, arrays[name], spec)
            if spec.shape[0] != len(index["names"]):
                raise FeatureStoreError(
                    f"{index_path}: damaged: {name} has {spec.shape[0]} rows for {len(index['names'])} images; "
                    "rebuild it: extract again with --overwrite")
            row = first_non_finite(arrays[name])  # once at open: NaN would silently turn every score into NaN
            if row is not None:
                raise FeatureStoreError(f"{file}: damaged: non-finite values (NaN or inf) in row {row}; "
                                        "rebuild it: extract again with --overwrite")
        return cls(path, index, arrays)

    # -- lookup ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: str) -> bool:
        return name in self._rows

    def row(self, name: str) -> int:
        try:
            return self._rows[name]
        except KeyError:
            raise FeatureStoreError(f"{self.path}: no features for image {name!r}") from None

    @property
    def row_index(self) -> dict[str, int]:
        """Image name -> row, for every image in the store."""
        return dict(self._rows)

    def model_input(self, kind: str) -> torch.Tensor:
        """All images' features as a float32 tensor, in the form a model reads (``MODEL_INPUTS``):
        ``"global"`` (N, D) vectors, the ``"grid"`` (N, cells, D), the ``"regions"`` (N, 20, D)
        or ``"regions+grid"`` (N, 20 + cells, D), the regions followed by the grid cells."""
        import torch

        return torch.from_numpy(model_array({n: self.array(n) for n in input_arrays(kind)}, kind))  # a copy

    def model_rows(self, kind: str) -> FeatureRows:
        """``model_input(kind)`` without the copy: rows read from the memory map when indexed
        (as float32 tensors), so training holds no copy of the features, at any collection size
        (a COCO-size store's regions are 6 GB as float16, 12 GB as float32), and processes
        training side by side share one page cache."""
        return FeatureRows(*(self.array(n) for n in input_arrays(kind)))

    def rows(self, names: list[str]) -> np.ndarray:
        return np.array([self.row(n) for n in names], dtype=np.int64)

    # -- arrays ---------------------------------------------------------------------------
    def array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            hint = " (extract with --regions)" if name in REGION_ARRAYS else " (extract without --no-grid)"
            raise FeatureStoreError(f"{self.path}: this feature store has no {name} features{hint}")
        return self._arrays[name]

    def has(self, name: str) -> bool:
        return name in self._arrays

    @property
    def global_features(self) -> np.ndarray:
        return self.array("global")

    @property
    def grid(self) -> np.ndarray:
        return self.array("grid")

    @property
    def regions(self) -> np.ndarray:
        return self.array("regions")

    @property
    def boxes(self) -> np.ndarray:
        return self.array("boxes")

    @property
    def box_scores(self) -> np.ndarray:
        return self.array("box_scores")

    @property
    def box_classes(self) -> np.ndarray:
        return self.array("box_classes")

    @property
    def has_regions(self) -> bool:
        return "regions" in self._arrays

    @property
    def feature_dim(self) -> int:
        return int(self._arrays["global"].shape[1])

    @property
    def bad_mask(self) -> np.ndarray:
        """True for images that could not be read (their features are zeros)."""
        mask = np.zeros(len(self.names), dtype=bool)
        for name in self.bad:
            mask[self._rows[name]] = True
        return mask

    def class_name(self, class_id: int) -> str:
        return self._class_names.get(int(class_id), f"class-{int(class_id)}")

    def box_class_names(self, name: str) -> list[str]:
        return [self.class_name(c) for c in self.box_classes[self.row(name)]]


#: What each kind of model input is made of: the store's arrays, joined along the cells.
MODEL_INPUTS = {"global": ("global",), "grid": ("grid",), "regions": ("regions",),
                "regions+grid": ("regions", "grid")}


def input_arrays(kind: str) -> tuple[str, ...]:
    """The store arrays a model input of ``kind`` is made of (``MODEL_INPUTS``)."""
    if kind not in MODEL_INPUTS:
        raise ValueError(f"unknown model input {kind!r}; expected one of {', '.join(map(repr, MODEL_INPUTS))}")
    return MODEL_INPUTS[kind]


def model_array(arrays: Mapping[str, np.ndarray], kind: str) -> np.ndarray:
    """The float32 model input of ``kind`` from the arrays an extractor or a store gives
    (one name -> (N, ...) array): one array as it is, several joined along the cells."""
    parts = [np.array(arrays[name], dtype=np.float32) for name in input_arrays(kind)]  # copies, never views
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


class FeatureRows:
    """Rows of a store's array (or of several, joined along the cells as ``model_array`` joins
    them), read when indexed: ``rows[idx]`` is a float32 tensor of those rows (``idx`` a tensor,
    array, list or slice), as indexing ``model_input(kind)`` gives; the few tensor methods the
    trainers call on their features (``size``, ``float``) work alike."""

    def __init__(self, *arrays: np.ndarray):
        self.arrays = arrays
        first = arrays[0].shape
        self.shape = first if len(arrays) == 1 else (first[0], sum(a.shape[1] for a in arrays), *first[2:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx):
        import torch

        if isinstance(idx, torch.Tensor):
            idx = idx.numpy()
        parts = [np.array(a[idx], dtype=np.float32) for a in self.arrays]
        return torch.from_numpy(parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1))

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def float(self) -> FeatureRows:
        return self   # its rows are float32 already


def read_index(index_path: str) -> dict:
    try:
        with open(index_path, encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FeatureStoreError(f"{index_path}: unreadable index ({_one_line(exc)}), a damaged feature store; "
                                "rebuild it: extract again with --overwrite") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise FeatureStoreError(f"{index_path}: not a scenetalk feature index")
    version = index.get("version")
    if type(version) is int and version > FORMAT_VERSION:
        raise FeatureStoreError(f"{index_path}: feature store format version {version}, made by a newer scenetalk "
                                f"(this one reads version {FORMAT_VERSION}); upgrade scenetalk")
    if version != FORMAT_VERSION:
        raise FeatureStoreError(
            f"{index_path}: feature store format version {index.get('version')}, this scenetalk reads "
            f"version {FORMAT_VERSION}; extract again with --overwrite"
        )
    damaged = "damaged feature store index; rebuild it: extract again with --overwrite"
    for key in ("extractor_id", "names", "arrays"):
        if key not in index:
            raise FeatureStoreError(f"{index_path}: {damaged} (no {key!r})")
    names, arrays = index["names"], index["arrays"]
    if not isinstance(index["extractor_id"], str):
        raise FeatureStoreError(f"{index_path}: {damaged} ('extractor_id' is not a string)")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise FeatureStoreError(f"{index_path}: {damaged} ('names' is not a list of image names)")
    if len(set(names)) != len(names):
        raise FeatureStoreError(f"{index_path}: {damaged} ('names' lists an image twice)")
    for key, kind in (("bad", list), ("class_names", dict), ("extractor", dict)):
        if key in index and not isinstance(index[key], kind):
            raise FeatureStoreError(f"{index_path}: {damaged} ({key!r} is not a {kind.__name__})")
    if not set(index.get("bad", [])) <= set(names):
        raise FeatureStoreError(f"{index_path}: {damaged} ('bad' names images the store does not hold)")
    if not isinstance(arrays, dict):
        raise FeatureStoreError(f"{index_path}: {damaged} ('arrays' is not an object)")
    unknown = sorted(set(arrays) - set(ARRAY_NAMES))
    if unknown or "global" not in arrays:
        raise FeatureStoreError(f"{index_path}: {damaged} (unexpected arrays {unknown or 'without global'})")
    for name, raw in arrays.items():
        if not (isinstance(raw, dict) and isinstance(raw.get("shape"), list) and raw["shape"]
                and all(type(n) is int and n >= 0 for n in raw["shape"]) and isinstance(raw.get("dtype"), str)):
            raise FeatureStoreError(f"{index_path}: {damaged} (array {name!r} needs a shape and a dtype)")
        try:
            np.dtype(raw["dtype"])
        except TypeError:
            raise FeatureStoreError(f"{index_path}: {damaged} (array {name!r} has an unknown dtype)") from None
    try:
        {int(k): v for k, v in index.get("class_names", {}).items()}
    except ValueError:
        raise FeatureStoreError(f"{index_path}: {damaged} ('class_names' keys are not class ids)") from None
    return index


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__
