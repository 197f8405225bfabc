"""Models, one readable file each. ``GENERATORS`` maps a config's ``type`` to its class, so
checkpoints and YAML configs describe models as data."""

from __future__ import annotations

from typing import Any

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
