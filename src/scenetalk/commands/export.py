"""``scenetalk export CHECKPOINT [--out DIR]``: a trained checkpoint as ONNX graphs, so that it
runs in the light install (ONNX Runtime, no PyTorch). ``--backbone NAME`` exports a backbone's
feature map instead (``--size`` for other input sizes). Needs the ``train`` extra. The work is
``scenetalk.export`` (``training.export``)."""

from __future__ import annotations

import argparse

from scenetalk.commands import add_json, print_json


def run(args: argparse.Namespace) -> int:
    import scenetalk
    from scenetalk.errors import ScenetalkError

    if args.backbone:
        if args.checkpoint:
            raise ScenetalkError("give a CHECKPOINT or --backbone, not both")
        entry = scenetalk.export_backbone(args.backbone, args.size, args.out)
        if args.json:
            print_json({"backbone": args.backbone, **entry})
        else:
            print(f"{args.backbone}: graphs at {', '.join(map(str, entry['sizes']))} "
                  f"(weights {entry['weights_sha256'][:12]})")
        return 0
    if not args.checkpoint:
        raise ScenetalkError("give the CHECKPOINT folder to export (or --backbone NAME)")
    if args.size:
        raise ScenetalkError("--size goes with --backbone")
    result = scenetalk.export(args.checkpoint, args.out)
    if args.json:
        print_json(result)
        return 0
    print(f"{result.folder}: {', '.join(result.graphs.values())} ({result.bytes / 1e6:.1f} MB of graphs reading the "
          f"checkpoint's {result.weights} weights in place; largest difference from PyTorch {result.max_difference:.1g})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="turn a checkpoint into ONNX graphs for the light install (needs PyTorch)",
                       description="Export a trained caption generator or alignment model as ONNX graphs, checked "
                                   "against PyTorch, so that it runs in the light install without PyTorch.")
    p.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT", help="checkpoint folder (model.safetensors + config.json)")
    p.add_argument("--out", metavar="DIR",
                   help="folder to write the exported checkpoint to (default: beside the weights, in CHECKPOINT)")
    p.add_argument("--backbone", metavar="NAME", help="export this backbone's feature map instead (efficientnet-lite0 "
                                                      "or efficientnet-lite2)")
    p.add_argument("--size", type=int, action="append", metavar="PIXELS",
                   help="with --backbone: an input size to export (repeatable; default its own)")
    add_json(p, "what was written")
    p.set_defaults(func=run)
