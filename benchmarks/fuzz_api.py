"""Issue #15: the web API fuzzed from its own OpenAPI schema with schemathesis.

    python benchmarks/fuzz_api.py [--index runs/serve/flickr8k-test] [--seconds 120]

Starts ``scenetalk serve`` (the shipped models; the index given, default the Flickr8K test
index of ``serve_test_index.py``, else one of the sample photos) on a free loopback port, waits
for ``/readyz``, then runs ``schemathesis run`` for ``--seconds`` with the checks
not_a_server_error, status_code_conformance, content_type_conformance and
response_schema_conformance (every phase: examples, coverage, fuzzing, stateful). Counts the
server's own access log by status, and prints the figures as a BENCHMARKS.md section. Goal:
at least 1,000 requests, 0 answers with status 5xx, 0 that break the schema.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import tempfile
import time
from pathlib import Path

from served import BIN, TEST_INDEX, free_port, sample_index, start_server

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", default=str(TEST_INDEX))
    p.add_argument("--seconds", type=int, default=120)
    p.add_argument("--seed", default="1")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scenetalk-fuzz-"))
    index = Path(args.index) if (Path(args.index) / "index.json").is_file() else sample_index(work)
    port, log = free_port(), work / "server.log"
    server = start_server(index, port, log)
    try:
        ready_at = log.stat().st_size  # what the server logged before (its /readyz polls) is not the fuzz's
        started = time.time()
        fuzz = subprocess.run([str(BIN / "schemathesis"), "run", f"http://127.0.0.1:{port}/openapi.json",
                               "--checks", CHECKS, "--max-time", str(args.seconds), "--workers", "2",
                               "--seed", args.seed, "--request-timeout", "60", "--suppress-health-check", "all"],
                              capture_output=True, text=True, cwd=work)  # its cache too
        wall = time.time() - started
    finally:
        server.terminate()
        server.wait(30)
    out = fuzz.stdout + fuzz.stderr
    (work / "schemathesis.txt").write_text(out)
    statuses = collections.Counter(re.findall(r'HTTP/1\.1" (\d{3})', log.read_bytes()[ready_at:].decode(errors="replace")))
    cases = re.search(r"(\d+) generated, (\d+) passed(?:, (\d+) failed)?(?:, (\d+) errored)?", out)
    failures = re.findall(r"^_+ (.+?) _+$", out, flags=re.M)
    requests = sum(statuses.values())
    fivexx = sum(n for s, n in statuses.items() if s.startswith("5"))
    print(out[-3000:])
    print(f"\n### Fuzzing the API from its schema (schemathesis)\n\n"
          f"`python benchmarks/fuzz_api.py --seconds {args.seconds}` (seed {args.seed}; index: {index.name}, "
          f"{'Flickr8K test' if 'flickr8k' in str(index) else 'the sample photos'}; 2-core CPU machine, one thread):\n")
    print(f"- requests answered: {requests:,} in {wall:.0f} s; by status: "
          + ", ".join(f"{s} × {n:,}" for s, n in sorted(statuses.items())))
    print(f"- test cases: {cases.group(0) if cases else 'not found in the output'}; schemathesis exit status "
          f"{fuzz.returncode}")
    print(f"- answers with status 5xx: {fivexx}; checks failed: {len(failures)}"
          + (f" ({'; '.join(failures[:5])})" if failures else ""))
    print(f"\n(full output: {work / 'schemathesis.txt'}; server log: {log})")


if __name__ == "__main__":
    main()
