"""Models, one readable file each. ``GENERATORS`` maps a config's ``type`` to its class, so
checkpoints and YAML configs describe models as data; ``eval_mode`` runs a caller's model with
dropout off and gives it back as it was.

Importing this package loads no PyTorch: the NumPy parts (``mrf``, ``fields``) are read by the
light install. The PyTorch models (``GENERATORS``, ``AlignmentModel``...) are imported on
first use."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from scenetalk.models.fields import FieldError, check_size, config_from

if TYPE_CHECKING:
    import torch

    from scenetalk.models.alignment import AlignmentModel
    from scenetalk.models.generator import CaptionGenerator

#: A config's ``type`` -> the module and the model and config classes in it (``GENERATORS``).
_GENERATOR_CLASSES = {
    "multimodal_rnn": ("multimodal_rnn", "MultimodalRNN", "MultimodalRNNConfig"),
    "mrnn": ("mrnn", "MRNN", "MRNNConfig"),
    "attention_lstm": ("attention_lstm", "AttentionLSTM", "AttentionLSTMConfig"),
    "updown": ("updown", "UpDown", "UpDownConfig"),
    "updown_grid": ("updown", "UpDownGrid", "UpDownGridConfig"),
}
#: The PyTorch classes this package names, by the module that holds each (imported on first use).
_LAZY = {"AlignmentConfig": "alignment", "AlignmentModel": "alignment", "CaptionGenerator": "generator",
         **{name: module for module, *names in _GENERATOR_CLASSES.values() for name in names}}


def _generators() -> dict[str, tuple[type[CaptionGenerator], type]]:
    if "GENERATORS" not in globals():
        globals()["GENERATORS"] = {
            kind: tuple(getattr(importlib.import_module(f"{__name__}.{module}"), name) for name in names)
            for kind, (module, *names) in _GENERATOR_CLASSES.items()}
    return globals()["GENERATORS"]


def __getattr__(name: str) -> Any:
    if name == "GENERATORS":
        return _generators()
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def generator_config(config: dict[str, Any], partial: bool = False) -> tuple[type[CaptionGenerator], Any]:
    """The model class and its checked config for ``{"type": name, **fields}``; a bad type or
    field raises a ``FieldError`` naming it (``type``, ``hidden_dim``...). With ``partial``,
    the fields the trainer fills in (``vocab_size``) may be missing, and the size is not checked."""
    if not isinstance(config, dict):
        raise FieldError("", f"must be a mapping with a type (one of {', '.join(_GENERATOR_CLASSES)})")
    config = dict(config)
    kind = config.pop("type", None)
    if not isinstance(kind, str) or kind not in _GENERATOR_CLASSES:
        raise FieldError("type", f"must be one of {', '.join(_GENERATOR_CLASSES)} (got {kind!r})")
    cls, cfg_cls = _generators()[kind]
    return cls, config_from(cfg_cls, config, partial=partial)


def build_generator(config: dict[str, Any]) -> CaptionGenerator:
    """``config``: ``{"type": name, **fields of that model's config}``, checked (types, ranges,
    at most ``limits.MAX_PARAMETERS`` parameters) before anything is allocated."""
    cls, cfg = generator_config(config)
    check_size(cls, cfg)
    return cls(cfg)


def build_alignment(config: dict[str, Any]) -> AlignmentModel:
    """The alignment model for the fields of ``AlignmentConfig``, checked like ``build_generator``."""
    from scenetalk.models.alignment import AlignmentConfig, AlignmentModel

    cfg = config_from(AlignmentConfig, config)
    check_size(AlignmentModel, cfg)
    return AlignmentModel(cfg)


Module = TypeVar("Module", bound="torch.nn.Module")


@contextlib.contextmanager
def eval_mode(model: Module) -> Iterator[Module]:
    """``model`` in eval mode (dropout off) for the block, then every submodule back in the mode
    it had: code that scores, decodes or validates with a caller's model (a trainer's, say)
    must not leave it changed."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
