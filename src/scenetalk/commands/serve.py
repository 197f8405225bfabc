"""``scenetalk serve [--index INDEX ...]``: the web page and the REST API (scenetalk.service)."""

from __future__ import annotations

import argparse

from scenetalk.commands import add_checkpoint


def run(args: argparse.Namespace) -> int:
    from scenetalk.service.server import serve
    from scenetalk.service.settings import ServiceSettings, index_names

    settings = ServiceSettings(indexes=index_names(args.index or []), captioner=args.checkpoint,
                               alignment=args.alignment, max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
                               max_upload_pixels=args.max_pixels, request_timeout_s=args.timeout,
                               concurrency=args.concurrency, queue=args.queue, max_batch=args.max_batch)
    return serve(settings, host=args.host, port=args.port, workers=args.workers, threads=args.threads)


def register(sub: argparse._SubParsersAction) -> None:
    from scenetalk.service import settings as s

    p = sub.add_parser("serve", help="serve the web page and the REST API",
                       description="Serve scenetalk over HTTP: a web page (caption, regions, alignment, search, "
                                   "browse) at / and a REST API (OpenAPI at /docs) for every capability, with the "
                                   "shipped models (or the given ones) loaded once.")
    p.add_argument("--index", action="append", metavar="[NAME=]INDEX",
                   help="a search index to serve (`scenetalk index build`); repeat for more; its name is its "
                        "folder's unless given")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="processes, each with its own models (default 1)")
    p.add_argument("--threads", type=int, help="model threads per process, ONNX Runtime or PyTorch (default: the cores shared out)")
    add_checkpoint(p, "caption generator checkpoint", metavar="GEN")
    p.add_argument("--alignment", help="alignment checkpoint (default: the shipped one)")
    p.add_argument("--max-upload-mb", type=float, default=s.MAX_UPLOAD_BYTES / 2**20,
                   help=f"largest request in MB (default {s.MAX_UPLOAD_BYTES / 2**20:g}); larger: 413")
    p.add_argument("--max-pixels", type=int, default=s.MAX_UPLOAD_PIXELS,
                   help=f"most pixels of an uploaded photo (default {s.MAX_UPLOAD_PIXELS:,}); more: 413")
    p.add_argument("--timeout", type=float, default=s.REQUEST_TIMEOUT_S,
                   help=f"seconds a request may take, queue included (default {s.REQUEST_TIMEOUT_S:g}); longer: 504")
    p.add_argument("--concurrency", type=int, default=s.CONCURRENCY,
                   help=f"model calls at once (default {s.CONCURRENCY})")
    p.add_argument("--queue", type=int, default=s.QUEUE,
                   help=f"requests that may wait for a model call (default {s.QUEUE}); more: 503")
    p.add_argument("--max-batch", type=int, default=s.MAX_BATCH,
                   help=f"photos one caption batch holds (default {s.MAX_BATCH})")
    p.set_defaults(func=run)
