"""``scenetalk regions IMAGE``: the photo's detected boxes, each described by a phrase.

Each of the --top detections (regions 1-19, by detector score; region 0, the whole photo, is
left out) is described by a caption generator fed that region's feature: the crop's CNN
vector, the same kind of 1280-d vector a generator trained on whole photos reads. The
default generator is the region-trained one when the package ships it
(``weights/regions``), else the shipped full-photo captioner, whose phrases then read like
whole-photo captions. --out draws them as in Karpathy & Fei-Fei's Figure 7.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scenetalk.errors import ScenetalkError


def region_extractor(captioner):
    """An extractor giving the 20 regions with the backbone the generator was trained on.
    A generator of whole photos names only its backbone; the detector is added to it."""
    from scenetalk.features.extract import Extractor

    if captioner.extractor.regions:
        return captioner.extractor
    if captioner.generator.image_input != "global":
        raise ScenetalkError(f"{captioner.checkpoint}: this generator reads a grid of cells, not one vector "
                             "per region; use a generator of global features (e.g. the shipped captioner)")
    return Extractor(captioner.extractor.backbone, regions=True, grid=False)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from scenetalk.captioning.captioner import Captioner, caption_features, default_length_penalty
    from scenetalk.commands.align import box_text, photo_regions, region_record
    from scenetalk.presentation.pictures import regions_picture, save_png
    from scenetalk.weights import region_generator

    if not 1 <= args.top <= 19:
        raise ScenetalkError(f"--top must be between 1 and 19, the detections kept per photo (got {args.top})")
    if args.beam < 1 or args.max_len < 1:
        raise ScenetalkError(f"--beam and --max-len must be at least 1 (got {args.beam} and {args.max_len})")
    if args.checkpoint:
        checkpoint, which = Path(args.checkpoint), f"the generator in {args.checkpoint}"
    else:
        checkpoint, which = region_generator()
    captioner = Captioner(checkpoint)
    image, arrays = photo_regions(args.image, region_extractor(captioner))
    # Regions 1-19 by detector score (stable, so equal scores keep the detector's order);
    # grid fillers (score 0) come last.
    chosen = 1 + np.argsort(-arrays["box_scores"][1:], kind="stable")[:args.top]
    features = torch.from_numpy(arrays["regions"][chosen]).float()
    phrases = [caps[0] for caps in caption_features(captioner.generator, captioner.vocab, features,
                                                    beam_size=args.beam, max_len=args.max_len,
                                                    length_penalty=default_length_penalty(captioner.meta))]
    records = [{**region_record(int(k), arrays, image.size), "phrase": c.text, "log_prob": round(c.log_prob, 4)}
               for k, c in zip(chosen, phrases)]
    if args.out:
        labels = [(r["phrase"], f"#{r['region']} {r['class']} {r['detector_score']:.2f} · log p {r['log_prob']:.1f}")
                  for r in records]
        save_png(regions_picture(image, arrays["boxes"][chosen], labels, title=f"phrases by {which}"), args.out)
    if args.json:
        json.dump({"image": args.image, "generator": str(checkpoint), "generator_description": which,
                   "regions": records, "picture": args.out}, sys.stdout, indent=1, ensure_ascii=False)
        print()
        return 0
    print(f"{args.image}: {len(records)} detected regions, phrases by {which}")
    for r in records:
        print(f"  #{r['region']:<2d} {r['class']:<14s} {r['detector_score']:.2f}  {box_text(r['box']):<22s} "
              f"{r['phrase']}  (log p = {r['log_prob']:.2f})")
    if args.out:
        print(f"picture: {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("regions", help="describe the detected regions of a photo with phrases",
                       description="Describe the best detections of a photo with a caption generator fed "
                                   "each region's feature (Karpathy & Fei-Fei Figure 7).")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--top", type=int, default=5, help="how many detections, by detector score (default 5)")
    p.add_argument("--beam", type=int, default=7, help="beam size (default 7)")
    p.add_argument("--max-len", type=int, default=16, help="longest phrase in words (default 16)")
    p.add_argument("--out", metavar="PICTURE.png", help="draw the boxes and phrases into this PNG (default: none)")
    p.add_argument("--json", action="store_true", help="print JSON: box, class, detector score, phrase, log p")
    p.add_argument("--checkpoint", metavar="GEN",
                   help="caption generator (default: the shipped region generator if installed, else the "
                        "shipped captioner)")
    p.set_defaults(func=run)
