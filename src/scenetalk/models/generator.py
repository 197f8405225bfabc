"""What every caption generator shares: the step interface of ``scenetalk.decoding`` and
teacher-forced training through that same step, so training and decoding run one code path.

A generator implements ``init_state(image)`` and ``step_logits(tokens, state)``.
"""

from __future__ import annotations

import torch
from torch import nn


class CaptionGenerator(nn.Module):
    #: which cached features the model reads: "global" (B, D) vectors or the "grid" (B, cells, D)
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
