"""Uploaded bytes in, a checked RGB photo out; and the request body's size cap.

The format is sniffed from the bytes by Pillow (never trusted from the file name or the
declared content type), and only ``settings.UPLOAD_FORMATS`` are read. The pixel count is read
from the header and checked before a single pixel is decoded (``vision.images.load_image``),
so a decompression bomb costs a header read, not the server's memory.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from scenetalk.errors import ImageError
from scenetalk.service.errors import ServiceError, body, from_library
from scenetalk.service.settings import UPLOAD_FORMATS
from scenetalk.vision.images import load_image


def read_photo(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """The photo in ``data`` (an upload named ``name``), upright, RGB; 400 when it is not an
    image of a format we read (or is empty, truncated or corrupt), 413 when it has more than
    ``max_pixels`` pixels."""
    label = f"upload {name!r}" if name else "upload"
    if not data:
        raise ServiceError(400, "bad_image", f"{label}: empty file")
    try:
        im = Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ServiceError(400, "bad_image", f"{label}: not an image of a format this server reads "
                                             f"({', '.join(UPLOAD_FORMATS)})") from None
    except Image.DecompressionBombError as exc:
        raise ServiceError(413, "image_too_large", f"{label}: image too large ({exc})") from None
    im.filename = label  # load_image's messages name the upload, not "<image>"
    try:
        return load_image(im, max_pixels=max_pixels)
    except ImageError as exc:
        raise from_library(exc) from None


class BodyLimit:
    """ASGI middleware: a request body of more than ``max_bytes`` gets 413, whether it says its
    length (refused before a byte is read) or not (refused once that many have arrived, by a
    ``ServiceError`` raised as the body is read): the multipart parser never spools more."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._too_large(send)
        seen = 0

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise ServiceError(413, "upload_too_large", self._detail())
            return message

        await self.app(scope, counted_receive, send)

    def _detail(self) -> str:
        return f"the request is larger than the limit of {self.max_bytes:,} bytes"

    async def _too_large(self, send):
        import json

        payload = json.dumps(body("upload_too_large", self._detail())).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})
