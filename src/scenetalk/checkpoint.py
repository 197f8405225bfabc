"""Checkpoints: safetensors weights + JSON metadata, never pickles.

A checkpoint is a folder holding ``model.safetensors`` and ``config.json`` (model config,
vocabulary, feature-extractor id, anything else the trainer wants to keep). Loading one
reads tensors and JSON only, so it never runs code. Folders are written under a temporary
name and renamed into place, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from scenetalk.data.text import Vocabulary
from scenetalk.errors import CheckpointError
from scenetalk.io import atomic_folder, umask
from scenetalk.models import build_generator
from scenetalk.models.alignment import AlignmentConfig, AlignmentModel
from scenetalk.models.generator import CaptionGenerator

WEIGHTS, META = "model.safetensors", "config.json"
#: The layout of ``config.json`` and the tensor names, written into every checkpoint's
#: ``config.json`` as ``"format"``; raise it when a change would make older code misread one.
CHECKPOINT_FORMAT = 1


def save_checkpoint(folder: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                    half: bool = False) -> Path:
    """Write ``tensors`` and ``meta`` into ``folder`` atomically (replacing an old one);
    ``config.json`` also gets ``"format": CHECKPOINT_FORMAT``."""
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        out = {k: (v.half() if half and v.is_floating_point() else v).detach().contiguous().cpu()
               for k, v in tensors.items()}
        save_file(out, str(tmp / WEIGHTS))
        os.chmod(tmp / WEIGHTS, 0o666 & ~umask())  # safetensors writes a private file; give the usual mode
        record = {"format": CHECKPOINT_FORMAT, **meta}
        record["format"] = CHECKPOINT_FORMAT  # first in the file, and this code's, whatever meta says
        (tmp / META).write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
    return folder


def read_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's JSON (kind, model config, vocabulary, extractor id) without its weights."""
    folder = Path(folder)
    if not (folder / META).is_file() or not (folder / WEIGHTS).is_file():
        raise CheckpointError(f"{folder}: not a scenetalk checkpoint (expected {WEIGHTS} and {META})")
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{folder / META}: damaged: {exc}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{folder / META}: damaged: not a JSON object")
    # Checkpoints written before the format field (the shipped ones among them) are format 1.
    made = meta.get("format", 1)
    if not isinstance(made, int) or isinstance(made, bool) or made < 1:
        raise CheckpointError(f"{folder / META}: damaged: format {made!r} is not a version number")
    if made > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{folder}: checkpoint format {made} was made by a newer scenetalk "
                              f"(this one reads format {CHECKPOINT_FORMAT}); upgrade scenetalk")
    return meta


def load_model(folder: str | os.PathLike, kind: str, build: Callable[[dict], torch.nn.Module],
               expect_extractor_id: str | None = None) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """A model of ``kind`` ("caption_generator", "alignment") rebuilt by ``build(meta["model"])``
    with the checkpoint's weights, in eval mode, with its vocabulary and metadata."""
    from scenetalk.data.text import Vocabulary

    tensors, meta = load_checkpoint(folder, expect_extractor_id)
    if meta.get("kind") != kind:
        name = kind.replace("_", " ")
        raise CheckpointError(f"{folder}: not {'an' if name[0] in 'aeiou' else 'a'} {name} checkpoint "
                              f"(kind {meta.get('kind')!r})")
    model = build(meta["model"])
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"{folder}: weights do not fit the model config: {str(exc).splitlines()[0]}") from None
    return model.eval(), Vocabulary.from_dict(meta["vocabulary"]), meta


def load_checkpoint(folder: str | os.PathLike, expect_extractor_id: str | None = None
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint; tensors come back as float32. Checks the feature-extractor id."""
    folder = Path(folder)
    meta = read_meta(folder)
    try:
        tensors = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(folder / WEIGHTS)).items()}
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{folder / WEIGHTS}: damaged: {exc}") from None
    have = meta.get("extractor_id")
    if expect_extractor_id is not None and have != expect_extractor_id:
        raise CheckpointError(f"{folder}: made for image features {have!r}, but the features given are "
                              f"{expect_extractor_id!r}; extract features with the checkpoint's extractor")
    return tensors, meta







def checkpoint_id(folder: str | os.PathLike) -> str:
    """Short hash of a checkpoint's weights: an index remembers which model embedded it."""
    h = hashlib.sha256()
    with open(Path(folder) / "model.safetensors", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]







def load_alignment(folder: str | os.PathLike, expect_extractor_id: str | None = None
                   ) -> tuple[AlignmentModel, Vocabulary, dict]:
    return load_model(folder, "alignment", lambda cfg: AlignmentModel(AlignmentConfig(**cfg)), expect_extractor_id)







def load_generator(folder: str | os.PathLike, expect_extractor_id: str | None = None
                   ) -> tuple[CaptionGenerator, Vocabulary, dict]:
    return load_model(folder, "caption_generator", build_generator, expect_extractor_id)
