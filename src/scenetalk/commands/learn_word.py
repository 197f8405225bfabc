"""``scenetalk learn-word WORD [WORD ...] --images DIR --captions FILE --out CKPT``: teach the
captioner new words from a few photos with sentences (NVCL, ``training/new_words.py``)."""

from __future__ import annotations

import argparse

from scenetalk.commands import add_json, add_quiet, print_json


def run(args: argparse.Namespace) -> int:
    from scenetalk.api import load

    result = load().learn_words(args.words, args.images, args.captions, args.out, base=args.base,
                                method=args.method, steps=args.steps, relearn=args.relearn,
                                overwrite=args.overwrite, progress=not args.quiet, from_detector=args.from_detector)
    if args.json:
        print_json(result)
        return 0
    if result.photos:
        uses = ", ".join(f"{w} ({n} sentence{'s' if n != 1 else ''})" for w, n in result.uses.items())
        print(f"learned {uses} from {result.photos} photos in {result.seconds:.0f} s ({result.method})")
    else:
        print(f"added {len(result.words)} of the detector's words without photos, each starting as the known "
              "words nearest it; the detector decides where they are said:")
    for word, near in result.analogues.items():
        print(f"  {word}: started as {', '.join(near)}")
    print(f"wrote {result.out}; try: scenetalk caption --checkpoint {result.out} PHOTO")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("learn-word", help="teach the captioner new words from a few photos with sentences",
                       description="Teach a captioner words it does not know from a few photos and their "
                                   "sentences, without disturbing what it knows (only the new words are learned), "
                                   "and write the result as a new captioner checkpoint.")
    p.add_argument("words", nargs="*", metavar="WORD",
                   help="the new words, as they appear in the sentences (with --from-detector and no photos: "
                        "detector classes, default every one-word class the captioner lacks)")
    p.add_argument("--images", metavar="DIR", help="folder of the photos")
    p.add_argument("--captions", metavar="FILE",
                   help="the photos' sentences: lines of 'photo name<TAB>sentence', or a Karpathy JSON file")
    p.add_argument("--from-detector", action="store_true",
                   help="start each new word from the known words nearest it in pretrained word vectors, and let "
                        "the object detector decide where its classes' words are said (without --images and "
                        "--captions: nothing is trained)")
    p.add_argument("--out", required=True, metavar="CKPT", help="checkpoint folder to write")
    p.add_argument("--base", metavar="CKPT", help="captioner to extend (default: the shipped one)")
    p.add_argument("--method", choices=("nvcl", "finetune"), default="nvcl",
                   help="nvcl: learn only the new words (default); finetune: retrain every weight on these "
                        "photos (forgets more)")
    p.add_argument("--steps", type=int, help="training steps (default: the value chosen on Flickr8K validation)")
    p.add_argument("--relearn", action="store_true", help="learn words the captioner knows already, again")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    add_json(p, "what was learned")
    add_quiet(p)
    p.set_defaults(func=run)
