"""The light install against the full one and against the code before it (issue #16), on one
machine, one run each, nothing else running:

    python benchmarks/bench_light.py --root ../shared/data --work /tmp/bench-light \\
        --before /tmp/before      # a checkout of the commit before the light install (git worktree)

1. install: fresh venvs made the way the README says (light: ``pip install .``; full: the CPU
   build of PyTorch, then ``pip install ".[train]"``; before: the same at ``--before``), each
   timed, and their size on disk (``du``).
2. speed: ``benchmarks/light_probe.py speed`` in the light venv, in the full one with
   ``SCENETALK_ENGINE=torch`` (the reference engine) and in the before venv.
3. quality: ``light_probe.py quality`` in the light venv and the before venv: the captions of
   the 1,000 Flickr8K test photos (how many are the same, and their coco-caption scores, here in
   the full venv) and R@1/5/10 through the public API in both directions.

Prints the BENCHMARKS.md section. ``--skip-install`` reuses the venvs of an earlier run;
``--only STEP`` and ``--venv NAME`` re-run a part, keeping the other figures (``results.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIP = ["-m", "pip", "install", "-q", "--disable-pip-version-check"]


def timed(cmd: list[str], **kw) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, **kw)
    return time.perf_counter() - start


def du_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0]) / 1024


def make_venv(where: Path, source: Path, full: bool) -> dict:
    if where.exists():
        shutil.rmtree(where)
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    py = str(where / "bin" / "python")
    subprocess.run([py, *PIP, "--upgrade", "pip"], check=True)
    empty = du_mb(where)
    seconds = 0.0
    if full:
        seconds += timed([py, *PIP, "torch==2.13.0"])
    target = f"{source}[train]" if full and (source / "pyproject.toml").read_text().count("train = [") else str(source)
    seconds += timed([py, *PIP, target])
    return {"seconds": seconds, "mb": du_mb(where), "empty_venv_mb": empty}


def probe(py: str, what: str, args, env: dict | None = None, pythonpath: Path | None = None,
          split: str = "test") -> dict:
    environment = {**os.environ, **(env or {})}
    environment.pop("PYTHONPATH", None)
    if pythonpath is not None:
        environment["PYTHONPATH"] = str(pythonpath)
    work = Path(args.work) / (f"probe-{what}-{Path(py).parents[1].name}-{(env or {}).get('SCENETALK_ENGINE', 'default')}"
                              + ("" if split == "test" else f"-{split}"))
    out = subprocess.run([py, str(REPO / "benchmarks" / "light_probe.py"), what, "--root", args.root, "--work",
                          str(work), "--split", split], capture_output=True, text=True, env=environment,
                         cwd=args.work)
    (work.parent / f"{work.name}.out").write_text(out.stdout)
    if out.returncode != 0:
        raise SystemExit(f"{py} light_probe.py {what} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


def med(values) -> float:
    return statistics.median(values)


def p90(values) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))]


def recall(ranks, k) -> float:
    return 100 * sum(r <= k for r in ranks) / len(ranks)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--before", required=True, help="checkout of the code before the light install")
    p.add_argument("--skip-install", action="store_true")
    p.add_argument("--only", choices=("install", "speed", "quality", "quality-val"), action="append")
    p.add_argument("--venv", choices=("light", "full", "before"), action="append",
                   help="only these installs (default all three); the others' figures are kept from earlier runs")
    args = p.parse_args()
    args.root_given, args.root = args.root, os.path.abspath(args.root)  # the probes run in their own folders
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    args.work = str(work)
    steps = args.only or ["install", "speed", "quality"]
    venvs = {"light": work / "light", "full": work / "full", "before": work / "before"}
    sources = {"light": REPO, "full": REPO, "before": Path(args.before)}
    results_path = work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    which = args.venv or list(venvs)
    if "install" in steps and not args.skip_install:
        for name in which:
            results.setdefault("install", {})[name] = make_venv(venvs[name], sources[name], full=name != "light")
            results_path.write_text(json.dumps(results))
    py = {name: str(path / "bin" / "python") for name, path in venvs.items()}
    if "speed" in steps:
        for name, key, env in (("light", "light", None), ("full", "torch", {"SCENETALK_ENGINE": "torch"}),
                               ("before", "before", None)):
            if name in which:
                results.setdefault("speed", {})[key] = probe(py[name], "speed", args, env)
                results_path.write_text(json.dumps(results))
    if "quality" in steps:
        for name in ("light", "before"):
            if name in which:
                results.setdefault("quality", {})[name] = probe(py[name], "quality", args)
                results_path.write_text(json.dumps(results))
    if "quality-val" in steps:    # the same on val: is a difference on test the engines' or chance's?
        for name in ("light", "before"):
            if name in which:
                results.setdefault("quality_val", {})[name] = probe(py[name], "quality", args, split="val")
                results_path.write_text(json.dumps(results))
    report(results, args)


def site_packages_parts(venv: Path, top: int = 10) -> list[tuple[str, float]]:
    """The largest packages of a venv's site-packages (``du``), a package's ``.libs`` folder
    of bundled libraries counted with it; metadata folders left out."""
    parts: dict[str, float] = {}
    for site in venv.glob("lib/python*/site-packages"):
        for entry in site.iterdir():
            if entry.name.endswith((".dist-info", ".pth")) or entry.name == "__pycache__":
                continue
            name = entry.name.removesuffix(".libs").lower()
            name = {"pil": "pillow", "faiss_cpu": "faiss"}.get(name, name)
            parts[name] = parts.get(name, 0.0) + du_mb(entry)
    return sorted(parts.items(), key=lambda kv: -kv[1])[:top]


def report(results: dict, args) -> None:
    print("### The light install against the full one (issue #16)\n")
    print(f"`python benchmarks/bench_light.py --root {args.root_given} --work {args.work} --before BEFORE` "
          "(BEFORE: a checkout of the commit before the light install), the 2-core development machine, "
          f"{time.strftime('%Y-%m-%d')}, one run each, nothing else running. *before*: the code before "
          "the light install (PyTorch for the models, ONNX Runtime for the backbone); *light*: `pip install .` "
          "(ONNX Runtime only, no PyTorch); *full, torch engine*: `pip install \".[train]\"` with "
          "`SCENETALK_ENGINE=torch` (every model in PyTorch, the reference).\n")
    if "install" in results:
        ins = results["install"]
        print("| install | size on disk | install time | goal |")
        print("|---|---|---|---|")
        for name, what, goal in (("before", "before: torch + `pip install .`", ""),
                                 ("full", "full: torch + `pip install \".[train]\"`", ""),
                                 ("light", "light: `pip install .`", "≤ 300 MB")):
            r = ins[name]
            print(f"| {what} | {r['mb']:,.0f} MB | {r['seconds']:.0f} s | {goal} |")
        print(f"\n(an empty venv with pip is {ins['light']['empty_venv_mb']:.0f} MB of each; packages come from "
              "this machine's local package cache, so the times are install times, not downloads)\n")
        light = Path(args.work) / "light"
        if light.is_dir():
            print("Largest parts of the light venv's site-packages (`du`, a package's bundled libraries with it): "
                  + ", ".join(f"{name} {mb:.0f} MB" for name, mb in site_packages_parts(light)) + ".\n")
    if "speed" in results:
        sp = results["speed"]
        rows = [("`scenetalk --help`, new process (median of 10)", "help_s", lambda v: f"{med(v):.2f} s", "≤ 0.3 s"),
                ("`scenetalk caption ONE.jpg`, new process (median of 5)", "caption_one_s",
                 lambda v: f"{med(v):.2f} s", "≤ 0.7 s"),
                ("caption one JPEG at beam 7, median / p90 (100 Flickr8K test JPEGs, loaded)", "caption_beam7_ms",
                 lambda v: f"{med(v):.1f} / {p90(v):.1f} ms", "≤ 25 ms"),
                ("a folder at beam 3 (1,000 test JPEGs, batches of 32)", "folder_beam3_images_per_s",
                 lambda v: f"{v:.1f} images/s", ""),
                ("`index build` (200 test photos, regions included)", "index_build_photos_per_s",
                 lambda v: f"{v:.1f} photos/s", ""),
                ("`scenetalk.load().search`, re-ranked, median / p90 (100 val queries, 200 photos)", "search_ms",
                 lambda v: f"{med(v):.1f} / {p90(v):.1f} ms", "")]
        print("| measure | before | light | full, torch engine | goal |")
        print("|---|---|---|---|---|")
        for what, key, fmt, goal in rows:
            print(f"| {what} | " + " | ".join(fmt(sp[n][key]) for n in ("before", "light", "torch")) + f" | {goal} |")
        print()
    if "quality" in results:
        q = results["quality"]
        light, before = q["light"]["captions"], q["before"]["captions"]
        same = sum(light[k] == before[k] for k in before)
        print(f"Captions of the 1,000 Flickr8K test photos (beam 7, the shipped captioner's defaults): "
              f"{same:,} of {len(before):,} the same in the light install as before.\n")
        scores = {name: caption_scores(q[name]["captions"], args.root) for name in ("before", "light")}
        metrics = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")
        print("| captions (Flickr8K test) | " + " | ".join(metrics) + " |")
        print("|---|" + "---|" * len(metrics))
        for name in ("before", "light"):
            print(f"| {name} | " + " | ".join(f"{100 * scores[name][m]:.1f}" for m in metrics) + " |")
        print("\n| retrieval through the public API (Flickr8K test) | image→text R@1 / R@5 / R@10 | "
              "text→image R@1 / R@5 / R@10 (re-ranked) |")
        print("|---|---|---|")
        for name in ("before", "light"):
            i2t, t2i = q[name]["i2t_ranks"], q[name]["t2i_ranks"]
            print(f"| {name} | " + " / ".join(f"{recall(i2t, k):.1f}" for k in (1, 5, 10)) + " | "
                  + " / ".join(f"{recall(t2i, k):.1f}" for k in (1, 5, 10)) + " |")
        print()
    if "quality_val" in results:
        q = results["quality_val"]
        print("| retrieval through the public API (Flickr8K **val**) | image→text R@1 / R@5 / R@10 | "
              "text→image R@1 / R@5 / R@10 (re-ranked) |")
        print("|---|---|---|")
        for name in ("before", "light"):
            if name in q:
                i2t, t2i = q[name]["i2t_ranks"], q[name]["t2i_ranks"]
                print(f"| {name} | " + " / ".join(f"{recall(i2t, k):.1f}" for k in (1, 5, 10)) + " | "
                      + " / ".join(f"{recall(t2i, k):.1f}" for k in (1, 5, 10)) + " |")
        print()


def caption_scores(captions: dict, root: str) -> dict:
    sys.path.insert(0, str(REPO / "src"))
    from scenetalk.captioning.evaluation import caption_report
    from scenetalk.data.registry import load_dataset

    return caption_report(captions, load_dataset("flickr8k", root=root), "test")["scores"]


if __name__ == "__main__":
    main()
