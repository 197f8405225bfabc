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
from collections.abc import Callable, Mapping, Sequence

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


#: how METEOR 1.5 (``meteor-1.5.jar``) is run per language; a language not here is not scored.
#: English: exact, stem, synonym and paraphrase modules (coco-caption's settings). German: the
#: jar has German function words and a Snowball stemmer but pycocoevalcap ships no German
#: paraphrase table, so only the exact and stem modules run (said beside every German figure).
#: Chinese: METEOR 1.5 has no Chinese resources; it is reported as unavailable, never faked.
METEOR_MODES = {"en": ("-l", "en", "-norm"), "de": ("-l", "de", "-norm", "-m", "exact stem")}


def segmented(texts: Mapping[str, Sequence[str]], tokenize: Callable[[str], list[str]]) -> dict[str, list[str]]:
    """Texts as space-separated tokens for the scorers (in place of the PTB step)."""
    return {k: [" ".join(tokenize(t)) for t in v] for k, v in texts.items()}


def score_captions(candidates: Mapping[str, str], references: Mapping[str, Sequence[str]],
                   meteor: bool = True, spice: bool = True, language: str = "en",
                   tokenize: Callable[[str], list[str]] | None = None) -> dict[str, float | str]:
    """Score one candidate per image against its references; returns metric -> value
    (×100 scale is left to the caller: values are as coco-caption gives them, in [0, 1+]).

    Without ``tokenize``, texts go through coco-caption's PTB tokenizer (English only); with
    it, every text is cut by it instead (other languages: scenetalk's tokens, Chinese in jieba
    words as Li et al. 2016 score, or in characters for character-level BLEU). METEOR runs as
    ``METEOR_MODES`` says for ``language``; SPICE only in English."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    missing = set(candidates) ^ set(references)
    if missing:
        raise ValueError(f"candidates and references cover different images, e.g. {sorted(missing)[:3]}")
    if not candidates:
        raise ValueError("nothing to score")
    if tokenize is None:
        if language != "en":
            raise ValueError(f"the PTB tokenizer is English; pass tokenize= to score {language!r}")
        res = ptb_tokenize({k: [v] for k, v in candidates.items()})
        gts = ptb_tokenize(references)
    else:
        res = segmented({k: [v] for k, v in candidates.items()}, tokenize)
        gts = segmented(references, tokenize)
    res = {k: [v[0] or "<empty>"] for k, v in res.items()}  # the scorers need one token at least
    out: dict[str, float | str] = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    for n, b in enumerate(bleu, 1):
        out[f"BLEU-{n}"] = float(b)
    if meteor and language in METEOR_MODES:
        out["METEOR"] = float(_meteor(gts, res, METEOR_MODES[language]))
    elif meteor:
        out["METEOR"] = f"unavailable: METEOR 1.5 has no resources for {language!r}"
    out["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    out["CIDEr-D"] = float(Cider().compute_score(gts, res)[0])
    if language != "en":
        out["SPICE"] = "unavailable (English only)"
    elif spice and spice_available():
        from pycocoevalcap.spice.spice import Spice

        out["SPICE"] = float(Spice().compute_score(gts, res)[0])
    else:
        out["SPICE"] = "unavailable (Stanford CoreNLP 3.6.0 jars not installed)"
    return out


def _meteor(gts: dict, res: dict, options: Sequence[str]) -> float:
    """coco-caption's METEOR wrapper, run with ``options`` in place of its fixed ``-l en -norm``."""
    import subprocess
    import threading

    from pycocoevalcap.meteor import meteor as module

    if not java_available():
        raise ScenetalkError("METEOR needs Java; install a JRE, e.g. `apt-get install default-jre-headless`")
    scorer = module.Meteor.__new__(module.Meteor)
    scorer.meteor_cmd = ["java", "-jar", "-Xmx2G", module.METEOR_JAR, "-", "-", "-stdio", *options]
    scorer.meteor_p = subprocess.Popen(scorer.meteor_cmd, cwd=os.path.dirname(os.path.abspath(module.__file__)),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    scorer.lock = threading.Lock()
    try:
        return scorer.compute_score(gts, res)[0]
    finally:
        _close_meteor(scorer)


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
