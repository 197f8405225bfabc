"""What re-ranking costs a search: median and p90 query time of ``Searcher.search`` with and
without ``rerank`` (the shipped m-RNN captioner's log P(query | photo) of the best K photos),
and of the path users call, ``scenetalk.load().search`` (which keeps the index and the
captioner open), over Flickr8K val sentences, on any index (e.g. of the 1,000 Flickr8K test
photos):

    python benchmarks/bench_search_rerank.py --index /tmp/f8k-test-index --root ../shared/data
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import torch

import scenetalk
from scenetalk.api import open_searcher
from scenetalk.data.registry import load_dataset
from scenetalk.retrieval.search import RERANK_TOP


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", required=True)
    p.add_argument("--root")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    sentences = [im.sentences[0].raw for im in load_dataset("flickr8k", root=args.root).split("val")][:args.queries]
    searcher = open_searcher(args.index)
    m = scenetalk.load()
    paths = {}  # label -> a query's search
    for rerank in (0, RERANK_TOP):
        paths[f"Searcher.search rerank={rerank}"] = partial(searcher.search, k=10, rerank=rerank)
        paths[f"scenetalk.load().search rerank={rerank}"] = partial(m.search, args.index, k=10, rerank=rerank)
    for q in sentences[:5]:  # loads the captioner (and the façade's index); warms every path
        for search in paths.values():
            search(q)
    print(f"{len(searcher.names)} photos, {len(sentences)} val sentences, {args.threads} threads")
    times: dict[str, list[float]] = {label: [] for label in paths}
    for q in sentences:  # the paths interleaved, so that a busier moment costs each alike
        for label, search in paths.items():
            t = time.perf_counter()
            search(q)
            times[label].append((time.perf_counter() - t) * 1000)
    for label, ms in times.items():
        print(f"{label:<36} median {np.median(ms):.1f} ms, p90 {np.percentile(ms, 90):.1f} ms")

if __name__ == "__main__":
    main()
