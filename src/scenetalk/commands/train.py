"""``scenetalk train CONFIG.yaml``: train a caption generator (on whole images, or on regions and
the snippets aligned to them) or the alignment model, on cached features; ``--nproc N`` runs it
data-parallel on N local processes (``torchrun``; ``training.distributed``)."""

from __future__ import annotations

import argparse
import os

from scenetalk.commands import add_features, add_quiet, add_root, print_json


def run(args: argparse.Namespace) -> int:
    from scenetalk.training.distributed import launch, main_process

    if args.nproc != 1 and "WORLD_SIZE" not in os.environ:
        from scenetalk.training.config import read_config, train_config

        path, data = read_config(args.config)   # a mistake in it: one line here, not one per process
        train_config(path, data.get("train") or {}, data.get("task", "caption"))
        return launch(args.nproc, _argv(args))
    from scenetalk.training.config import train

    result = train(args.config, features=args.features, out=args.out, root=args.root, resume=args.resume,
                   progress=not args.quiet, max_steps=args.max_steps)
    if not main_process():
        return 0
    if result.resumed_from_step is not None:
        print(f"resuming {result.out} at step {result.resumed_from_step}")
    print_json(result)
    return 0


def _argv(args: argparse.Namespace) -> list[str]:
    """The same command for each of ``--nproc``'s processes."""
    argv = ["train", args.config]
    for flag, value in (("--features", args.features), ("--out", args.out), ("--root", args.root),
                        ("--max-steps", args.max_steps)):
        if value is not None:
            argv += [flag, str(value)]
    return argv + (["--resume"] if args.resume else []) + (["--quiet"] if args.quiet else [])


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
    p.add_argument("--max-steps", type=int, metavar="N",
                   help="stop at step N (the learning-rate schedule stays the whole run's; --resume continues)")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train data-parallel on N local processes (torchrun; same result as one process "
                        "with the same batch size); for several machines run torchrun yourself (docs/scale.md)")
    add_quiet(p)
    p.set_defaults(func=run)
