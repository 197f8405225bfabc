"""``scenetalk regions IMAGE``: the photo's detected boxes, each described by a phrase.

Each of the --top detections (regions 1-19, by detector score; region 0, the whole photo, is
left out) is described by a caption generator fed that region's feature: the crop's CNN
vector, the same kind of 1280-d vector a generator trained on whole photos reads. The
default generator is the region-trained one when the package ships it
(``weights/regions``), else the shipped full-photo captioner, whose phrases then read like
whole-photo captions. --out draws them as in Karpathy & Fei-Fei's Figure 7. The work is
``Scenetalk.regions`` (``grounding.region_descriptions.describe_regions``).
"""

from __future__ import annotations

import argparse

from scenetalk.commands import add_checkpoint, add_json, print_json


def run(args: argparse.Namespace) -> int:
    from scenetalk.api import load
    from scenetalk.grounding.photo_regions import box_text
    from scenetalk.presentation.pictures import region_descriptions_picture, save_png
    from scenetalk.results import to_data

    result = load().regions(args.image, top=args.top, beam_size=args.beam, max_len=args.max_len,
                            generator=args.checkpoint)
    if args.out:
        save_png(region_descriptions_picture(result), args.out)
    if args.json:
        print_json({**to_data(result), "picture": args.out})
        return 0
    print(f"{args.image}: {len(result.regions)} detected regions, phrases by {result.generator_description}")
    for r in result.regions:
        print(f"  #{r['region']:<2d} {r['class']:<14s} {r['detector_score']:.2f}  {box_text(r['box']):<22s} "
              f"{r['phrase']}  (log p = {r['log_prob']:.2f})")
    if args.out:
        print(f"picture: {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("regions", help="describe the detected regions of a photo with phrases",
                       description="Describe the best detected boxes of a photo, each with a phrase written "
                                   "by a caption generator that sees only that box.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--top", type=int, default=5,
                   help="how many boxes, the detector's most confident first (1-19, default 5)")
    p.add_argument("--beam", type=int, default=7,
                   help="beam size: phrases weighed at each word (default 7; 1 = the likeliest word each time)")
    p.add_argument("--max-len", type=int, default=16, help="longest phrase in words (default 16)")
    p.add_argument("--out", metavar="PICTURE.png", help="draw the boxes and phrases into this PNG (default: none)")
    add_json(p, "each box, its class, detector score, phrase and the phrase's log-probability")
    add_checkpoint(p, "caption generator", "the shipped region generator if installed, else the shipped captioner",
                   metavar="GEN")
    p.set_defaults(func=run)
