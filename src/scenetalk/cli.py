"""The ``scenetalk`` command line.

Each sub-command lives in ``scenetalk.commands.<name>`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func``. User mistakes (``ScenetalkError``) are printed on
one line, without a traceback, and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from scenetalk import __version__
from scenetalk.errors import ScenetalkError

COMMANDS = ("demo", "caption", "index", "search", "align", "regions", "sheet", "describe", "data", "features", "train",
            "learn_word", "evaluate", "snippets", "report", "serve", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scenetalk", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"scenetalk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"scenetalk.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ScenetalkError as exc:
        print(f"scenetalk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"scenetalk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
