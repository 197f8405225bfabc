"""Issue #15: the index the service benchmarks and screenshots serve, over Flickr8K test.

    python benchmarks/serve_test_index.py --root ../shared/data      # -> runs/serve/flickr8k-test

The split's 1,000 photos (a folder of links to them, so nothing is copied) with its 5,000
reference sentences stored for ``describe``, built with the shipped alignment model as a user
would: ``scenetalk index build PHOTOS --out INDEX --sentences FILE``. Then, as the paper's
ranking demo, ``scenetalk serve --index runs/serve/flickr8k-test`` browses it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def main() -> None:
    from scenetalk.data.registry import load_dataset
    from scenetalk.retrieval.index import index_folder

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=None)
    p.add_argument("--out", default=str(REPO / "runs" / "serve"))
    args = p.parse_args()
    dataset = load_dataset("flickr8k", root=args.root)
    out = Path(args.out)
    photos = out / "flickr8k-test-photos"
    photos.mkdir(parents=True, exist_ok=True)
    references = {}
    for record in dataset.split("test"):
        link = photos / record.file_name
        if not link.exists():
            os.symlink(os.path.abspath(os.path.join(dataset.image_dir, record.subdir, record.file_name)), link)
        references[record.file_name] = [s.raw.strip() for s in record.sentences]
    lines = [s for refs in references.values() for s in refs]
    (out / "flickr8k-test-sentences.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # each photo's references, for the load test's align requests
    (out / "flickr8k-test-references.json").write_text(json.dumps(references, indent=0), encoding="utf-8")
    summary = index_folder(photos, out / "flickr8k-test", sentence_file=out / "flickr8k-test-sentences.txt")
    print(f"{summary.out}: {summary.photos} photos, {summary.sentences} sentences")


if __name__ == "__main__":
    main()
