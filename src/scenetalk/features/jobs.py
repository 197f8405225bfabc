"""What ``scenetalk features`` and ``index build`` run: the checked list of images, extracted
in this process (``extract.extract``) or on a Ray cluster (``--ray [ADDRESS]``, ``extract_on_ray``).

On Ray, the photo list is cut into shards of ``SHARD_PHOTOS`` photos. Each shard is one Ray task that
runs ``extract`` (backbone and detector, one thread each) into a store of its own under
``OUT/.shards/NNNN``: a shard is resumable, and once complete it is not computed again when
the command is run again. When every shard is complete they are copied, in order, into one
store at ``OUT`` whose ``index.json`` is written last (``extract.merge_stores``), so ``OUT`` is
either the complete store or not a store at all. A shard is a whole number of batches, so
every image is computed in the batch it would be in one process: the store is the one a
single process writes, array for array (``tests/test_cluster.py``).

Ray is optional (``pip install "scenetalk[cluster]"``); without ``--ray`` nothing here is
imported. ``ADDRESS`` is what ``ray.init`` takes (``auto``, ``HOST:6379``, ``ray://HOST:10001``);
without one a local cluster is started for the command (``workers`` tasks at once, default
every core) and stopped after it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from functools import partial

from scenetalk.errors import ImageError, ScenetalkError
from scenetalk.features.extract import (
    DEFAULT_BATCH_SIZE,
    FOLDER,
    MAX_REGION_SIZE,
    MIN_REGION_SIZE,
    SHARDS_DIR,
    Extractor,
    ExtractResult,
    extract,
    image_list,
    merge_stores,
    store_status,
)
from scenetalk.vision.backbones import DEFAULT_BACKBONE, Backbone
from scenetalk.vision.regions import DEFAULT_REGION_METHOD

#: Photos a task extracts: 64 batches of 16, about 2-3 minutes of one core with regions.
SHARD_PHOTOS = 1024


def need_ray():
    try:
        import ray
    except ImportError:
        raise ScenetalkError('--ray needs Ray, which is not installed: pip install "scenetalk[cluster]"') from None
    return ray


#: Seconds to wait for a cluster's address to answer before Ray is asked to join it: Ray's own
#: client waits far longer (over 3 minutes) for an address where nothing listens.
CONNECT_TIMEOUT_S = 5


def check_reachable(address: str | None) -> None:
    """A one-line error unless ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``; None or
    ``auto`` are Ray's to find) answers a TCP connection within ``CONNECT_TIMEOUT_S``."""
    import socket

    if address in (None, "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ScenetalkError(f"--ray {address}: not a cluster address (give auto, HOST:6379 or ray://HOST:10001)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ScenetalkError(f"--ray {address}: nothing answers there ({exc.strerror or exc}); start the cluster "
                             "with `ray start --head`, or give its head's address") from None


def _extract_shard(images: list[tuple[str, str]], folder: str, make_extractor: Callable[[], Extractor],
                   batch_size: int, skip_bad: bool) -> tuple[int, str | None]:
    """One Ray task: a shard's store (resumed if interrupted); the images it computed, and the
    message of a user's mistake it met (a bad image: a one-line error, as in one process; our
    errors' constructors take other arguments than their message, so they are not sent whole)."""
    from scenetalk import runtime

    runtime.set_threads(1)  # the task holds one CPU of the cluster
    try:
        result = extract(images, folder, extractor=make_extractor(), batch_size=batch_size, progress=False,
                         skip_bad=skip_bad, overwrite=True)
    except ScenetalkError as exc:
        return 0, str(exc)
    return result.computed, None


def extract_on_ray(images: Sequence[tuple[str, str]], out_dir: str | os.PathLike,
                   make_extractor: Callable[[], Extractor], address: str | None = None, workers: int | None = None,
                   batch_size: int = DEFAULT_BATCH_SIZE, shard_photos: int = SHARD_PHOTOS, progress: bool = True,
                   skip_bad: bool = False, overwrite: bool = False) -> ExtractResult:
    """``extract`` of ``images`` into ``out_dir`` by Ray tasks, a shard each (see the module).
    ``make_extractor``: a picklable function that makes the ``Extractor`` (each task makes its
    own); ``address``: a running cluster's (None: a local one of ``workers`` CPUs)."""
    from scenetalk.progress import progress_bar

    started = time.perf_counter()
    images = [(str(name), os.fspath(path)) for name, path in images]
    if not images:
        raise ScenetalkError("no images to extract features from")
    shard_photos = max(batch_size, shard_photos // batch_size * batch_size)  # whole batches: the same results
    extractor = make_extractor()
    done = store_status(images, out_dir, extractor, overwrite)
    if done is not None:   # complete already: nothing to compute
        return done
    out = os.path.abspath(os.fspath(out_dir))
    shards = [images[a:a + shard_photos] for a in range(0, len(images), shard_photos)]
    width = max(4, len(str(len(shards))))
    folders = [os.path.join(out, SHARDS_DIR, f"{i:0{width}d}") for i in range(len(shards))]
    ray = need_ray()
    started_here = not ray.is_initialized()
    if started_here:
        check_reachable(address)
        try:
            ray.init(address=address, num_cpus=None if address else (workers or os.cpu_count()),
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ScenetalkError(f"--ray {address or ''}: could not start or reach a Ray cluster "
                                 f"({' '.join(str(exc).split())})") from None
    try:
        task = ray.remote(num_cpus=1, max_retries=2)(_extract_shard)
        pending = {task.remote(shard, folder, make_extractor, batch_size, skip_bad): len(shard)
                   for shard, folder in zip(shards, folders)}
        computed = 0
        with progress_bar(total=len(images), disable=not progress, unit="image",
                          desc=f"extracting on Ray ({len(shards)} shards)") as bar:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                images_done, problem = ray.get(ready[0])
                if problem is not None:   # the other shards' work is kept: the same command resumes
                    raise ScenetalkError(problem)
                computed += images_done
                bar.update(pending.pop(ready[0]))
    finally:
        if started_here:
            ray.shutdown()
    index = merge_stores(out, folders, extractor, [name for name, _ in images])
    shutil.rmtree(os.path.join(out, SHARDS_DIR), ignore_errors=True)
    specs = extractor.array_specs(len(images))
    return ExtractResult(out, extractor.extractor_id, len(images), computed, time.perf_counter() - started,
                         bad=list(index["bad"]), arrays={k: tuple(s.shape) for k, s in specs.items()})


def extract_images(
    dataset: str,
    out_dir: str | os.PathLike,
    images_dir: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    limit: int | None = None,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    regions: bool = False,
    grid: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    *,
    region_method: str | None = None,
    region_size: int | None = None,
    overwrite: bool = False,
    skip_bad: bool = False,
    ray: bool | str | None = None,
) -> ExtractResult:
    """``extract`` for the images of ``image_list(dataset, images_dir, root)`` (the first
    ``limit`` of them), as ``scenetalk features`` runs it: the arguments are checked first, and
    unless ``skip_bad`` a missing image file stops the run before any work (a wrong image folder
    should fail now, not after minutes of work). ``region_method`` and ``region_size`` need
    ``regions``; ``region_method`` defaults to ``vision.regions.DEFAULT_REGION_METHOD``.
    ``ray``: extract on a Ray cluster (``extract_on_ray``), True for a local one or the
    address of a running one."""
    if limit is not None and limit < 1:
        raise ScenetalkError(f"--limit must be at least 1, got {limit}")
    if (region_method or region_size is not None) and not regions:
        raise ScenetalkError("--region-method and --region-size need --regions")
    if region_size is not None and not (type(region_size) is int and MIN_REGION_SIZE <= region_size <= MAX_REGION_SIZE):
        raise ScenetalkError(f"--region-size must be a whole number of pixels from {MIN_REGION_SIZE} to "
                             f"{MAX_REGION_SIZE} (got {region_size!r})")
    images = image_list(dataset, images_dir, root)
    if limit is not None:
        images = images[:limit]
    if not images:
        raise ScenetalkError(f"no images found in {images_dir}" if dataset == FOLDER else "the dataset lists no images")
    if not skip_bad:
        missing = [path for _, path in images if not os.path.isfile(path)]
        if missing:
            raise ImageError(missing[0], f"file not found ({len(missing)} of {len(images)} images are missing; "
                                         "check --images, or pass --skip-bad)")
    make = partial(Extractor, backbone, regions=regions, grid=grid,
                   region_method=region_method or DEFAULT_REGION_METHOD, region_size=region_size)
    return extract_with(images, out_dir, make, ray, batch_size=batch_size, progress=progress, skip_bad=skip_bad,
                        overwrite=overwrite)


def extract_with(images: Sequence[tuple[str, str]], out_dir: str | os.PathLike, make: Callable[[], Extractor],
                 ray: bool | str | None = None, *, batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True,
                 skip_bad: bool = False, overwrite: bool = False) -> ExtractResult:
    """The one choice between this process and a cluster: ``extract`` with the extractor
    ``make()`` builds, or, with ``ray`` (True: a local cluster; or its address), ``extract_on_ray``
    with ``make`` run on each worker. The same store either way."""
    if ray:
        return extract_on_ray(images, out_dir, make, address=None if ray is True else ray, batch_size=batch_size,
                              progress=progress, skip_bad=skip_bad, overwrite=overwrite)
    return extract(images, out_dir, extractor=make(), batch_size=batch_size, progress=progress,
                   overwrite=overwrite, skip_bad=skip_bad)
