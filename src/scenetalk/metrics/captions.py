"""Caption metrics with the official coco-caption code (``pycocoevalcap``).

The standard protocol: references and candidates are lower-cased and PTB-tokenised,
BLEU-1..4 are corpus-level with the closest reference length, METEOR 1.5, ROUGE-L, and
CIDEr-D (coco-caption's ``Cider`` is the CIDEr-D variant). CIDEr's document frequencies
come from the references of the set scored together, so it is only meaningful on many
images (on one image it is always 0). SPICE needs Stanford CoreNLP jars that
pycocoevalcap downloads on first use; when they are absent it is reported as unavailable
rather than downloaded or crashed on. ``COCOEvalCap.evaluate`` builds every scorer up front
(SPICE included), so we call the scorers directly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence

from scenetalk.errors import ScenetalkError

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "SPICE")


def java_available() -> bool:
    return shutil.which("java") is not None


def spice_available() -> bool:
    from pycocoevalcap import spice

    lib = os.path.join(os.path.dirname(spice.__file__), "lib")
    return java_available() and all(
        os.path.exists(os.path.join(lib, f"stanford-corenlp-3.6.0{s}.jar")) for s in ("", "-models"))


def ptb_tokenize(texts: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """PTB-tokenise and lower-case (the Java tokenizer coco-caption uses)."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    if not java_available():
        raise ScenetalkError("caption metrics need Java (the PTB tokenizer and METEOR run on it); "
                             "install a JRE, e.g. `apt-get install default-jre-headless`")
    return PTBTokenizer().tokenize({k: [{"caption": c} for c in v] for k, v in texts.items()})


def score_captions(candidates: Mapping[str, str], references: Mapping[str, Sequence[str]],
                   meteor: bool = True, spice: bool = True) -> dict[str, float | str]:
    """Score one candidate per image against its references; returns metric -> value
    (×100 scale is left to the caller: values are as coco-caption gives them, in [0, 1+])."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    missing = set(candidates) ^ set(references)
    if missing:
        raise ValueError(f"candidates and references cover different images, e.g. {sorted(missing)[:3]}")
    if not candidates:
        raise ValueError("nothing to score")
    res = ptb_tokenize({k: [v] for k, v in candidates.items()})
    gts = ptb_tokenize(references)
    out: dict[str, float | str] = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    for n, b in enumerate(bleu, 1):
        out[f"BLEU-{n}"] = float(b)
    if meteor:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()
        try:
            out["METEOR"] = float(scorer.compute_score(gts, res)[0])
        finally:
            _close_meteor(scorer)
    out["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    out["CIDEr-D"] = float(Cider().compute_score(gts, res)[0])
    if spice and spice_available():
        from pycocoevalcap.spice.spice import Spice

        out["SPICE"] = float(Spice().compute_score(gts, res)[0])
    else:
        out["SPICE"] = "unavailable (Stanford CoreNLP 3.6.0 jars not installed)"
    return out


def _close_meteor(scorer) -> None:
    """pycocoevalcap's Meteor keeps a Java process; end it instead of leaking it."""
    proc = getattr(scorer, "meteor_p", None)
    if proc is None:
        return
    with scorer.lock:
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                stream.close()
        proc.kill()
        proc.wait()
