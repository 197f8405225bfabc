"""The ``scenetalk`` sub-commands, one module each, and what they share.

A command only parses its arguments, makes one library call (the façade in ``scenetalk.api``
or a task package) and prints the result: text, or with ``--json`` the result's one JSON
form (``scenetalk.results.to_json``). It holds no algorithm, and no command imports another;
what several commands share is here: the options they have in common, defined once, and the
printing helpers.
"""

from __future__ import annotations

import argparse
import sys

from scenetalk.errors import ScenetalkError

DATA_ROOT_HELP = "data folder (default: $SCENETALK_DATA, ./data or ../shared/data)"


def add_ray(p: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]``: extract features on a Ray cluster (``features.jobs``)."""
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="extract on a Ray cluster, a task per 1,024 images (resumable per shard): a local one "
                        "started for the command, or the running cluster at ADDRESS (auto, HOST:6379, "
                        "ray://HOST:10001); needs the cluster extra")


def ray_target(args: argparse.Namespace) -> bool | str | None:
    """``--ray``'s value as the library takes it: None, True (a local cluster) or an address."""
    return None if args.ray is None else True if args.ray == "local" else args.ray


def add_checkpoint(p: argparse.ArgumentParser, what: str = "alignment checkpoint",
                   default: str = "the shipped one", metavar: str | None = None) -> None:
    """``--checkpoint``: the model folder a command uses instead of its default."""
    p.add_argument("--checkpoint", metavar=metavar, help=f"{what} (default: {default})")


def add_rerank(p: argparse.ArgumentParser, things: str, top: int, how: str) -> None:
    """``--rerank [K]`` / ``--no-rerank`` / ``--captioner``: re-ranking the best K ``things`` by
    the captioner (``search``, ``describe``); ``rerank_choice`` reads them."""
    rerank = p.add_mutually_exclusive_group()
    rerank.add_argument("--rerank", nargs="?", const="", metavar="K",
                        help=f"order the best K {things} (default {top}) again by {how} (the default when the "
                             "captioner reads the index's features)")
    rerank.add_argument("--no-rerank", action="store_true", help="rank by the match score alone")
    p.add_argument("--captioner", help="captioner for --rerank (default: the shipped one of the language)")


def rerank_choice(args: argparse.Namespace, top: int, things: str) -> int | None:
    """``rerank`` for the façade from ``add_rerank``'s options: None (re-rank when the captioner
    can read the index), 0 (not) or K."""
    if args.no_rerank:
        return 0
    if args.rerank is None:
        return None
    try:
        rerank = int(args.rerank) if args.rerank else top   # "--rerank" alone: the default K
    except ValueError:
        rerank = 0
    if rerank < 1:
        raise ScenetalkError(f"--rerank must be a whole number of {things}, at least 1 (got {args.rerank!r})")
    return rerank


def add_json(p: argparse.ArgumentParser, what: str = "the result") -> None:
    """``--json``: print the result as JSON (``scenetalk.results.to_json``) instead of text."""
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def add_root(p: argparse.ArgumentParser, extra: str = "") -> None:
    """``--root``: where the datasets are."""
    p.add_argument("--root", metavar="DIR", help=DATA_ROOT_HELP + extra)


def add_features(p: argparse.ArgumentParser, what: str = "feature store of the dataset's images",
                 required: bool = True) -> None:
    """``--features``: a feature store folder (``scenetalk features``)."""
    p.add_argument("--features", required=required, metavar="STORE", help=what)


def add_quiet(p: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress bar."""
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_beta(p: argparse.ArgumentParser, default: float | None = None,
             chosen: str = "chosen on Flickr8K's dev photos") -> None:
    """``--beta``: the MRF's bonus for neighbouring words on one region (Karpathy & Fei-Fei eq. 10),
    by default the snippets' ``DEFAULT_BETA``; ``chosen`` says why the default is what it is."""
    from scenetalk.grounding import DEFAULT_BETA

    default = DEFAULT_BETA if default is None else default
    p.add_argument("--beta", type=float, default=default,
                   help=f"how strongly neighbouring words are kept on one region (default {default:g}, "
                        f"{chosen}; 0 = each word on its own best region)")


def print_json(result) -> None:
    """A result (a dataclass, or a list or dict of them) on stdout in its one JSON form."""
    from scenetalk.results import to_json

    sys.stdout.write(to_json(result) + "\n")


def print_ranking(hits: list[tuple[str, float]]) -> None:
    """Ranked (item, score) pairs on stdout as numbered lines: ``search`` and ``describe``
    print their results with it (with ``--json``, ``print_json`` of the result)."""
    for rank, (item, score) in enumerate(hits, 1):
        print(f"{rank:3d}. {score:9.3f}  {item}")


def warn(command: str, message: str) -> None:
    """A one-line note on stderr, as ``scenetalk COMMAND: message``."""
    print(f"scenetalk {command}: {message}", file=sys.stderr)
