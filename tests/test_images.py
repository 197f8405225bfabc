"""Image loading edge cases and preprocessing (scenetalk.images)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from scenetalk.errors import ImageError
from scenetalk.vision.images import is_image_file, list_images, load_image, squash_resize, to_batch


def save(im: Image.Image, path, **kwargs):
    im.save(path, **kwargs)
    return path


def assert_names(exc_info, path):
    assert str(path) in str(exc_info.value)
    assert exc_info.value.path == str(path)
    assert "\n" not in str(exc_info.value)


def test_plain_rgb_jpeg(tmp_path):
    path = save(Image.new("RGB", (30, 20), (200, 10, 10)), tmp_path / "a.jpg")
    im = load_image(path)
    assert im.mode == "RGB" and im.size == (30, 20)
    r, g, b = im.getpixel((15, 10))
    assert r > 180 and g < 40 and b < 40


def test_exif_orientation_rotates(tmp_path):
    # Stored 40 wide x 20 high: left half red, right half blue. Orientation 6 means the
    # viewer must turn it 90 degrees clockwise: 20 wide x 40 high, red on top.
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)
    a[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(Image.fromarray(a), tmp_path / "rotated.jpg", exif=exif, quality=95)
    im = load_image(path)
    assert im.size == (20, 40)
    top, bottom = np.asarray(im)[5, 10], np.asarray(im)[35, 10]
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", quality=95)
    im = load_image(path)
    assert im.mode == "RGB"
    r, g, b = im.getpixel((4, 4))
    assert r > 200 and g < 60 and b < 60


def test_rgba_composited_on_white(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[:2] = (255, 0, 0, 0)  # fully transparent red: white
    a[2:] = (255, 0, 0, 128)  # half-transparent red over white: pink
    path = save(Image.fromarray(a, "RGBA"), tmp_path / "alpha.png")
    out = np.asarray(load_image(path))
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert out[3, 3, 0] == 255 and 120 <= out[3, 3, 1] <= 135


def test_la_grey_with_alpha(tmp_path):
    im = Image.new("LA", (4, 4), (0, 0))  # black, fully transparent
    out = load_image(save(im, tmp_path / "la.png"))
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (255, 255, 255)


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((0, 0), 0)
    path = save(im, tmp_path / "pal.png", transparency=0)
    out = load_image(path)
    assert out.getpixel((0, 0)) == (255, 255, 255)  # the transparent index
    assert out.getpixel((2, 2)) == (255, 0, 0)


def test_palette_gif(tmp_path):
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    out = load_image(save(im, tmp_path / "p.gif"))
    assert out.mode == "RGB" and out.getpixel((1, 1)) == (0, 255, 0)


def test_16bit_grey_is_scaled_not_clipped(tmp_path):
    a = np.array([[0, 32896], [65535, 65535]], dtype=np.uint16)
    path = save(Image.fromarray(a), tmp_path / "grey16.png")
    out = np.asarray(load_image(path))
    assert out.shape == (2, 2, 3)
    assert out[0, 0, 0] == 0 and out[1, 1, 0] == 255
    assert 126 <= out[0, 1, 0] <= 130  # half grey stays half grey


def test_grey_and_bilevel(tmp_path):
    assert load_image(save(Image.new("L", (3, 3), 77), tmp_path / "l.png")).getpixel((1, 1)) == (77, 77, 77)
    assert load_image(save(Image.new("1", (3, 3), 1), tmp_path / "b.png")).getpixel((1, 1)) == (255, 255, 255)


def test_truncated_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    path = tmp_path / "truncated.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt") as exc_info:
        load_image(path)
    assert_names(exc_info, path)


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    with pytest.raises(ImageError, match="not an image") as exc_info:
        load_image(path)
    assert_names(exc_info, path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError) as exc_info:
        load_image(path)
    assert_names(exc_info, path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="not found") as exc_info:
        load_image(tmp_path / "nope.jpg")
    assert_names(exc_info, tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="folder") as exc_info:
        load_image(tmp_path)
    assert_names(exc_info, tmp_path)


def test_pixel_limit(tmp_path):
    path = save(Image.new("RGB", (100, 100)), tmp_path / "big.png")
    with pytest.raises(ImageError, match="too large") as exc_info:
        load_image(path, max_pixels=5_000)
    assert_names(exc_info, path)
    assert load_image(path, max_pixels=10_000).size == (100, 100)


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [10_000, 60_000])  # over our limit only; over Pillow's too
def test_decompression_bomb_header_refused_before_decoding(tmp_path, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(side, side))  # 100 megapixels / 3.6 gigapixels in 150 bytes
    with pytest.raises(ImageError, match="too large") as exc_info:
        load_image(path)
    assert_names(exc_info, path)


def test_pil_image_source():
    im = Image.new("RGBA", (5, 5), (0, 0, 255, 0))
    assert load_image(im).getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(ImageError, match="too large"):
        load_image(Image.new("RGB", (10, 10)), max_pixels=50)


def test_listing_images(tmp_path):
    for name in ("b.JPG", "a.png", "c.jpeg", ".hidden.jpg", "notes.txt", "d.webp"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.jpg").write_bytes(b"x")
    assert list_images(tmp_path) == ["a.png", "b.JPG", "c.jpeg", "d.webp"]
    assert list_images(tmp_path, recursive=True) == ["a.png", "b.JPG", "c.jpeg", "d.webp", "sub/e.jpg"]
    assert is_image_file("x/y.Jpg") and not is_image_file("y.txt") and not is_image_file("._y.jpg")
    with pytest.raises(ImageError):
        list_images(tmp_path / "missing")


def test_squash_and_batch():
    wide = Image.new("RGB", (60, 20), (255, 255, 255))
    wide.paste((0, 0, 0), (0, 0, 30, 20))  # left half black
    assert squash_resize(wide, 32).size == (32, 32)
    x = to_batch([wide, Image.new("RGB", (10, 10), (255, 255, 255))], 32)
    assert x.shape == (2, 3, 32, 32) and x.dtype == np.float32
    assert x.flags.c_contiguous   # what ONNX Runtime reads without a copy
    # squash, not crop: the left half stays black, the right half white, in the full frame
    assert np.allclose(x[0, :, :, :14], -1.0) and np.allclose(x[0, :, :, 18:], 1.0)
    assert np.allclose(x[1], 1.0)


@pytest.mark.slow
def test_real_flickr8k_images(shared_data):
    folder = shared_data / "flickr8k" / "images"
    names = list_images(folder)
    assert len(names) == 8091
    for name in names[:3]:
        im = load_image(folder / name)
        assert im.mode == "RGB" and im.size == (224, 224)
