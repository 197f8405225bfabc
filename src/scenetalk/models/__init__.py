"""Models, one readable file each. ``GENERATORS`` maps a config's ``type`` to its class, so
checkpoints and YAML configs describe models as data; ``eval_mode`` runs a caller's model with
dropout off and gives it back as it was."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeVar

import torch

from scenetalk.models.alignment import AlignmentConfig, AlignmentModel
from scenetalk.models.attention_lstm import AttentionLSTM, AttentionLSTMConfig
from scenetalk.models.fields import FieldError, check_size, config_from
from scenetalk.models.generator import CaptionGenerator
from scenetalk.models.mrnn import MRNN, MRNNConfig
from scenetalk.models.multimodal_rnn import MultimodalRNN, MultimodalRNNConfig

GENERATORS: dict[str, tuple[type[CaptionGenerator], type]] = {
    "multimodal_rnn": (MultimodalRNN, MultimodalRNNConfig),
    "mrnn": (MRNN, MRNNConfig),
    "attention_lstm": (AttentionLSTM, AttentionLSTMConfig),
}


def generator_config(config: dict[str, Any], partial: bool = False) -> tuple[type[CaptionGenerator], Any]:
    """The model class and its checked config for ``{"type": name, **fields}``; a bad type or
    field raises a ``FieldError`` naming it (``type``, ``hidden_dim``...). With ``partial``,
    the fields the trainer fills in (``vocab_size``) may be missing, and the size is not checked."""
    if not isinstance(config, dict):
        raise FieldError("", f"must be a mapping with a type (one of {', '.join(GENERATORS)})")
    config = dict(config)
    kind = config.pop("type", None)
    if not isinstance(kind, str) or kind not in GENERATORS:
        raise FieldError("type", f"must be one of {', '.join(GENERATORS)} (got {kind!r})")
    cls, cfg_cls = GENERATORS[kind]
    return cls, config_from(cfg_cls, config, partial=partial)


def build_generator(config: dict[str, Any]) -> CaptionGenerator:
    """``config``: ``{"type": name, **fields of that model's config}``, checked (types, ranges,
    at most ``limits.MAX_PARAMETERS`` parameters) before anything is allocated."""
    cls, cfg = generator_config(config)
    check_size(cls, cfg)
    return cls(cfg)


def build_alignment(config: dict[str, Any]) -> AlignmentModel:
    """The alignment model for the fields of ``AlignmentConfig``, checked like ``build_generator``."""
    cfg = config_from(AlignmentConfig, config)
    check_size(AlignmentModel, cfg)
    return AlignmentModel(cfg)


Module = TypeVar("Module", bound=torch.nn.Module)


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
