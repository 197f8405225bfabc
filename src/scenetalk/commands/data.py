"""``scenetalk data``: list the known datasets, or check one.

``check`` exits 0 when the dataset loads (its problems are listed, with a count) and 2 when
it cannot be loaded.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from scenetalk.commands import add_json, add_root, print_json
from scenetalk.data.text import ZH_MODES
from scenetalk.errors import ScenetalkError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="list the known datasets, or check one",
                                   description=__doc__.splitlines()[0])
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True

    listing = actions.add_parser("list", help="the known dataset names and their expected files")
    add_root(listing)
    listing.set_defaults(func=run_list)

    check = actions.add_parser("check", help="load a dataset and report counts and problems")
    check.add_argument("dataset", metavar="DATASET",
                       help="a name from 'scenetalk data list', a Karpathy .json file or a *.token.txt file")
    add_root(check)
    check.add_argument("--images", metavar="DIR", help="image folder (default: the dataset's own)")
    check.add_argument("--min-count", type=int, default=5,
                       help="keep words seen at least this often in the train split (default 5)")
    check.add_argument("--zh-mode", choices=ZH_MODES, default="jieba",
                       help="Chinese segmentation: jieba words or single characters (default jieba)")
    add_json(check, "the report")
    check.set_defaults(func=run_check)


def run_list(args: argparse.Namespace) -> int:
    from scenetalk.data.registry import DATASETS, default_root

    root = Path(args.root) if args.root else default_root()
    print(f"data root: {root}")
    for name, info in DATASETS.items():
        present = all((root / rel).exists() for rel in info.required)
        print(f"\n{name}{'' if present else '  (not found)'}\n  {info.description}")
        for rel in info.required + info.layout:
            print(f"  {root / rel}")
        print(f"  images: {root / info.images}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from scenetalk.data.check import check_dataset, format_report
    from scenetalk.data.registry import load_dataset

    if args.min_count < 1:
        raise ScenetalkError(f"--min-count must be at least 1, got {args.min_count}")
    if args.images is not None and not os.path.isdir(args.images):
        raise ScenetalkError(f"image folder {args.images} does not exist")
    dataset = load_dataset(args.dataset, root=args.root, image_dir=args.images, zh_mode=args.zh_mode)
    report = check_dataset(dataset, min_count=args.min_count)
    if args.json:
        print_json(report.to_dict())
    else:
        print(format_report(report))
    return 0
