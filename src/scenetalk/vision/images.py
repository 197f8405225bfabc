"""Reading images safely and turning them into network input.

``load_image`` accepts whatever a user's folder may hold and returns a plain RGB image, or
raises ``ImageError`` naming the file: missing files, folders, non-images, truncated or
corrupt files, and decompression bombs (an image whose header claims more pixels than
``max_pixels``) are all errors, never warnings or half-decoded pictures.

Preprocessing matches the data: the Flickr8K images here were squashed to 224x224 without
keeping the aspect ratio, so every image (and every region crop) is squash-resized to SxS
the same way, never centre-cropped, before the backbone's normalisation.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from scenetalk.errors import ImageError

#: File name endings treated as images when listing a folder (compared in lower case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

#: Pillow's own limit (about 89.5 megapixels, e.g. 10,000 x 8,950). A larger photo needs an
#: explicit ``max_pixels``; Pillow itself refuses anything over twice its limit.
DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485

#: Pillow's resampling filter for squash-resizing (bicubic, as EfficientNet's evaluation did).
RESAMPLE = Image.Resampling.BICUBIC

_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_HIGH_DEPTH_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an image by its extension (the file is not opened)."""
    name = os.path.basename(os.fspath(path))
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def file_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it exists but is not a regular file ("a folder", "a named pipe
    (FIFO)", "a device", "a socket"), by ``os.stat`` (links followed), without opening it;
    None for a regular file or a path that cannot be stat'ed (opening it says why)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def list_images(folder: str | os.PathLike, recursive: bool = False) -> list[str]:
    """Image files in ``folder`` (by extension), as paths relative to it, sorted.

    Hidden files (such as macOS ``._name.jpg`` resource forks) are left out, and so are
    entries that are not regular files (named pipes, devices, sockets: opening one may block).
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ImageError(folder, "not a folder")
    found = []
    if recursive:
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = os.path.relpath(root, folder)
            for name in files:
                if is_image_file(name) and file_kind(os.path.join(root, name)) is None:
                    found.append(name if rel == "." else os.path.join(rel, name))
    else:
        for entry in os.scandir(folder):
            if entry.is_file() and is_image_file(entry.name):
                found.append(entry.name)
    return sorted(found)


def collect_inputs(targets: Iterable[str | os.PathLike], recursive: bool = False) -> tuple[list[str], list[str]]:
    """The image paths ``targets`` name (files as given; folders listed by extension with
    ``list_images``, sub-folders too when ``recursive``), and one line for each target that
    gave nothing or left files out (missing path, empty folder, files that are not images by
    name). A named file is not opened here: ``load_image`` says later whether it is an image."""
    paths, problems = [], []
    for target in map(os.fspath, targets):
        if os.path.isdir(target):
            found = list_images(target, recursive=recursive)
            others = _other_files(target, recursive)
            if others:
                problems.append(f"{target}: skipped {len(others)} file(s) that are not images by name "
                                f"(e.g. {others[0]})")
            if not found:
                problems.append(f"{target}: no images in this folder"
                                + ("" if recursive else " (use --recursive to look in sub-folders)"))
            paths.extend(os.path.join(target, rel) for rel in found)
        elif file_kind(target) is not None:  # a FIFO, device or socket: never opened
            problems.append(f"{target}: {file_kind(target)}, not an image file")
        elif os.path.exists(target):
            paths.append(target)
        else:
            problems.append(f"{target}: no such file or folder")
    return paths, problems


def _other_files(folder: str, recursive: bool) -> list[str]:
    """The files of ``folder`` that ``list_images`` leaves out (hidden ones aside), sorted."""
    if recursive:
        return sorted(os.path.relpath(os.path.join(root, n), folder) for root, dirs, files in os.walk(folder)
                      for n in files if not n.startswith(".") and not is_image_file(n))
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")
                  and not is_image_file(e.name))


def load_image(source: str | os.PathLike | Image.Image, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open ``source`` fully and return it upright, in RGB.

    EXIF orientation is applied; grey, 16-bit, CMYK and palette images become RGB, and
    transparency (alpha, or a palette's transparent colour) is composited on white.
    ``max_pixels=None`` lifts the limit (up to Pillow's own hard limit).
    """
    if isinstance(source, Image.Image):
        name = getattr(source, "filename", "") or "<image>"
        _check_size(name, source.size, max_pixels)
        try:
            source.load()
            return _to_rgb(name, source)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(name, f"truncated or corrupt image ({exc})") from None

    path = os.fspath(source)
    kind = file_kind(path)  # by stat, before open: opening a named pipe blocks until someone writes
    if kind == "a folder":
        raise ImageError(path, "is a folder, not an image")
    if kind is not None:
        raise ImageError(path, f"{kind}, not an image file")
    try:
        with Image.open(path) as im:
            # The header is read; refuse bombs before decoding a single pixel.
            _check_size(path, im.size, max_pixels)
            # Pillow decodes lazily: force the full decode so truncation shows up here.
            im.load()
            return _to_rgb(path, im)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(path, "file not found") from None
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(path, "not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(path, f"image too large ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated and corrupt data as OSError (sometimes SyntaxError/ValueError).
        raise ImageError(path, f"truncated or corrupt image ({exc})") from None


def _check_size(name: str, size: tuple[int, int], max_pixels: int | None) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(name, f"image has no pixels ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(
            name,
            f"image too large: {width}x{height} = {width * height:,} pixels is over the limit of "
            f"{max_pixels:,} (a possible decompression bomb)",
        )


def _to_rgb(name: str, im: Image.Image) -> Image.Image:
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block should not lose the picture itself
        im = im.copy()
    if im.mode in _HIGH_DEPTH_MODES:
        im = _high_depth_to_grey(im)
    if im.mode == "P" or "transparency" in im.info:
        # Palette transparency and tRNS colour keys become a real alpha channel first.
        im = im.convert("RGBA")
    if im.mode in _ALPHA_MODES:
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return im


def _high_depth_to_grey(im: Image.Image) -> Image.Image:
    # Pillow's convert("L") clips 16-bit values at 255 (nearly all white); scale instead.
    a = np.asarray(im)
    if a.dtype.kind == "f":
        a = np.nan_to_num(a.astype(np.float64))
        a = a * 255.0 if a.max(initial=0.0) <= 1.0 else a
    elif a.max(initial=0) > 255 or im.mode.startswith("I;16"):
        a = a.astype(np.float64) / 257.0
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), mode="L")


