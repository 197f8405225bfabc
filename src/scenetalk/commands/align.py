"""``scenetalk align IMAGE "a sentence"``: which region of the photo each word describes.

Every word t scores every region i (the whole photo and 19 detections) by v_iᵀ s_t with the
alignment model (Karpathy & Fei-Fei §3.1). Printed: each word's best region (β = 0) and the
chain MRF's segments (eq. 10-12, with --beta), runs of words on one region with their summed
scores; --out also draws both, side by side, in the style of the paper's Figure 5. With no
--out nothing is written: a text or JSON query never leaves files in the current folder.
The work is ``Scenetalk.align`` (``grounding.word_regions.align_words``).
"""

from __future__ import annotations

import argparse

from scenetalk.commands import add_beta, add_checkpoint, add_json, print_json, warn


def run(args: argparse.Namespace) -> int:
    from scenetalk.api import load
    from scenetalk.grounding.photo_regions import box_text
    from scenetalk.presentation.pictures import save_png, word_alignment_picture
    from scenetalk.results import to_data

    result = load(alignment=args.checkpoint).align(args.image, args.sentence, beta=args.beta,
                                                   min_score=args.min_score)
    if result.unknown_words:
        warn("align", f"words the model does not know (scored as <unk>, never linked): "
                      f"{', '.join(result.unknown_words)}")
    if args.out:
        save_png(word_alignment_picture(result), args.out)
    if args.json:
        print_json({**to_data(result), "picture": args.out})
        return 0

    def line(words: str, region: int, score: float, shown: bool) -> None:
        r = result.region(region)
        print(f"  {'+' if shown else '-'} {words:<28s} -> #{region:<2d} {r['class']:<14s} "
              f"{box_text(r['box']):<22s} {score:7.3f}")

    print(f"{args.image}: {' '.join(result.tokens)}")
    print(f"each word's best region, match score ('-': not linked, score <= {args.min_score:g} "
          "or an unknown word):")
    for w in result.words:
        line(w.word, w.best_region, w.best_score, w.shown)
    print(f"MRF segments (β = {args.beta:g}), summed match score of their words:")
    for s in result.segments:
        line(s.words, s.region, s.score, s.shown)
    if args.out:
        print(f"picture: {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from scenetalk.grounding import ALIGN_BETA, LOW_SCORE

    p = sub.add_parser("align", help="show which region of a photo each word of a sentence describes",
                       description="Link the words of a sentence to the regions of a photo (the whole photo and "
                                   "19 detected boxes): each word's best region, and the segments, runs of "
                                   "neighbouring words kept on one region.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("sentence", metavar="SENTENCE")
    add_beta(p, ALIGN_BETA, "small enough that most words linked on their own stay linked")
    p.add_argument("--min-score", type=float, default=LOW_SCORE,
                   help="words and segments whose match score (how well the words describe their region; "
                        f"a segment's is its words' sum) is at or below this are greyed, not linked "
                        f"(default {LOW_SCORE})")
    p.add_argument("--out", metavar="PICTURE.png", help="draw both alignments into this PNG (default: none)")
    add_json(p, "words, segments and regions")
    add_checkpoint(p)
    p.set_defaults(func=run)
