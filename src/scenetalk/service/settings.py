"""What ``scenetalk serve`` loads and the limits every request is held to, in one object.

Each limit is one a client can rely on (README "Serve"): a request past it gets its error
status and the one error shape (``service.errors``), never a blow-up of the server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from scenetalk import checks
from scenetalk.errors import ScenetalkError

#: Uploaded bytes of one request (the photo and its form fields): over it, 413.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: Pixels of one uploaded photo (width × height, read from its header before any pixel is
#: decoded): over it, 413. 25 million is a 6,000 × 4,000 camera photo; an RGB copy of it is
#: 75 MB, so a few at once cannot take the server's memory.
MAX_UPLOAD_PIXELS = 25_000_000
#: Seconds one request may take, its wait in the queue included: over it, 504.
REQUEST_TIMEOUT_S = 30.0
#: Model calls run at once (a thread each), and requests that may wait for one: when that
#: many are waiting, 503 with Retry-After.
CONCURRENCY = 2
QUEUE = 64
#: Dynamic batching of caption requests: the first waits this long for others to join its
#: batch, and a batch holds at most this many photos.
BATCH_WAIT_S = 0.005
MAX_BATCH = 16
#: The formats an upload may be, sniffed from its bytes (never from its name): Pillow's
#: other readers (EPS through Ghostscript, and the like) are not offered to strangers.
UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
#: Longest side of a photo served by ``/v1/indexes/{name}/photos/{id}``.
MAX_PHOTO_SIDE = 2048


@dataclass
class ServiceSettings:
    """``indexes``: name → index folder (``scenetalk index build``), searchable by name;
    ``captioner`` and ``alignment``: checkpoints (None: the shipped ones)."""
    indexes: dict[str, str] = field(default_factory=dict)
    captioner: str | None = None
    alignment: str | None = None
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_upload_pixels: int = MAX_UPLOAD_PIXELS
    request_timeout_s: float = REQUEST_TIMEOUT_S
    concurrency: int = CONCURRENCY
    queue: int = QUEUE
    batch_wait_s: float = BATCH_WAIT_S
    max_batch: int = MAX_BATCH

    def __post_init__(self):
        checks.whole_number("max_upload_bytes (--max-upload-mb)", self.max_upload_bytes, 1)
        checks.whole_number("max_upload_pixels (--max-pixels)", self.max_upload_pixels, 1)
        checks.finite_number("request_timeout_s (--timeout)", self.request_timeout_s, 0.001)
        checks.whole_number("concurrency (--concurrency)", self.concurrency, 1, 256)
        checks.whole_number("queue (--queue)", self.queue, 0, 100_000)
        checks.finite_number("batch_wait_s", self.batch_wait_s, 0.0, 10.0)
        checks.whole_number("max_batch (--max-batch)", self.max_batch, 1, 1024)
        for name, folder in self.indexes.items():
            if not name or "/" in name:
                raise ScenetalkError(f"--index: {name!r} is not a name an index can be served under "
                                     "(no slashes, not empty)")
            checks.path(f"--index {name}", folder)


def index_names(folders: list[str]) -> dict[str, str]:
    """``--index`` values (``FOLDER`` or ``NAME=FOLDER``) as name → folder: a folder's name is
    its last path part; two indexes of one name are refused, and so is a folder that is not
    there."""
    out: dict[str, str] = {}
    for value in folders:
        name, _, folder = value.rpartition("=") if "=" in value else ("", "", value)
        name = name or Path(os.path.normpath(folder)).name
        if not Path(folder).is_dir():
            raise ScenetalkError(f"--index {value}: {folder} is not a folder (build one with "
                                 "`scenetalk index build DIR --out INDEX`)")
        if name in out:
            raise ScenetalkError(f"--index {value}: two indexes are named {name!r}; name them with NAME=FOLDER")
        out[name] = folder
    return out
