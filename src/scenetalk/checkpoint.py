"""Checkpoints: safetensors weights + JSON metadata, never pickles.

A checkpoint is a folder holding ``model.safetensors`` and ``config.json`` (model config,
vocabulary, feature-extractor id, anything else the trainer wants to keep). Loading one
reads tensors and JSON only, so it never runs code. Folders are written under a temporary
name and renamed into place, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenetalk import runtime
from scenetalk.data.text import Vocabulary
from scenetalk.errors import CheckpointError
from scenetalk.io import atomic_folder, umask

if TYPE_CHECKING:
    import numpy as np
    import torch

    from scenetalk.models.alignment import AlignmentModel
    from scenetalk.models.generator import CaptionGenerator

WEIGHTS, META = "model.safetensors", "config.json"
#: A captioner's prior images (optional): the global features of a seeded sample of its training
#: photos, over which m-RNN's sentence prior log P(s) = log mean_I' P(s | I') averages
#: (``captioning.likelihood.sentence_log_priors``; ``scripts/ship_prior_images.py`` writes it).
PRIOR_IMAGES = "prior_images.safetensors"
#: A weight stored in 8 bits (``save_checkpoint(..., int8=True)``): its int8 values q under its own
#: name and, under ``NAME + INT8_SCALE``, one float32 scale a row (its first axis: a Linear's
#: output unit, a word of an embedding table), w = q · scale. Symmetric, per row: scale =
#: max |w_row| / 127 (the weight-only int8 scheme of LLM.int8() and ONNX's DequantizeLinear with
#: axis 0, which the exported graphs use). Matrices of ``INT8_MIN_SIZE`` values or more only:
#: biases and norms stay float16.
INT8_SCALE = ".int8_scale"
INT8_MIN_SIZE = 16384
#: The layout of ``config.json`` and the tensor names, written into every checkpoint's
#: ``config.json`` as ``"format"``; raise it when a change would make older code misread one.
CHECKPOINT_FORMAT = 1


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8, scale float32 a row) with q · scale ≈ ``weight`` (see ``INT8_SCALE``)."""
    import torch

    rows = weight.detach().float().reshape(weight.shape[0], -1)
    scale = rows.abs().amax(dim=1).clamp(min=1e-12) / 127
    q = torch.round(rows / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.reshape(weight.shape), scale


def dequantized(tensors: dict) -> dict:
    """``tensors`` (PyTorch tensors or NumPy arrays, as read from a checkpoint) with each int8
    weight and its scale (``INT8_SCALE``) replaced by the float32 weight q · scale."""
    out = {}
    for name, value in tensors.items():
        if name.endswith(INT8_SCALE) and name[:-len(INT8_SCALE)] in tensors:
            continue
        scale = tensors.get(name + INT8_SCALE)
        if scale is not None:
            q = value.float() if hasattr(value, "float") else value.astype("float32")
            value = q * scale.reshape(-1, *([1] * (value.ndim - 1)))
        out[name] = value
    return out


def save_checkpoint(folder: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                    half: bool = False, int8: bool = False) -> Path:
    """Write ``tensors`` and ``meta`` into ``folder`` atomically (replacing an old one);
    ``config.json`` also gets ``"format": CHECKPOINT_FORMAT``. ``half``: floating-point tensors
    in float16; ``int8``: matrices of ``INT8_MIN_SIZE`` values or more in int8 with a scale a
    row (``INT8_SCALE``), the rest in float16."""
    from safetensors.torch import save_file

    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        out = {}
        for k, v in tensors.items():
            if int8 and v.is_floating_point() and v.ndim >= 2 and v.numel() >= INT8_MIN_SIZE:
                out[k], out[k + INT8_SCALE] = quantize_int8(v)
            else:
                out[k] = v.half() if (half or int8) and v.is_floating_point() else v
        out = {k: v.detach().contiguous().cpu() for k, v in out.items()}
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


def checked_meta(folder: str | os.PathLike, kind: str, expect_extractor_id: str | None = None
                 ) -> tuple[Vocabulary, dict[str, Any]]:
    """A checkpoint of ``kind`` ("caption_generator", "alignment"): its vocabulary and metadata,
    after checking the parts of ``config.json`` every engine reads (kind, model settings,
    vocabulary, its size, and the feature-extractor id when ``expect_extractor_id`` is given)."""
    meta = read_meta(folder)
    if meta.get("kind") != kind:
        name = kind.replace("_", " ")
        raise CheckpointError(f"{folder}: not {'an' if name[0] in 'aeiou' else 'a'} {name} checkpoint "
                              f"(kind {meta.get('kind')!r})")
    # config.json is checked (types, ranges, size, vocabulary) before anything is allocated
    where = f"{folder}: {META}"
    if not isinstance(meta.get("model"), dict):
        raise CheckpointError(f"{where}: damaged: 'model' must be a mapping of the model's settings")
    words = meta.get("vocabulary", {}).get("words") if isinstance(meta.get("vocabulary"), dict) else None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise CheckpointError(f"{where}: damaged: 'vocabulary.words' must be a list of words")
    try:
        vocab = Vocabulary.from_dict(meta["vocabulary"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{where}: damaged: 'vocabulary' is not a vocabulary ({exc})") from None
    if meta["model"].get("vocab_size") != len(vocab):
        raise CheckpointError(f"{where}: model.vocab_size is {meta['model'].get('vocab_size')!r} but the "
                              f"vocabulary holds {len(vocab):,} words (specials included); the file is damaged")
    have = meta.get("extractor_id")
    if expect_extractor_id is not None and have != expect_extractor_id:
        raise CheckpointError(f"{folder}: made for image features {have!r}, but the features given are "
                              f"{expect_extractor_id!r}; extract features with the checkpoint's extractor")
    return vocab, meta


def load_model(folder: str | os.PathLike, kind: str, build: Callable[[dict], torch.nn.Module],
               expect_extractor_id: str | None = None) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """A model of ``kind`` ("caption_generator", "alignment") rebuilt by ``build(meta["model"])``
    with the checkpoint's weights, in eval mode, with its vocabulary and metadata (PyTorch)."""
    from scenetalk.models.fields import FieldError

    vocab, meta = checked_meta(folder, kind, expect_extractor_id)
    try:
        model = build(meta["model"])
    except FieldError as exc:
        raise CheckpointError(f"{folder}: {META}: {exc.within('model')}") from None
    tensors, meta = load_checkpoint(folder, expect_extractor_id)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for name, shape in expected.items():
        if name not in tensors:
            raise CheckpointError(f"{folder}: {WEIGHTS}: tensor {name!r} of shape {shape} is missing")
        if tuple(tensors[name].shape) != shape:
            raise CheckpointError(f"{folder}: {WEIGHTS}: tensor {name!r} has shape {tuple(tensors[name].shape)} but "
                                  f"the model of {META} needs {shape}")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise CheckpointError(f"{folder}: {WEIGHTS}: tensor {extra[0]!r} is not part of the model of {META}")
    model.load_state_dict(tensors)
    return model.eval(), vocab, meta


def load_checkpoint(folder: str | os.PathLike, expect_extractor_id: str | None = None
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint; tensors come back as float32. Checks the feature-extractor id."""
    runtime.need_torch(f"reading {folder} in PyTorch")
    from safetensors.torch import load_file

    folder = Path(folder)
    meta = read_meta(folder)
    try:
        tensors = {k: (v.float() if v.is_floating_point() else v)
                   for k, v in dequantized(load_file(str(folder / WEIGHTS))).items()}
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{folder / WEIGHTS}: damaged: {exc}") from None
    have = meta.get("extractor_id")
    if expect_extractor_id is not None and have != expect_extractor_id:
        raise CheckpointError(f"{folder}: made for image features {have!r}, but the features given are "
                              f"{expect_extractor_id!r}; extract features with the checkpoint's extractor")
    return tensors, meta



def checkpoint_id(folder: str | os.PathLike) -> str:
    """Short hash of a checkpoint's weights: an index remembers which model embedded it, and
    ``onnx.json`` which weights its graphs were exported from. Kept per file (path, size,
    modification time), since loading a model and opening an index both ask."""
    return file_hash(Path(folder) / WEIGHTS)


def file_hash(path: str | os.PathLike) -> str:
    """Short hash of a file's bytes, kept per file (path, size, modification time)."""
    st = os.stat(path)
    return _weights_hash(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _weights_hash(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def load_alignment(folder: str | os.PathLike, expect_extractor_id: str | None = None
                   ) -> tuple[AlignmentModel, Vocabulary, dict]:
    """The alignment model in PyTorch (training, export, the reference engine)."""
    from scenetalk.models import build_alignment

    runtime.need_torch(f"reading {folder} in PyTorch")
    return load_model(folder, "alignment", build_alignment, expect_extractor_id)


def load_generator(folder: str | os.PathLike, expect_extractor_id: str | None = None
                   ) -> tuple[CaptionGenerator, Vocabulary, dict]:
    """A caption generator in PyTorch (training, export, the reference engine)."""
    from scenetalk.models import build_generator

    runtime.need_torch(f"reading {folder} in PyTorch")
    return load_model(folder, "caption_generator", build_generator, expect_extractor_id)


def exported_graphs(folder: str | os.PathLike, kind: str) -> dict[str, Any] | None:
    """The checkpoint's ``onnx.json`` when its graphs were exported from these very weights
    (its ``weights`` hash is the checkpoint's id) for a model of ``kind``, else None."""
    onnx = runtime.read_onnx_meta(folder)
    if onnx is None or onnx.get("kind") != kind or onnx.get("weights") != checkpoint_id(folder):
        return None
    return onnx


def _no_graphs(folder: str | os.PathLike) -> CheckpointError:
    stale = runtime.read_onnx_meta(folder) is not None
    why = "its ONNX graphs were exported from other weights" if stale else "it has no ONNX graphs"
    return CheckpointError(f"{folder}: {why}, and this light install runs only those; run `scenetalk export "
                           f"{folder}` where PyTorch is installed ({runtime.TRAIN_EXTRA})")


def load_generator_steps(folder: str | os.PathLike, expect_extractor_id: str | None = None):
    """A caption generator for inference, behind the NumPy step interface the decoders drive:
    ``(steps, vocabulary, metadata)``; ``steps.image_input`` says what it reads ("global" or
    "grid"). ONNX Runtime from the checkpoint's graphs, else PyTorch (see the module docstring)."""
    vocab, meta = checked_meta(folder, "caption_generator", expect_extractor_id)
    onnx = exported_graphs(folder, "caption_generator") if runtime.engine() == "onnxruntime" else None
    if onnx is not None:
        return runtime.OnnxGenerator(folder, onnx), vocab, meta
    if not runtime.torch_installed():
        raise _no_graphs(folder)
    from scenetalk.models.generator import TorchSteps

    model, vocab, meta = load_generator(folder, expect_extractor_id)
    return TorchSteps(model), vocab, meta


def load_alignment_engine(folder: str | os.PathLike, expect_extractor_id: str | None = None):
    """The alignment model for inference: ``(model, vocabulary, metadata)`` where ``model`` has
    ``embed_regions``, ``embed_words`` and ``embed_word_vectors`` on NumPy arrays, in ONNX Runtime
    from the checkpoint's graphs, else in PyTorch (``models.alignment.NumpyAlignment``)."""
    vocab, meta = checked_meta(folder, "alignment", expect_extractor_id)
    onnx = exported_graphs(folder, "alignment") if runtime.engine() == "onnxruntime" else None
    if onnx is not None:
        from safetensors import safe_open

        try:   # the word table only (eq. 2; and each word's language): the graphs read the rest themselves
            with safe_open(str(Path(folder) / WEIGHTS), framework="np") as weights:
                names = [n for n in ("W_w.weight", "W_w.weight" + INT8_SCALE) if n in weights.keys()]
                table = dequantized({n: weights.get_tensor(n) for n in names})["W_w.weight"].astype("float32")
                word_language = weights.get_tensor("word_language") if "word_language" in weights.keys() else None
        except Exception as exc:  # safetensors raises its own error types for damaged files
            raise CheckpointError(f"{Path(folder) / WEIGHTS}: damaged: {exc}") from None
        return runtime.OnnxAlignment(folder, onnx, table, score=meta["model"].get("score", "max"),
                                     word_language=word_language), vocab, meta
    if not runtime.torch_installed():
        raise _no_graphs(folder)
    from scenetalk.models.alignment import NumpyAlignment

    model, vocab, meta = load_alignment(folder, expect_extractor_id)
    return NumpyAlignment(model), vocab, meta


def as_steps(model):
    """A caption generator behind the decoders' NumPy step interface: a ``load_generator_steps``
    model as it is, a PyTorch ``CaptionGenerator`` (a trainer's) wrapped in ``TorchSteps``."""
    if hasattr(model, "step_logits"):
        from scenetalk.models.generator import TorchSteps

        return TorchSteps(model)
    return model


def as_alignment(model):
    """An alignment model with NumPy arrays in and out (``embed_regions``, ``embed_words``,
    ``embed_word_vectors``, ``word_table``): a ``load_alignment_engine`` model as it is, a
    PyTorch ``AlignmentModel`` (a trainer's) wrapped in ``NumpyAlignment``."""
    if hasattr(model, "W_w"):
        from scenetalk.models.alignment import NumpyAlignment

        return NumpyAlignment(model)
    return model


def read_prior_images(folder: str | os.PathLike) -> "np.ndarray | None":
    """A captioner's prior images ((N', D) float32, ``PRIOR_IMAGES``), or None when it has none."""
    import numpy as np
    from safetensors import safe_open

    path = Path(folder) / PRIOR_IMAGES
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="np") as f:
            images = f.get_tensor("global").astype(np.float32)
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{path}: damaged: {exc}") from None
    if images.ndim != 2 or not len(images) or not np.isfinite(images).all():
        raise CheckpointError(f"{path}: damaged: expected an (images, features) array of finite numbers")
    return images
