"""Extract CNN features of many images into a feature store, resumably.

The work goes into ``OUT/.partial/``: arrays pre-allocated at their final size
(``np.lib.format.open_memmap``) and ``progress.json``, which records how many images are
done. After each batch the arrays are flushed to disk *before* ``progress.json`` is
atomically replaced, so after a crash or ``kill -9`` every image the progress file counts
is really on disk; running the same command again resumes from there (after checking that
the partial work belongs to the same extractor id and the same image list). Only when every
image is done are the arrays moved into ``OUT/`` and ``index.json`` written, last: a reader
never sees a half-written store.

Images are decoded (and, with regions, detected and cropped) in a background thread while
the backbone computes the previous batch.

A bad image (missing, truncated, not an image) stops the run with an ``ImageError`` naming
the file by default (fail fast: a wrong folder should not silently yield a store of zeros);
the finished batches stay resumable. With ``skip_bad=True`` the image's rows are zeros and
its name is listed under ``"bad"`` in ``index.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from scenetalk import runtime
from scenetalk.errors import CheckpointError, FeatureStoreError, ImageError, ScenetalkError
from scenetalk.features.store import (
    ARRAY_NAMES,
    FORMAT,
    FORMAT_VERSION,
    INDEX_FILE,
    PARTIAL_DIR,
    ArraySpec,
    array_file,
    array_specs,
    check_array,
    read_index,
)
from scenetalk.io import atomic_path, atomic_write_text
from scenetalk.progress import progress_bar
from scenetalk.vision.backbones import BACKBONES, DEFAULT_BACKBONE, Backbone, create_backbone
from scenetalk.vision.detector import Detector, create_detector
from scenetalk.vision.images import DEFAULT_MAX_PIXELS, load_image, to_uint8_batch
from scenetalk.vision.regions import (
    DEFAULT_REGION_METHOD,
    NUM_REGIONS,
    RegionFeaturizer,
    region_class_names,
    select_regions,
)

PROGRESS_FILE = "progress.json"
#: where ``features.jobs`` keeps the shards of an extraction on Ray until they are merged
SHARDS_DIR = ".shards"
NAMES_FILE = "names.json"
_ARRAY_FILES = tuple(array_file(name) for name in ARRAY_NAMES)
DEFAULT_BATCH_SIZE = 16
#: Decoded batches waiting for the backbone; two keep it busy without holding much memory.
PREFETCH_BATCHES = 2


class Extractor:
    """Turns RGB images into the arrays of a feature store (global, grid, regions)."""

    def __init__(
        self,
        backbone: str | Backbone = DEFAULT_BACKBONE,
        regions: bool = False,
        grid: bool = True,
        region_method: str = DEFAULT_REGION_METHOD,
        region_size: int | None = None,
        detector: Detector | None = None,
    ):
        self.backbone = create_backbone(backbone) if isinstance(backbone, str) else backbone
        self.grid = grid
        self.detector = None
        if regions:
            # The detector runs in the loader thread while the backbone computes: split the
            # cores between them rather than let both oversubscribe every core (faster on
            # 2 cores: BENCHMARKS.md "Feature extraction", the design measurements).
            cores = runtime.cpu_threads()
            detector_threads = max(1, cores // 2)
            self.detector = detector or create_detector(threads=detector_threads)
            self.backbone.threads = max(1, cores - detector_threads)
        self.featurizer = RegionFeaturizer(self.backbone, region_method, region_size) if regions else None

    @property
    def regions(self) -> bool:
        return self.featurizer is not None

    @property
    def extractor_id(self) -> str:
        """Backbone, input size and weights hash; with regions also the detector, its
        weights hash, top-k, region method and region size."""
        if self.featurizer is None:
            return self.backbone.extractor_id
        return f"{self.backbone.extractor_id}+{self.detector.extractor_id}-{self.featurizer.id_piece}"

    def config(self) -> dict:
        cfg = {"backbone": self.backbone.config(), "grid_size": self.backbone.map_size() if self.grid else None}
        if self.featurizer is not None:
            cfg["detector"] = self.detector.config()
            cfg["regions"] = self.featurizer.config()
        return cfg

    def array_specs(self, count: int) -> dict[str, ArraySpec]:
        side = self.backbone.map_size()
        return array_specs(count, self.backbone.feature_dim, side * side if self.grid else None,
                           NUM_REGIONS if self.regions else None)

    # The two halves of a batch: pixel work (any thread) and network work (the main thread).
    def prepare(self, images: Sequence[Image.Image]) -> dict:
        prepared = {"global": to_uint8_batch(images, self.backbone.input_size)}
        if self.featurizer is not None and images:
            found = [select_regions(self.detector.detect(np.asarray(im))) for im in images]
            prepared["boxes"] = np.stack([r.boxes for r in found])
            prepared["box_scores"] = np.stack([r.scores for r in found])
            prepared["box_classes"] = np.stack([r.class_ids for r in found])
            prepared["region_input"] = self.featurizer.prepare(images, prepared["boxes"])
        return prepared

    def compute(self, prepared: dict) -> dict[str, np.ndarray]:
        if len(prepared["global"]) == 0:
            return {k: np.zeros(s.shape, s.dtype) for k, s in self.array_specs(0).items()}
        fmap = self.backbone.feature_map(self.backbone.normalize(prepared["global"]))
        out = {"global": self.backbone.pooled(fmap).astype(np.float32)}
        if self.grid:
            # Row-major cells: cell y * w + x.
            out["grid"] = fmap.reshape(*fmap.shape[:2], -1).transpose(0, 2, 1).astype(np.float16)
        if self.featurizer is not None:
            feats = self.featurizer.compute(prepared["region_input"], prepared["boxes"], fmap)
            out["regions"] = feats.astype(np.float16)
            for key in ("boxes", "box_scores", "box_classes"):
                out[key] = prepared[key]
        return out

    def features(self, images: Sequence[Image.Image]) -> dict[str, np.ndarray]:
        """All arrays for a few in-memory RGB images (no store involved)."""
        return self.compute(self.prepare(images))


@dataclass
class ExtractResult:
    path: str
    extractor_id: str
    count: int
    #: images computed by this call (0 when the store was already complete)
    computed: int
    seconds: float
    already_done: bool = False
    resumed_from: int = 0
    bad: list[str] = field(default_factory=list)
    arrays: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def images_per_second(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 else 0.0


def extract(
    images: Sequence[tuple[str, str | os.PathLike]],
    out_dir: str | os.PathLike,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    regions: bool = False,
    grid: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    *,
    region_method: str = DEFAULT_REGION_METHOD,
    region_size: int | None = None,
    overwrite: bool = False,
    skip_bad: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    extractor: Extractor | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> ExtractResult:
    """Extract features of ``images`` (``(name, path)`` pairs) into the store ``out_dir``.

    Resumes an interrupted run of the same extractor and image list; does nothing when the
    store is already complete. A store or partial run by another extractor, or of other
    images, is an error unless ``overwrite``. ``extractor`` replaces the backbone/regions
    arguments; ``on_batch(done)`` is called after each batch is safely on disk.
    """
    started = time.perf_counter()
    names = [str(name) for name, _ in images]
    paths = [os.fspath(path) for _, path in images]
    if not names:
        raise ScenetalkError("no images to extract features from")
    _check_unique(names)
    if batch_size < 1:
        raise ScenetalkError(f"batch size must be at least 1, got {batch_size}")
    ex = extractor or Extractor(backbone, regions=regions, grid=grid,
                                region_method=region_method, region_size=region_size)
    specs = ex.array_specs(len(names))
    out = os.path.abspath(os.fspath(out_dir))
    partial = os.path.join(out, PARTIAL_DIR)
    if os.path.exists(out) and not os.path.isdir(out):
        raise FeatureStoreError(f"{out}: exists and is not a folder")
    os.makedirs(out, exist_ok=True)

    with _locked(out):
        done = _complete_result(out, ex, names, specs, overwrite, started)
        if done is not None:
            return done
        _check_folder(out)

        state = _read_progress(partial)
        if state is not None:
            problem = _mismatch(state, ex.extractor_id, names, specs, "an interrupted extraction", exact=True)
            if problem is not None:
                if not overwrite:
                    raise FeatureStoreError(f"{out}: {problem}; pass --overwrite to discard it")
                state = None
        if state is None:
            _remove_store(out)  # arrays a crashed run moved out before writing its index
            state = _start_partial(partial, ex.extractor_id, names, specs)

        resumed_from = state["done"]
        if state["done"] < len(names):
            _run(ex, state, partial, names, paths, specs, batch_size, progress, skip_bad, max_pixels, on_batch)
        index = _finish(out, partial, ex, names, specs, state)

    return ExtractResult(out, ex.extractor_id, len(names), len(names) - resumed_from,
                         time.perf_counter() - started, resumed_from=resumed_from,
                         bad=list(index["bad"]), arrays={k: tuple(s.shape) for k, s in specs.items()})


def _complete_result(out: str, ex: Extractor, names: list[str], specs: dict[str, ArraySpec], overwrite: bool,
                     started: float) -> ExtractResult | None:
    """The result of extracting into ``out`` when it holds these features already (None when
    it holds no complete store, or one of others that ``overwrite`` removed; an error when it
    holds one of others and not ``overwrite``). Called holding the folder's lock."""
    existing = _complete_store(out)
    if existing is None:
        return None
    problem = _mismatch(existing, ex.extractor_id, names, specs, "a feature store", exact=False)
    if problem is None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(os.path.join(out, PARTIAL_DIR))  # a stale partial next to a complete store
        return ExtractResult(out, ex.extractor_id, len(names), 0, time.perf_counter() - started,
                             already_done=True, bad=list(existing.get("bad", [])),
                             arrays={k: tuple(v["shape"]) for k, v in existing["arrays"].items()})
    if not overwrite:
        raise FeatureStoreError(f"{out}: {problem}; pass --overwrite to replace it")
    _remove_store(out)
    return None