def squash_resize(im: Image.Image, size: int) -> Image.Image:
    """Resize to ``size`` x ``size`` without keeping the aspect ratio (as the data was made)."""
    if im.size == (size, size):
        return im
    return im.resize((size, size), RESAMPLE)


def to_uint8_batch(images: Sequence[Image.Image], size: int) -> np.ndarray:
    """RGB images -> (B, size, size, 3) uint8, squash-resized."""
    if not images:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([np.asarray(squash_resize(im, size), dtype=np.uint8) for im in images])


def normalize(
    batch: np.ndarray,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
) -> np.ndarray:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float32, ``(x / 255 - mean) / std`` per channel."""
    scale = np.array([1.0 / (255.0 * s) for s in std], np.float32)
    shift = np.array([m / s for m, s in zip(mean, std)], np.float32)
    x = np.asarray(batch, dtype=np.float32) * scale - shift
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def to_batch(
    images: Sequence[Image.Image],
    size: int,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
) -> np.ndarray:
    """RGB images -> a normalised (B, 3, size, size) float32 array."""
    return normalize(to_uint8_batch(images, size), mean, std)


ImageLike = str | os.PathLike | Image.Image


def loaded_batches(images: ImageLike | Iterable[ImageLike], batch_size: int) -> Iterator[list[Image.Image]]:
    """Paths or PIL images, one or many, as batches of loaded RGB images (``load_image``
    raises an ``ImageError`` naming any file it cannot read)."""
    if isinstance(images, (str, os.PathLike, Image.Image)):
        images = [images]
    images = list(images)
    for start in range(0, len(images), batch_size):
        yield [load_image(im) for im in images[start:start + batch_size]]
