"""``scenetalk features``: extract CNN features of a dataset's images (or a folder's) into a store.

    scenetalk features DATASET --out DIR [--images DIR] [--root DIR] [--regions]
                       [--backbone efficientnet-lite0] [--region-method crop|roi]
                       [--region-size N] [--batch-size N] [--no-grid] [--limit N]
                       [--overwrite] [--skip-bad] [--quiet]

DATASET is a dataset name or file for ``scenetalk data`` (all its images, every split), or
the word ``folder``: every image file directly in ``--images``. An interrupted run resumes
when the same command is run again; a complete store is left alone.
"""

from __future__ import annotations

import argparse
import os

from scenetalk.commands import add_quiet, add_root
from scenetalk.errors import ImageError, ScenetalkError

#: kept here, not imported from scenetalk.vision (which loads torch), so the CLI starts fast
BACKBONE_NAMES = ("efficientnet-lite0", "efficientnet-lite2")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "features", help="extract image features (global, grid, regions) into a feature store",
        description=__doc__.splitlines()[0],
        epilog="A bad image stops the run with its name (finished work is kept and resumes); "
               "--skip-bad stores zeros for it and lists it as bad in the store's index.json.")
    parser.add_argument("dataset", metavar="DATASET",
                        help="a dataset name or file (see 'scenetalk data list'), or 'folder' for --images")
    parser.add_argument("--images", metavar="DIR", help="image folder (default: the dataset's own)")
    parser.add_argument("--out", metavar="DIR", required=True, help="feature store folder to write")
    add_root(parser)
    parser.add_argument("--backbone", default=BACKBONE_NAMES[0], choices=BACKBONE_NAMES,
                        help=f"CNN (default {BACKBONE_NAMES[0]})")
    parser.add_argument("--regions", action="store_true",
                        help="also detect objects and store 20 region features per image "
                             "(Karpathy & Fei-Fei §3.1.1: top 19 detections + the whole image)")
    parser.add_argument("--region-method", choices=("crop", "roi"), default=None,
                        help="crop: run the CNN on each box's crop (R-CNN, default); "
                             "roi: RoIAlign over one feature map of the image")
    parser.add_argument("--region-size", type=int, default=None, metavar="N",
                        help="crop size, or the image size of the RoI feature map "
                             "(default: the backbone's input size for crop, twice it for roi)")
    parser.add_argument("--batch-size", type=int, default=16, metavar="N",
                        help="images per batch, the unit of progress and resuming (default 16)")
    parser.add_argument("--no-grid", action="store_true", help="do not store the h*w grid of cell features")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N images")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a store (or interrupted run) of another extractor or image list")
    parser.add_argument("--skip-bad", action="store_true",
                        help="store zeros for unreadable images and list them, instead of stopping")
    add_quiet(parser)
    parser.set_defaults(func=run)


def image_list(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(name, path) pairs to extract: the dataset's images (unique, in order) or a folder's."""
    from scenetalk.vision.images import list_images

    if args.dataset == "folder":
        if not args.images:
            raise ScenetalkError("DATASET 'folder' needs --images DIR")
        return [(name, os.path.join(args.images, name)) for name in list_images(args.images)]

    from scenetalk.data.registry import load_dataset

    dataset = load_dataset(args.dataset, root=args.root, image_dir=args.images)
    if not dataset.image_dir:
        raise ScenetalkError(f"dataset {args.dataset!r}: image folder unknown; pass --images DIR")
    seen, pairs = set(), []
    for record in dataset.images:
        if record.relpath not in seen:
            seen.add(record.relpath)
            pairs.append((record.relpath, os.path.join(dataset.image_dir, record.relpath)))
    return pairs


def run(args: argparse.Namespace) -> int:
    from scenetalk.features.extract import extract
    from scenetalk.vision.regions import DEFAULT_REGION_METHOD

    if args.limit is not None and args.limit < 1:
        raise ScenetalkError(f"--limit must be at least 1, got {args.limit}")
    if (args.region_method or args.region_size) and not args.regions:
        raise ScenetalkError("--region-method and --region-size need --regions")
    images = image_list(args)
    if args.limit is not None:
        images = images[: args.limit]
    if not images:
        where = f"no images found in {args.images}" if args.dataset == "folder" else "the dataset lists no images"
        raise ScenetalkError(where)
    if not args.skip_bad:
        # A wrong --images folder should fail now, not after minutes of work.
        missing = [path for _, path in images if not os.path.isfile(path)]
        if missing:
            raise ImageError(missing[0], f"file not found ({len(missing)} of {len(images)} images are missing; "
                                         "check --images, or pass --skip-bad)")

    result = extract(images, args.out, backbone=args.backbone, regions=args.regions, grid=not args.no_grid,
                     batch_size=args.batch_size, progress=not args.quiet,
                     region_method=args.region_method or DEFAULT_REGION_METHOD, region_size=args.region_size,
                     overwrite=args.overwrite, skip_bad=args.skip_bad)

    if result.already_done:
        print(f"already extracted: {result.path} holds features of these {result.count} images "
              f"by {result.extractor_id}")
        return 0
    dims = ", ".join(f"{name} {'x'.join(map(str, shape[1:]))}" for name, shape in result.arrays.items())
    resumed = f" (resumed after {result.resumed_from})" if result.resumed_from else ""
    print(f"images       {result.count}{resumed}")
    print(f"features     {dims}")
    print(f"time         {result.seconds:.1f} s, {result.images_per_second:.1f} images/s")
    if result.bad:
        print(f"bad images   {len(result.bad)} (zeros; listed in index.json), e.g. {result.bad[0]}")
    print(f"store        {result.path}")
    print(f"extractor id {result.extractor_id}")
    return 0
