"""What the service benchmarks share (fuzz_api.py, load_test.py): a server started as a user
starts it, on a free loopback port, and the index it serves."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
BIN = Path(sys.executable).parent
#: The Flickr8K test index of serve_test_index.py.
TEST_INDEX = REPO / "runs" / "serve" / "flickr8k-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample_index(folder: Path) -> Path:
    """An index of the bundled sample photos, with a few sentences, built in ``folder``."""
    from scenetalk.data.sample_photos import sample_photo_paths
    from scenetalk.retrieval.index import index_folder

    photos = folder / "photos"
    photos.mkdir()
    for p in sample_photo_paths():
        shutil.copy(p, photos / p.name)
    (folder / "sentences.txt").write_text("a cat lying on a blanket\na man in a space suit\na cup of coffee\n")
    return index_folder(photos, folder / "samples", sentence_file=folder / "sentences.txt", progress=False).out


def start_server(index: Path, port: int, log: Path, extra: list[str] = ()) -> subprocess.Popen:
    """``scenetalk serve --index test=INDEX --port PORT [extra]``, its output to ``log``, once
    ``/readyz`` answers 200."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    server = subprocess.Popen([str(BIN / "scenetalk"), "serve", "--index", f"test={index}", "--port", str(port),
                               *extra], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"the server stopped: {log.read_text()[-2000:]}")
        time.sleep(1)
    server.kill()
    raise SystemExit("the server did not become ready in 300 s")


def rss_mb(pid: int) -> float:
    """The process's resident memory, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
