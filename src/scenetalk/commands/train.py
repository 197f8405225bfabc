"""``scenetalk train CONFIG.yaml``: train a caption generator (on whole images, or on regions and
the snippets aligned to them) or the alignment model, on cached features."""

from __future__ import annotations

import argparse

from scenetalk.commands import add_features, add_quiet, add_root, print_json


def run(args: argparse.Namespace) -> int:
    from scenetalk.training.config import train

    result = train(args.config, features=args.features, out=args.out, root=args.root, resume=args.resume,
                   progress=not args.quiet)
    if result.resumed_from_step is not None:
        print(f"resuming {result.out} at step {result.resumed_from_step}")
    print_json(result)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a caption generator or an alignment model from a YAML config",
                       description="Train a caption generator (task: caption), a region generator on a snippet "
                                   "corpus (task: regions) or the alignment model (task: alignment) on cached "
                                   "image features. CONFIG is a YAML file or the "
                                   "name of a shipped config.")
    p.add_argument("config", metavar="CONFIG")
    add_features(p, "feature store folder (overrides the config)", required=False)
    p.add_argument("--out", help="run folder (overrides the config)")
    add_root(p, "; overrides the config")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_quiet(p)
    p.set_defaults(func=run)
