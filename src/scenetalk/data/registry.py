"""Dataset names, where their files are expected, and ``load_dataset``.

Every dataset lives under one data root (``--root``; ``default_root()`` otherwise) in the
layout ``DATASETS`` describes, e.g. ``<root>/flickr8k/dataset_flickr8k.json`` with the photos
in ``<root>/flickr8k/images``. Instead of a name, ``load_dataset`` also takes a path to a
Karpathy ``.json`` file or to a ``*.token.txt`` file (Flickr8K text format, with the split
lists from the same folder).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenetalk.data import flickr8k, flickr8k_cn
from scenetalk.data.flickr8k import load_flickr8k_text
from scenetalk.data.flickr8k_cn import load_flickr8k_cn, load_flickr8k_cn_trans
from scenetalk.data.iapr import load_iapr
from scenetalk.data.karpathy import load_karpathy
from scenetalk.data.multi30k import load_multi30k
from scenetalk.data.multilingual import merge_languages
from scenetalk.data.schema import CaptionDataset
from scenetalk.errors import DataError, ScenetalkError

F8K_TEXT = "flickr8k/Flickr8k_text"
IAPR_SPLITS = {"train": "iaprtc12/splits/train.txt", "val": "iaprtc12/splits/val.txt",
               "test": "iaprtc12/splits/test.txt"}


@dataclass(frozen=True)
class DatasetInfo:
    description: str
    #: the files and folders read, relative to the data root (``required`` must exist)
    required: tuple[str, ...]
    #: the image folder, relative to the data root
    images: str
    #: further files, shown by ``data list`` (patterns, optional files)
    layout: tuple[str, ...] = ()
    language: str = "en"


DATASETS: dict[str, DatasetInfo] = {
    "flickr8k": DatasetInfo(
        "Flickr8K, Karpathy's split JSON (6,000 / 1,000 / 1,000 images, 5 English sentences each)",
        ("flickr8k/dataset_flickr8k.json",), "flickr8k/images"),
    "flickr8k-text": DatasetInfo(
        "Flickr8K, the original caption and split files (8,091 images; 91 in no split)",
        (f"{F8K_TEXT}/{flickr8k.TOKEN_FILE}",) + tuple(f"{F8K_TEXT}/{n}" for n in flickr8k.SPLIT_FILES.values()),
        "flickr8k/images"),
    "flickr30k": DatasetInfo(
        "Flickr30K, Karpathy's split JSON (29,000 / 1,014 / 1,000 images)",
        ("flickr30k/dataset_flickr30k.json",), "flickr30k/images"),
    "coco": DatasetInfo(
        "MS COCO 2014, Karpathy's split JSON (train / restval / val / test; images in train2014/, val2014/)",
        ("coco/dataset_coco.json",), "coco", layout=("coco/train2014/", "coco/val2014/")),
    "flickr8k-cn": DatasetInfo(
        "Flickr8K-CN, native Chinese sentences for the Flickr8K photos (Flickr8K split)",
        (f"flickr8k_cn/{flickr8k_cn.CAPTION_FILE}",) + tuple(f"flickr8k_cn/{n}" for n in flickr8k_cn.SPLIT_FILES.values()),
        "flickr8k/images", language="zh"),
    "flickr8k-cn-trans": DatasetInfo(
        "Flickr8K-CN, human Chinese translations of the 1,000 Flickr8K test images' captions",
        (f"flickr8k_cn/{flickr8k_cn.TRANSLATION_FILE}",), "flickr8k/images",
        layout=(f"flickr8k_cn/{flickr8k_cn.SPLIT_FILES['test']} (optional, checked against)",), language="zh"),
    "multi30k-de": DatasetInfo(
        "Multi30K German descriptions of the Flickr8K photos that Flickr30K contains (Flickr8K split)",
        ("multi30k/image_splits/train_images.txt", "multi30k/image_splits/val_images.txt",
         "multi30k/image_splits/test_2016_images.txt", f"{F8K_TEXT}/{flickr8k.TOKEN_FILE}"),
        "flickr8k/images", layout=("multi30k/raw/{train,val,test_2016}.{1..5}.de.gz",
                                   f"{F8K_TEXT}/Flickr_8k.{{train,dev,test}}Images.txt"),
        language="de"),
    "flickr8k-multi": DatasetInfo(
        "Flickr8K in English, Chinese and German: flickr8k, flickr8k-cn and multi30k-de merged by photo "
        "(Flickr8K split; tokens tagged lang:word)",
        ("flickr8k/dataset_flickr8k.json", f"flickr8k_cn/{flickr8k_cn.CAPTION_FILE}",
         "multi30k/image_splits/train_images.txt", f"{F8K_TEXT}/{flickr8k.TOKEN_FILE}"),
        "flickr8k/images", language="multi"),
    "iapr": DatasetInfo(
        "IAPR TC-12, English descriptions split into sentences at ';'",
        ("iaprtc12/annotations_complete_eng",), "iaprtc12",
        layout=("iaprtc12/images/<NN>/<id>.jpg",) + tuple(f"{p} (optional)" for p in IAPR_SPLITS.values())),
}

#: options ``load_dataset`` understands (others are a TypeError)
OPTIONS = ("image_dir", "zh_mode")


def default_root() -> Path:
    """$SCENETALK_DATA if set, else ./data if it exists, else ../shared/data if it exists, else ./data."""
    env = os.environ.get("SCENETALK_DATA")
    if env:
        return Path(env)
    for candidate in (Path("data"), Path("..") / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return Path("data")


def _load_named(name: str, root: Path, zh_mode: str) -> CaptionDataset:
    text = root / F8K_TEXT
    loaders: dict[str, Callable[[], CaptionDataset]] = {
        "flickr8k": lambda: load_karpathy(root / "flickr8k/dataset_flickr8k.json", name="flickr8k"),
        "flickr8k-text": lambda: load_flickr8k_text(text / flickr8k.TOKEN_FILE),
        "flickr30k": lambda: load_karpathy(root / "flickr30k/dataset_flickr30k.json", name="flickr30k"),
        "coco": lambda: load_karpathy(root / "coco/dataset_coco.json", name="coco"),
        "flickr8k-cn": lambda: load_flickr8k_cn(root / "flickr8k_cn" / flickr8k_cn.CAPTION_FILE,
                                                zh_mode=zh_mode),
        "flickr8k-cn-trans": lambda: load_flickr8k_cn_trans(
            root / "flickr8k_cn" / flickr8k_cn.TRANSLATION_FILE, _if_exists(
                root / "flickr8k_cn" / flickr8k_cn.SPLIT_FILES["test"]), zh_mode=zh_mode),
        "multi30k-de": lambda: load_multi30k(root / "multi30k", text / flickr8k.TOKEN_FILE,
                                             language="de", name="multi30k-de"),
        "flickr8k-multi": lambda: merge_languages({"en": loaders["flickr8k"](), "zh": loaders["flickr8k-cn"](),
                                                   "de": loaders["multi30k-de"]()}, name="flickr8k-multi"),
        "iapr": lambda: load_iapr(root / "iaprtc12/annotations_complete_eng", {
            split: root / p for split, p in IAPR_SPLITS.items() if (root / p).exists()}),
    }
    return loaders[name]()


def _if_exists(path: Path) -> Path | None:
    return path if path.exists() else None


def load_dataset(name_or_path: str | os.PathLike, root: str | os.PathLike | None = None,
                 **options: Any) -> CaptionDataset:
    """Load a dataset by name (see ``DATASETS``) from ``root``, or from a file path.

    Options: ``image_dir`` (overrides where the images are), ``zh_mode`` (``"jieba"`` or
    ``"char"``, for the Chinese datasets).
    """
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(sorted(unknown))}; expected {', '.join(OPTIONS)}")
    zh_mode = options.get("zh_mode") or "jieba"
    key = os.fspath(name_or_path)
    if key in DATASETS:
        root = Path(root) if root is not None else default_root()
        info = DATASETS[key]
        for rel in info.required:
            if not (root / rel).exists():
                raise DataError(root / rel, f"not found: dataset {key!r} expects "
                                f"{', '.join(info.required)} under the data root {root}; "
                                "pass --root DIR (or set SCENETALK_DATA) to the folder that holds them")
        dataset = _load_named(key, root, zh_mode)
        image_dir: Path | None = root / info.images
    else:
        dataset, image_dir = _load_path(Path(key))
    if options.get("image_dir") is not None:
        image_dir = Path(options["image_dir"])
    dataset.image_dir = os.fspath(image_dir) if image_dir is not None else None
    return dataset


def _load_path(path: Path) -> tuple[CaptionDataset, Path | None]:
    """A Karpathy ``.json`` file or a Flickr8K ``.token.txt`` file; images guessed beside it."""
    if path.name.endswith(".json"):
        if not path.is_file():
            raise DataError(path, "not found (expected a Karpathy split .json file)")
        images = path.parent / "images"
        return load_karpathy(path), images if images.is_dir() else None
    if path.name.endswith(".token.txt"):
        if not path.is_file():
            raise DataError(path, "not found (expected a Flickr8k.token.txt caption file)")
        images = path.parent.parent / "images"
        return load_flickr8k_text(path), images if images.is_dir() else None
    raise ScenetalkError(f"unknown dataset {os.fspath(path)!r}; known datasets: {', '.join(DATASETS)} "
                         "(or give the path of a Karpathy .json or a Flickr8k .token.txt file)")
