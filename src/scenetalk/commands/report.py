"""``scenetalk report --features STORE --out DIR``: an HTML report of N test photos: generated
caption, nearest human sentences (S_kl), the alignment of its best own sentence (Figure 5),
region phrases (Figure 7) and the human boxes of Flickr30K Entities (``scenetalk.report``)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from scenetalk.commands import add_beta, add_features, add_quiet, add_root
from scenetalk.errors import ScenetalkError


def command_line(args: argparse.Namespace) -> str:
    """The command that makes this report again, every choice spelled out (defaults too, so
    it still does when defaults change)."""
    parts = ["scenetalk", "report", "--features", args.features]
    if args.root:
        parts += ["--root", args.root]
    parts += ["--dataset", args.dataset, "--split", args.split]
    parts += ["--images", args.images] if args.images else ["--n", str(args.n), "--seed", str(args.seed)]
    for option in ("alignment", "captioner", "region_generator"):
        if getattr(args, option):
            parts += [f"--{option.replace('_', '-')}", getattr(args, option)]
    parts += ["--beta", f"{args.beta:g}", "--top-regions", str(args.top_regions), "--out", args.out]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    from scenetalk import __version__
    from scenetalk.data.registry import default_root, load_dataset
    from scenetalk.features.store import FeatureStore
    from scenetalk.presentation.report import Models, build_report, pick_images, shown_path
    from scenetalk.weights import region_generator as shipped_region_generator
    from scenetalk.weights import shipped_alignment, shipped_captioner

    if args.n < 1:
        raise ScenetalkError(f"--n must be at least 1 (got {args.n})")
    if args.beta < 0:
        raise ScenetalkError(f"--beta must be at least 0 (got {args.beta})")
    if not 1 <= args.top_regions <= 19:
        raise ScenetalkError(f"--top-regions must be between 1 and 19, the detections kept per photo "
                             f"(got {args.top_regions})")
    root = Path(args.root) if args.root else default_root()
    dataset = load_dataset(args.dataset, root=root)
    names = [n.strip() for n in args.images.split(",") if n.strip()] if args.images is not None else None
    images = pick_images(dataset, args.split, args.n, args.seed, names)
    store = FeatureStore.open(args.features)
    if not store.has_regions:
        raise ScenetalkError(f"{args.features}: has no region features; extract them with `scenetalk features --regions`")
    if args.region_generator:
        region_generator, which = Path(args.region_generator), f"the generator in {args.region_generator}"
    else:
        region_generator, which = shipped_region_generator()
    models = Models(Path(args.captioner) if args.captioner else shipped_captioner(),
                    Path(args.alignment) if args.alignment else shipped_alignment(), region_generator, which)
    chosen = f"{len(images)} drawn with seed {args.seed}" if names is None else f"{len(images)} named with --images"
    header = {
        "title": f"scenetalk report: {dataset.name} {args.split}, {len(images)} photos",
        "photos": f"{chosen} from the {len(dataset.split(args.split)):,} of the {args.split} split",
        "feature store": f"{args.features} ({store.extractor_id})",
        "captioner": shown_path(models.captioner),
        "alignment model": shown_path(models.alignment),
        "region generator": f"{shown_path(models.region_generator)}: {which}",
        "MRF β": f"{args.beta:g}",
        "scenetalk": __version__,
        "command": command_line(args),
    }
    reports = build_report(dataset, store, args.split, images, models, args.beta, args.top_regions,
                           root / "flickr30k_entities", args.out, header, progress=not args.quiet)
    pictures = sum(len(r.pictures) for r in reports)
    print(f"wrote {Path(args.out) / 'index.html'}: {len(reports)} photos, {pictures} pictures")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="HTML report of test photos: caption, nearest sentences, alignment, regions",
                       description="Write an HTML report (a folder: index.html and PNGs) of N photos of a split: "
                                   "the generated caption, the nearest human sentences by the alignment score, "
                                   "the words of the best own sentence on regions (Figure 5), phrases for the "
                                   "best detections (Figure 7) and the human boxes of Flickr30K Entities.")
    add_features(p, "feature store with region features")
    add_root(p, "; Flickr30K Entities is read from DIR/flickr30k_entities")
    p.add_argument("--dataset", default="flickr8k", help="dataset name (default flickr8k)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="(default test)")
    p.add_argument("--n", type=int, default=20, help="how many photos, drawn at random (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    p.add_argument("--images", metavar="NAME,NAME", help="these photos of the split instead of a random draw")
    p.add_argument("--alignment", metavar="CKPT", help="alignment checkpoint (default: the shipped one)")
    p.add_argument("--captioner", metavar="CKPT", help="whole-photo caption generator (default: the shipped one)")
    p.add_argument("--region-generator", metavar="CKPT",
                   help="generator of region phrases (default: the shipped region generator if installed, else "
                        "the shipped captioner)")
    add_beta(p)
    p.add_argument("--top-regions", type=int, default=5, help="detections described per photo (default 5)")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder to write (replaces an old report)")
    add_quiet(p)
    p.set_defaults(func=run)
