"""``scenetalk features``: extract CNN features of a dataset's images (or a folder's) into a store.

DATASET is a dataset name or file for ``scenetalk data`` (all its images, every split), or
the word ``folder``: every image file directly in ``--images``. An interrupted run resumes
when the same command is run again; a complete store is left alone.
"""

from __future__ import annotations

import argparse

from scenetalk.commands import add_quiet, add_ray, add_root, ray_target

#: kept here, not imported from scenetalk.vision (which loads OpenCV), so the CLI starts fast
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
    add_ray(parser)
    add_quiet(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scenetalk.features.jobs import extract_images

    result = extract_images(args.dataset, args.out, images_dir=args.images, root=args.root, limit=args.limit,
                            backbone=args.backbone, regions=args.regions, grid=not args.no_grid,
                            batch_size=args.batch_size, progress=not args.quiet, region_method=args.region_method,
                            region_size=args.region_size, overwrite=args.overwrite, skip_bad=args.skip_bad,
                            ray=ray_target(args))
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
