"""The ``scenetalk`` command line.

Each sub-command lives in ``scenetalk.commands.<name>`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func``. User mistakes (``ScenetalkError``) are printed on
one line, without a traceback, and exit with status 2. The commands of ``TRAIN_COMMANDS`` need
PyTorch (the ``train`` extra); in the light install they say so in one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from scenetalk import __version__, runtime
from scenetalk.errors import ScenetalkError

COMMANDS = ("demo", "caption", "index", "search", "align", "regions", "sheet", "describe", "data", "features", "train",
            "learn_word", "evaluate", "snippets", "report", "serve", "export")

#: the commands that train, evaluate from scratch or export: they need the ``train`` extra
TRAIN_COMMANDS = ("train", "evaluate", "learn-word", "snippets", "export")
#: top-level packages of the ``train`` extra, named when a command reaches one without it
TRAIN_PACKAGES = ("torch", "onnx", "efficientnet_lite_pytorch", "sentence_transformers", "transformers",
                  "pycocoevalcap", "pycocotools", "matplotlib")


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
        if args.command in TRAIN_COMMANDS and not runtime.torch_installed():
            raise ScenetalkError(f"needs PyTorch, which this light install leaves out: {runtime.TRAIN_EXTRA}")
        return int(args.func(args) or 0)
    except ScenetalkError as exc:
        print(f"scenetalk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in TRAIN_PACKAGES:
            raise
        print(f"scenetalk {args.command}: error: this needs {exc.name}, part of the train extra, which this "
              f"install leaves out: {runtime.TRAIN_EXTRA}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"scenetalk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
