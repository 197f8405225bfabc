"""``scenetalk report --features STORE --out DIR``: an HTML report of N test photos: generated
caption, nearest human sentences (S_kl), the alignment of its best own sentence (Figure 5),
region phrases (Figure 7) and the human boxes of Flickr30K Entities (``scenetalk.presentation.report.write_report``)."""

from __future__ import annotations

import argparse
import shlex

from scenetalk.commands import add_beta, add_features, add_quiet, add_root


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
    from scenetalk.presentation.report import write_report

    names = [n.strip() for n in args.images.split(",") if n.strip()] if args.images is not None else None
    summary = write_report(args.features, args.out, root=args.root, dataset=args.dataset, split=args.split,
                           n=args.n, seed=args.seed, images=names, alignment=args.alignment,
                           captioner=args.captioner, region_generator=args.region_generator, beta=args.beta,
                           top_regions=args.top_regions, progress=not args.quiet, command=command_line(args))
    print(f"wrote {summary.index}: {summary.photos} photos, {summary.pictures} pictures")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from scenetalk.grounding import ALIGN_BETA

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
    add_beta(p, ALIGN_BETA, "the same as `scenetalk align`, which draws this picture")
    p.add_argument("--top-regions", type=int, default=5, help="detections described per photo (default 5)")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder to write (replaces an old report)")
    add_quiet(p)
    p.set_defaults(func=run)
