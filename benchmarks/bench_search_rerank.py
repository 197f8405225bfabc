"""What re-ranking costs a search: median and p90 query time of ``Searcher.search`` with and
without ``rerank`` (the shipped m-RNN captioner's log P(query | photo) of the best K photos),
over Flickr8K val sentences, on any index (e.g. of the 1,000 Flickr8K test photos):

    python benchmarks/bench_search_rerank.py --index /tmp/f8k-test-index --root ../shared/data
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

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
    for q in sentences[:5]:  # loads the captioner; warms both paths
        searcher.search(q, rerank=0), searcher.search(q, rerank=RERANK_TOP)
    print(f"{len(searcher.names)} photos, {len(sentences)} val sentences, {args.threads} threads")
    times: dict[int, list[float]] = {0: [], RERANK_TOP: []}
    for q in sentences:  # the two interleaved, so that a busier moment costs both alike
        for rerank in times:
            t = time.perf_counter()
            searcher.search(q, k=10, rerank=rerank)
            times[rerank].append((time.perf_counter() - t) * 1000)
    for rerank, ms in times.items():
        print(f"rerank={rerank:<4} median {np.median(ms):.1f} ms, p90 {np.percentile(ms, 90):.1f} ms")

if __name__ == "__main__":
    main()
