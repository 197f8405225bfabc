"""Models, one readable file each. ``GENERATORS`` maps a config's ``type`` to its class, so
checkpoints and YAML configs describe models as data; ``eval_mode`` runs a caller's model with
dropout off and gives it back as it was."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeVar

import torch

from scenetalk.models.attention_lstm import AttentionLSTM, AttentionLSTMConfig
from scenetalk.models.generator import CaptionGenerator
from scenetalk.models.mrnn import MRNN, MRNNConfig
from scenetalk.models.multimodal_rnn import MultimodalRNN, MultimodalRNNConfig

GENERATORS: dict[str, tuple[type[CaptionGenerator], type]] = {
    "multimodal_rnn": (MultimodalRNN, MultimodalRNNConfig),
    "mrnn": (MRNN, MRNNConfig),
    "attention_lstm": (AttentionLSTM, AttentionLSTMConfig),
}


def build_generator(config: dict[str, Any]) -> CaptionGenerator:
    """``config``: ``{"type": name, **fields of that model's config}``."""
    config = dict(config)
    kind = config.pop("type", None)
    if kind not in GENERATORS:
        raise ValueError(f"unknown generator type {kind!r}; known: {', '.join(GENERATORS)}")
    cls, cfg_cls = GENERATORS[kind]
    return cls(cfg_cls(**config))


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
