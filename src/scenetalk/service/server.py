"""Running the app under uvicorn: what ``scenetalk serve`` calls."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket

from scenetalk import runtime
from scenetalk.errors import ScenetalkError
from scenetalk.service.settings import ServiceSettings


def serve(settings: ServiceSettings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          threads: int | None = None) -> int:
    """Serve ``settings`` on ``host:port`` until interrupted: one process, or ``workers``
    processes sharing the port, each with its own models. ``threads``: PyTorch's threads per
    process (default: the cores shared among the model pool's threads and the workers).
    Returns 2 with the one line said when the models cannot be loaded (one process)."""
    import uvicorn

    from scenetalk import checks
    from scenetalk.service.app import SETTINGS_VARIABLE, create_app

    checks.whole_number("--port", port, 0, 65535)
    checks.whole_number("--workers", workers, 1, 64)
    if threads is not None:
        checks.whole_number("--threads", threads, 1, 1024)
    _check_port_free(host, port)
    threads = threads or max(1, (os.cpu_count() or 1) // (settings.concurrency * workers))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"scenetalk serve: loading the models; the page will be at http://{host}:{port}/ "
          f"(API: /docs; ready when /readyz says so)", flush=True)
    if workers > 1:
        os.environ[SETTINGS_VARIABLE] = json.dumps(dataclasses.asdict(settings))
        uvicorn.run("scenetalk.service.app:app_from_environment", factory=True, host=host, port=port,
                    workers=workers, log_level="info")
        return 0
    runtime.set_threads(threads)
    failure: list[str] = []
    server: uvicorn.Server | None = None

    def give_up(line: str) -> None:
        failure.append(line)
        if server is not None:
            server.should_exit = True

    server = uvicorn.Server(uvicorn.Config(create_app(settings, on_load_failure=give_up), host=host, port=port,
                                           log_level="info"))
    server.run()
    if failure:
        raise ScenetalkError(f"could not load the models: {failure[0]}")
    return 0


def _check_port_free(host: str, port: int) -> None:
    """A one-line error now, rather than uvicorn's traceback-free exit after loading."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        raise ScenetalkError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                             "choose another --port or --host") from None
