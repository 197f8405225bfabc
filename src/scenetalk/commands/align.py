"""``scenetalk align IMAGE "a sentence"``: which region of the photo each word describes.

Every word t scores every region i (the whole photo and 19 detections) by v_iᵀ s_t with the
alignment model (Karpathy & Fei-Fei §3.1). Printed: each word's best region (β = 0) and the
chain MRF's segments (eq. 10-12, with --beta), runs of words on one region with their summed
scores; --out also draws both, side by side, in the style of the paper's Figure 5. With no
--out nothing is written: a text or JSON query never leaves files in the current folder.
"""

from __future__ import annotations

import argparse
import json
import sys

from scenetalk.errors import ScenetalkError


def photo_regions(path: str, extractor):
    """The photo at ``path`` (an ``ImageError`` names it if unreadable) and its region arrays
    (``Extractor.features`` of the one image): regions, boxes, box_scores, box_classes."""
    from scenetalk.vision.images import load_image

    image = load_image(path)
    arrays = extractor.features([image])
    return image, {k: v[0] for k, v in arrays.items()}


def region_record(k: int, arrays: dict, size: tuple[int, int]) -> dict:
    """One region as printed: index, class, detector score, box in the photo's pixels."""
    from scenetalk.vision.boxes import to_pixels
    from scenetalk.vision.regions import region_class_names

    box = [round(float(x), 1) for x in to_pixels(arrays["boxes"][k], *size)[0]]
    name = region_class_names().get(int(arrays["box_classes"][k]), f"class-{int(arrays['box_classes'][k])}")
    return {"region": k, "class": name, "detector_score": round(float(arrays["box_scores"][k]), 4), "box": box}


def run(args: argparse.Namespace) -> int:
    import torch

    from scenetalk.data.text import sentence_tokens
    from scenetalk.grounding.word_regions import align_sentences, word_region_scores
    from scenetalk.presentation.pictures import alignment_picture, links, save_png
    from scenetalk.retrieval.scoring import Aligner
    from scenetalk.weights import shipped_alignment

    if args.beta < 0:
        raise ScenetalkError(f"--beta must be at least 0 (got {args.beta})")
    aligner = Aligner(args.checkpoint or shipped_alignment())
    [tokens] = sentence_tokens([args.sentence], aligner.vocab)
    known = [t in aligner.vocab.stoi for t in tokens]
    if not any(known):
        raise ScenetalkError(f"none of the words of {args.sentence!r} is known to the model "
                             f"(its vocabulary has {len(aligner.vocab)} words from its training sentences)")
    if not all(known):
        print(f"scenetalk align: words the model does not know (scored as <unk>, never linked): "
              f"{', '.join(t for t, k in zip(tokens, known) if not k)}", file=sys.stderr)
    image, arrays = photo_regions(args.image, aligner.extractor)
    regions = torch.from_numpy(arrays["regions"]).float()[None]
    unary, mask = word_region_scores(aligner.model, aligner.vocab, regions, [tokens], [0])
    unary = unary[0, :len(tokens)]
    assignment = align_sentences(unary[None], mask[:, :len(tokens)], args.beta)[0]
    best = links(unary, unary.argmax(dim=1), per_word=True, min_score=args.min_score, known=known)
    segs = links(unary, assignment, min_score=args.min_score, known=known)
    used = sorted({link.region for link in best + segs})
    table = {k: region_record(k, arrays, image.size) for k in used}

    if args.out:
        save_png(alignment_picture(image, tokens, unary, arrays["boxes"], assignment, beta=args.beta,
                                   min_score=args.min_score, known=known), args.out)
    if args.json:
        words = [{"word": w, "known": k, "best_region": b.region, "best_score": round(b.score, 4),
                  "mrf_region": int(a), "mrf_score": round(float(unary[t, int(a)]), 4), "shown": b.shown}
                 for t, (w, k, b, a) in enumerate(zip(tokens, known, best, assignment))]
        out = {"image": args.image, "sentence": args.sentence, "checkpoint": str(aligner.checkpoint),
               "beta": args.beta, "min_score": args.min_score, "words": words,
               "segments": [{"words": s.text(tokens), "start": s.start, "end": s.end, "region": s.region,
                             "score": round(s.score, 4), "shown": s.shown} for s in segs],
               "regions": list(table.values()), "picture": args.out}
        json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
        print()
        return 0
    print(f"{args.image}: {' '.join(tokens)}")
    print(f"each word's best region (β = 0), v_iᵀ s_t ('-': not linked, score <= {args.min_score:g} "
          "or an unknown word):")
    for w, b in zip(tokens, best):
        _print_link(w, b, table[b.region])
    print(f"MRF segments (β = {args.beta:g}), Σ_t v_iᵀ s_t:")
    for s in segs:
        _print_link(s.text(tokens), s, table[s.region])
    if args.out:
        print(f"picture: {args.out}")
    return 0


def box_text(box) -> str:
    """A pixel box as printed: whole pixels are precise enough to find it on the photo."""
    return "({:.0f}, {:.0f}, {:.0f}, {:.0f})".format(*box)


def _print_link(words: str, link, region: dict) -> None:
    print(f"  {'+' if link.shown else '-'} {words:<28s} -> #{link.region:<2d} {region['class']:<14s} "
          f"{box_text(region['box']):<22s} {link.score:7.3f}")


def register(sub: argparse._SubParsersAction) -> None:
    from scenetalk.grounding.word_regions import DEFAULT_BETA
    from scenetalk.presentation.pictures import LOW_SCORE

    p = sub.add_parser("align", help="show which region of a photo each word of a sentence describes",
                       description="Align the words of a sentence with the regions of a photo (Karpathy & "
                                   "Fei-Fei Figure 5): each word's best region, and the MRF's segments.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("sentence", metavar="SENTENCE")
    p.add_argument("--beta", type=float, default=DEFAULT_BETA,
                   help=f"MRF bonus for neighbouring words on one region (default {DEFAULT_BETA}, chosen on "
                        "Flickr8K's dev images; 0 = each word on its own best region)")
    p.add_argument("--min-score", type=float, default=LOW_SCORE,
                   help=f"scores per word at or below this are greyed, not linked (default {LOW_SCORE})")
    p.add_argument("--out", metavar="PICTURE.png", help="draw both alignments into this PNG (default: none)")
    p.add_argument("--json", action="store_true", help="print JSON: words, segments, regions")
    p.add_argument("--checkpoint", help="alignment checkpoint (default: the shipped one)")
    p.set_defaults(func=run)