def store_status(images: Sequence[tuple[str, str | os.PathLike]], out_dir: str | os.PathLike, ex: Extractor,
                 overwrite: bool = False) -> ExtractResult | None:
    """What ``extract`` checks before any work, for extractions that run elsewhere
    (``features.jobs``): the result when ``out_dir`` holds these features already, None
    when they are still to compute; a store of other features is an error unless ``overwrite``."""
    names = [str(name) for name, _ in images]
    _check_unique(names)
    out = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out) and not os.path.isdir(out):
        raise FeatureStoreError(f"{out}: exists and is not a folder")
    os.makedirs(out, exist_ok=True)
    with _locked(out):
        done = _complete_result(out, ex, names, ex.array_specs(len(names)), overwrite, time.perf_counter())
        if done is None:
            _check_folder(out)
        return done


#: Rows copied at a time when shards are merged: 1,024 rows of regions are 50 MB.
MERGE_ROWS = 1024


def merge_stores(out_dir: str | os.PathLike, shards: Sequence[str | os.PathLike], ex: Extractor,
                 names: list[str]) -> dict:
    """One store at ``out_dir`` of complete shard stores (``features.jobs``), which hold
    ``names`` in order: their arrays copied into ``.partial`` a block of rows at a time, then
    renamed into place and ``index.json`` written last (``_finish``). Returns the index."""
    from scenetalk.features.store import FeatureStore

    out = os.path.abspath(os.fspath(out_dir))
    specs = ex.array_specs(len(names))
    with _locked(out):
        partial = os.path.join(out, PARTIAL_DIR)
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial)
        arrays = {name: np.lib.format.open_memmap(os.path.join(partial, array_file(name)), "w+",
                                                  np.dtype(spec.dtype), spec.shape) for name, spec in specs.items()}
        row, bad = 0, []
        for shard in shards:
            store = FeatureStore.open(shard, expect_extractor_id=ex.extractor_id)
            if store.names != names[row:row + len(store)]:
                raise FeatureStoreError(f"{shard}: holds other images than its shard of the list; run again")
            for name, target in arrays.items():
                source = store.array(name)
                for a in range(0, len(store), MERGE_ROWS):
                    target[row + a:row + min(a + MERGE_ROWS, len(store))] = source[a:a + MERGE_ROWS]
            reasons = store.index.get("bad_reasons", {})
            bad += [(name, reasons.get(name, "")) for name in store.bad]
            row += len(store)
        if row != len(names):
            raise FeatureStoreError(f"{out}: the shards hold {row} images of {len(names)}; run again")
        for array in arrays.values():
            array.flush()
        del arrays
        return _finish(out, partial, ex, names, specs, {"bad": bad})


