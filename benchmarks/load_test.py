"""Issue #15: a bounded load test of ``scenetalk serve`` on loopback (httpx + asyncio).

    python benchmarks/load_test.py [--clients 50] [--seconds 300] [--index runs/serve/flickr8k-test]

For each setting (dynamic batching on, the default ``--max-batch 16``; then off,
``--max-batch 1``) a fresh server (the shipped models, the Flickr8K test index of
``serve_test_index.py``, ``--queue`` large enough for every client) is started and
``--clients`` clients send requests back to back for ``--seconds``: caption (half of them),
search (three in ten) and align (one in five), on the test split's real photos and
sentences (search: a reference sentence; align: a photo with one of its references). Prints,
per setting and endpoint, requests, errors (any status but 200, or no answer), p50/p99
latency and answers a second (photos a second for caption and align), and the server's RSS
at start and end, as a BENCHMARKS.md section.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import statistics
import tempfile
import time
from pathlib import Path

from served import TEST_INDEX, free_port, rss_mb, start_server

MIX = (("caption", 0.5), ("search", 0.3), ("align", 0.2))


def test_material(index: Path, limit: int = 200):
    """(photo bytes, its reference sentences) for ``limit`` photos of the index, and every
    sentence of its collection."""
    import json

    meta = json.loads((index / "index.json").read_text())
    folder = Path(meta["folder"])
    references = json.loads((index.parent / "flickr8k-test-references.json").read_text())
    names = meta["names"][:limit]
    return [((folder / n).read_bytes(), references[n]) for n in names], [s for r in references.values() for s in r]


async def client(http, material, sentences, stop_at, rng, records):
    while time.time() < stop_at:
        kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        photo, refs = rng.choice(material)
        started = time.perf_counter()
        try:
            if kind == "caption":
                r = await http.post("/v1/caption", files={"image": ("p.jpg", photo)})
            elif kind == "search":
                r = await http.get("/v1/search", params={"q": rng.choice(sentences), "k": 10})
            else:
                r = await http.post("/v1/align", files={"image": ("p.jpg", photo)}, data={"sentence": rng.choice(refs)})
            status = r.status_code
            if status != 200:
                status = f"{status} {r.json().get('error')}: {r.json().get('detail', '')[:100]}"
        except Exception as exc:  # noqa: BLE001 - a failed request is an error of the run, counted
            status = type(exc).__name__
        records.append((kind, time.perf_counter() - started, status, time.time()))


async def sample_rss(pid: int, stop_at: float, samples: list) -> None:
    """The server's RSS every 10 s, as (seconds into the run, MB)."""
    started = time.time()
    while time.time() < stop_at:
        samples.append((time.time() - started, rss_mb(pid)))
        await asyncio.sleep(10)


async def run_load(port: int, pid: int, clients: int, seconds: int, material, sentences, seed: int):
    import httpx

    records: list = []
    samples: list = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120, limits=limits) as http:
        stop_at = time.time() + seconds
        await asyncio.gather(sample_rss(pid, stop_at, samples),
                             *[client(http, material, sentences, stop_at, random.Random(seed + i), records)
                               for i in range(clients)])
    return records, samples


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", default=str(TEST_INDEX))
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--settings", default="batching,no-batching")
    args = p.parse_args()
    index = Path(args.index)
    material, sentences = test_material(index)
    work = Path(tempfile.mkdtemp(prefix="scenetalk-load-"))
    rows = []
    for setting in args.settings.split(","):
        extra = ["--queue", str(2 * args.clients)] + (["--max-batch", "1"] if setting == "no-batching" else [])
        port, log = free_port(), work / f"server-{setting}.log"
        server = start_server(index, port, log, extra)
        try:
            rss_start = rss_mb(server.pid)
            records, samples = asyncio.run(run_load(port, server.pid, args.clients, args.seconds, material,
                                                    sentences, args.seed))
            rss_end = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(30)
        first = min(r[3] for r in records)
        span = max(r[3] for r in records) - first
        for kind, _ in MIX:
            mine = [r for r in records if r[0] == kind]
            ok = [r[1] for r in mine if r[2] == 200]
            errors = len(mine) - len(ok)
            rows.append((setting, kind, len(mine), errors, statistics.median(ok) if ok else float("nan"),
                         percentile(ok, 0.99) if ok else float("nan"), len(ok) / span))
        after_minute = next((mb for t, mb in samples if t >= 60), rss_end)
        rows.append((setting, "RSS", rss_start, rss_end, after_minute, max(mb for _, mb in samples)))
        for what, n in collections.Counter(r[2] for r in records if r[2] != 200).most_common(5):
            print(f"{setting}: error {what!r} x {n}", flush=True)
        print(f"{setting}: {len(records)} requests in {span:.0f} s; RSS {rss_start:.0f} -> {rss_end:.0f} MB", flush=True)
    print(f"\n### Load: {args.clients} clients for {args.seconds} s on loopback\n")
    print(f"`python benchmarks/load_test.py --clients {args.clients} --seconds {args.seconds}` (Flickr8K test photos "
          "and sentences; caption 50%, search 30%, align 20%; server and clients on one 2-core CPU machine; "
          "the server with the default 2 model threads, one PyTorch thread each):\n")
    print("| setting | endpoint | requests | errors | p50 (s) | p99 (s) | answers/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        if row[1] == "RSS":
            continue
        setting, kind, n, errors, p50, p99, rate = row
        print(f"| {setting} | {kind} | {n:,} | {errors} | {p50:.2f} | {p99:.2f} | {rate:.1f} |")
    print()
    for row in rows:
        if row[1] == "RSS":
            print(f"- {row[0]}: server RSS {row[2]:.0f} MB when ready, {row[4]:.0f} MB after the first minute, "
                  f"{row[3]:.0f} MB at the end (at most {row[5]:.0f} MB; sampled every 10 s)")


if __name__ == "__main__":
    main()
