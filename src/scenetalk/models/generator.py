"""What every caption generator shares: the step interface of ``scenetalk.decoding`` and
teacher-forced training through that same step, so training and decoding run one code path.

A generator implements ``init_state(image)`` and ``step_logits(tokens, state)``;
``TorchSteps`` puts it behind the decoders' NumPy step interface.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def lstm_step(lstm: nn.LSTM, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One time step of a one-layer ``nn.LSTM`` with its own weights, written out:

        i, f, g, o = split(W_ih·x + b_ih + W_hh·h + b_hh)
        c' = σ(f)⊙c + σ(i)⊙tanh(g),   h' = σ(o)⊙tanh(c')

    the same numbers as calling the module on a length-1 sequence, without its per-call
    overhead (most of a beam-search step for a small beam: BENCHMARKS.md "Captioning speed")."""
    gates = torch.addmm(lstm.bias_ih_l0, x, lstm.weight_ih_l0.t()) + torch.addmm(lstm.bias_hh_l0, h, lstm.weight_hh_l0.t())
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class CaptionGenerator(nn.Module):
    #: which cached features the model reads (``features.store.MODEL_INPUTS``): "global" (B, D)
    #: vectors, the "grid" (B, cells, D), or "regions+grid" (B, 20 + cells, D)
    image_input = "global"

    def init_state(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def step_logits(self, tokens: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def output_bias(self) -> torch.Tensor:
        """The softmax layer's bias (the trainer starts it at the log word frequencies)."""
        raise NotImplementedError

    def step(self, tokens: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        logits, state = self.step_logits(tokens, state)
        return torch.log_softmax(logits, dim=-1), state

    def forward(self, image: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: inputs (B, T) = <start> w_1 .. w_{T-1}; returns logits (B, T, V)."""
        state = self.init_state(image)
        logits = []
        for t in range(inputs.size(1)):
            out, state = self.step_logits(inputs[:, t], state)
            logits.append(out)
        return torch.stack(logits, dim=1)


class TorchSteps:
    """A generator's ``init_state`` and ``step`` with NumPy arrays in and out, the interface
    ``captioning.decoding`` drives (``runtime.OnnxGenerator`` is the same in ONNX Runtime).
    The arrays share memory with the tensors, so a step costs no copy (on a CPU; a model on a
    GPU, in training, gets its inputs there and gives its outputs back)."""

    def __init__(self, model: CaptionGenerator):
        self.model = model
        self.image_input = model.image_input
        self.device = next(model.parameters()).device

    def _tensor(self, array: np.ndarray, dtype=None) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=dtype)).to(self.device)

    @property
    def ranks_by_text_term(self) -> bool:
        """Whether its recurrence never reads the image (the m-RNN: ``text_term``)."""
        return hasattr(self.model, "text_term")

    @torch.no_grad()
    def pair_log_likelihoods(self, images: np.ndarray, ids: np.ndarray, pad_id: int = 0) -> np.ndarray:
        """log P(s_p | I_p) as ``runtime.OnnxGenerator.pair_log_likelihoods``, in float32."""
        ids_t = self._tensor(ids, np.int64)
        distinct, which = torch.unique(ids_t, dim=0, return_inverse=True)
        text = self.model.text_term(distinct[:, :-1])[which]
        targets = ids_t[:, 1:]
        image = self._tensor(images, np.float32)
        return _array(self.model.pair_log_likelihoods(text, image, targets, (targets != pad_id).float()))

    @torch.no_grad()
    def init_state(self, image: np.ndarray) -> dict[str, np.ndarray]:
        state = self.model.init_state(self._tensor(image, np.float32))
        return {name: _array(value) for name, value in state.items()}

    @torch.no_grad()
    def step(self, tokens: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        tensors = {name: self._tensor(value) for name, value in state.items()}
        log_probs, new = self.model.step(self._tensor(tokens, np.int64), tensors)
        return _array(log_probs), {name: _array(value) for name, value in new.items()}


def _array(tensor: torch.Tensor) -> np.ndarray:
    # under bfloat16 autocast (training) a state comes out in bfloat16, which NumPy lacks
    return (tensor.float() if tensor.is_floating_point() else tensor).cpu().numpy()