#: The ``dataset`` of ``image_list`` and ``extract_images`` that means "every image in the folder".
FOLDER = "folder"


def image_list(dataset: str, images_dir: str | os.PathLike | None = None,
               root: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """(name, path) pairs to extract: a dataset's images (a name or file for
    ``data.registry.load_dataset``; each image once, in order, from ``images_dir`` or the
    dataset's own folder), or with ``dataset="folder"`` every image file directly in ``images_dir``."""
    from scenetalk.data.registry import load_dataset
    from scenetalk.vision.images import list_images

    if dataset == FOLDER:
        if not images_dir:
            raise ScenetalkError("DATASET 'folder' needs --images DIR")
        return [(name, os.path.join(images_dir, name)) for name in list_images(images_dir)]
    loaded = load_dataset(dataset, root=root, image_dir=images_dir)
    if not loaded.image_dir:
        raise ScenetalkError(f"dataset {dataset!r}: image folder unknown; pass --images DIR")
    seen, pairs = set(), []
    for record in loaded.images:
        if record.relpath not in seen:
            seen.add(record.relpath)
            pairs.append((record.relpath, os.path.join(loaded.image_dir, record.relpath)))
    return pairs


#: The crop (or RoI image) sizes ``extract_images`` accepts: below 32 pixels the CNN's feature
#: map has no cells left; above 2048 one photo's 19 crops take gigabytes.
MIN_REGION_SIZE, MAX_REGION_SIZE = 32, 2048


# -- the batch loop ------------------------------------------------------------------------

def _run(ex, state, partial, names, paths, specs, batch_size, progress, skip_bad, max_pixels, on_batch) -> None:
    
    count = len(paths)
    files = {name: os.path.join(partial, array_file(name)) for name in specs}
    for name, file in files.items():
        check_array(file, _open_partial(file), specs[name])

    starts = range(state["done"], count, batch_size)
    batches = ((s, paths[s:s + batch_size]) for s in starts)

    def load(batch):
        start, batch_paths = batch
        good, pictures, bad = [], [], []
        for offset, path in enumerate(batch_paths):
            try:
                pictures.append(load_image(path, max_pixels=max_pixels))
                good.append(offset)
            except ImageError as exc:
                if not skip_bad:
                    raise
                bad.append((names[start + offset], str(exc)))
        return start, len(batch_paths), good, bad, ex.prepare(pictures)

    bar = progress_bar(total=count, initial=state["done"], unit="img", desc="features", disable=not progress,
                       smoothing=0.05)
    try:
        for start, size, good, bad, prepared in _prefetch(load, batches):
            computed = ex.compute(prepared)
            for name, file in files.items():
                # Mapped per batch, not for the whole run: the written pages leave this
                # process's memory (they stay in the page cache) instead of piling up.
                array = _open_partial(file)
                block = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
                block[good] = computed[name]
                array[start:start + size] = block
                array.flush()  # on disk before the progress file says it is
                del array
            for name, reason in bad:
                bar.write(f"skipped {reason}")
            state["bad"].extend([name, reason] for name, reason in bad)
            state["done"] = start + size
            atomic_write_text(os.path.join(partial, PROGRESS_FILE), json.dumps(state))
            bar.update(size)
            if on_batch is not None:
                on_batch(state["done"])
    finally:
        bar.close()


def _open_partial(file: str) -> np.ndarray:
    try:
        return np.load(file, mmap_mode="r+", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FeatureStoreError(f"{file}: unreadable partial array ({exc}); pass --overwrite to start again") from None


def _prefetch(fn: Callable, items: Iterator) -> Iterator:
    """``fn(item)`` for each item, computed in a background thread up to two items ahead.

    An exception in ``fn`` is raised here, in the consumer, at the item that caused it.
    """
    results: queue.Queue = queue.Queue(maxsize=PREFETCH_BATCHES)
    stop = threading.Event()
    done = object()

    def work():
        try:
            for item in items:
                if stop.is_set():
                    return
                results.put((True, fn(item)))
            results.put((True, done))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            results.put((False, exc))

    thread = threading.Thread(target=work, name="scenetalk-image-loader", daemon=True)
    thread.start()
    try:
        while True:
            ok, value = results.get()
            if not ok:
                raise value
            if value is done:
                return
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                results.get(timeout=0.05)
        thread.join()


# -- the partial folder and the finished store --------------------------------------------

def _names_sha256(names: list[str]) -> str:
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()


def _start_partial(partial: str, extractor_id: str, names: list[str], specs: dict[str, ArraySpec]) -> dict:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(partial)
    os.makedirs(partial)
    for name, spec in specs.items():
        array = np.lib.format.open_memmap(os.path.join(partial, array_file(name)), mode="w+",
                                          dtype=np.dtype(spec.dtype), shape=spec.shape)
        array.flush()
        del array
    # The names are written once; progress.json, rewritten after every batch, stays small.
    atomic_write_text(os.path.join(partial, NAMES_FILE), json.dumps(names))
    state = {"extractor_id": extractor_id, "count": len(names), "names_sha256": _names_sha256(names),
             "arrays": {k: s.to_json() for k, s in specs.items()}, "done": 0, "bad": []}
    # Written last: a partial folder without it holds nothing worth resuming.
    atomic_write_text(os.path.join(partial, PROGRESS_FILE), json.dumps(state))
    return state


def _read_progress(partial: str) -> dict | None:
    try:
        with open(os.path.join(partial, PROGRESS_FILE), encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    keys = ("extractor_id", "count", "names_sha256", "arrays", "done", "bad")
    return state if isinstance(state, dict) and all(k in state for k in keys) else None


def _mismatch(found: dict, extractor_id: str, names: list[str], specs: dict[str, ArraySpec], what: str,
              exact: bool) -> str | None:
    """Why ``found`` (an index or a progress state) cannot serve this run, or None.

    A complete store may hold more arrays than asked for; partial work must match exactly.
    """
    if found["extractor_id"] != extractor_id:
        return f"holds {what} by extractor {found['extractor_id']}, not {extractor_id}"
    found_names = found["names_sha256"] if "names_sha256" in found else _names_sha256(list(found["names"]))
    if found_names != _names_sha256(names):
        count = found.get("count", len(found.get("names", ())))
        return f"holds {what} of another image list ({count} images; this run has {len(names)})"
    missing = sorted(set(specs) - set(found["arrays"]))
    if missing:
        return f"holds {what} without {', '.join(missing)} features"
    if exact and set(found["arrays"]) != set(specs):
        return f"holds {what} with other arrays ({', '.join(sorted(found['arrays']))})"
    return None


def _complete_store(out: str) -> dict | None:
    index_path = os.path.join(out, INDEX_FILE)
    return read_index(index_path) if os.path.isfile(index_path) else None


def _remove_store(out: str) -> None:
    # The index first: from then on no reader takes the folder for a complete store.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(out, INDEX_FILE))
    for name in _ARRAY_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(out, name))


def _check_folder(out: str) -> None:
    ours = {INDEX_FILE, PARTIAL_DIR, SHARDS_DIR, *_ARRAY_FILES}
    others = sorted(e for e in os.listdir(out) if e not in ours and not e.startswith("." + INDEX_FILE))
    if others:
        shown = ", ".join(others[:3]) + (" ..." if len(others) > 3 else "")
        raise FeatureStoreError(f"{out}: folder holds other files ({shown}); choose a new or empty folder for features")


def _finish(out: str, partial: str, ex: Extractor, names: list[str], specs: dict[str, ArraySpec], state: dict) -> dict:
    for name in specs:
        source, target = os.path.join(partial, array_file(name)), os.path.join(out, array_file(name))
        if os.path.exists(source):
            os.replace(source, target)
        elif not os.path.exists(target):  # moved by a run that stopped just before the index
            raise FeatureStoreError(f"{source}: missing; pass --overwrite to extract again")
    index = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "extractor_id": ex.extractor_id,
        "extractor": ex.config(),
        "count": len(names),
        "names": names,
        "arrays": {k: s.to_json() for k, s in specs.items()},
        "bad": [name for name, _ in state["bad"]],
        "bad_reasons": {name: reason for name, reason in state["bad"]},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "engine": ex.backbone.engine,
        "versions": _versions(),
    }
    if ex.regions:
        index["class_names"] = {str(k): v for k, v in region_class_names().items()}
    with atomic_path(os.path.join(out, INDEX_FILE)) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(index, f, indent=1)
    shutil.rmtree(partial, ignore_errors=True)
    return index


def _check_unique(names: list[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise ScenetalkError(f"image {name!r} is listed twice")
        seen.add(name)


@contextlib.contextmanager
def _locked(out: str):
    """Hold an exclusive lock on the store folder: two extractions must not share it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FeatureStoreError(f"{out}: another extraction is writing to this folder") from None
        yield
    finally:
        os.close(fd)







def backbone_id(extractor_id: str) -> str:
    """The backbone part of an extractor id (``lite0-…+detector-…`` -> ``lite0-…``): what names
    a store's global and grid features, which a region store holds unchanged."""
    return extractor_id.split("+")[0]


def extractor_for(extractor_id: str, where: str | os.PathLike, grid: bool = True, regions: bool = True) -> Extractor:
    """An ``Extractor`` that gives the features ``extractor_id`` names (global, or with the 20
    regions when the id has a detector part), or a ``CheckpointError`` naming both ids.
    ``regions=False``: only its backbone part (no detector), for a model that reads no regions."""
    if not regions:
        extractor_id = backbone_id(extractor_id)
    name = next((n for n in BACKBONES if extractor_id.startswith(f"{n}-")), None)
    if name is None:
        raise CheckpointError(f"{where}: made for image features {extractor_id!r}, which no installed backbone "
                              f"gives (known: {', '.join(BACKBONES)})")
    extractor = Extractor(create_backbone(name), regions="+" in extractor_id, grid=grid)
    if extractor.extractor_id != extractor_id:
        raise CheckpointError(f"{where}: made for image features {extractor_id!r}, but the installed backbone "
                              f"gives {extractor.extractor_id!r} (other weights or settings); reinstall the "
                              "version it was trained with")
    return extractor


def _versions() -> dict[str, str]:
    """The versions of what computed the features, as ``index.json`` records them."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"numpy": np.__version__}
    for package in ("onnxruntime", "torch"):
        if package == "torch" and not sys.modules.get("torch"):
            continue                      # PyTorch counts only where it ran (SCENETALK_ENGINE=torch)
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found
