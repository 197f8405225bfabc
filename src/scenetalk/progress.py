"""Progress bars for long work: tqdm on a terminal; in a log file (not a terminal) a line
every 30 seconds instead of a redraw every 0.1 s, so logs stay readable."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(*args, **kwargs) -> tqdm:
    kwargs.setdefault("file", sys.stderr)
    if not getattr(kwargs["file"], "isatty", lambda: False)():
        kwargs.setdefault("mininterval", 30.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(*args, **kwargs)
