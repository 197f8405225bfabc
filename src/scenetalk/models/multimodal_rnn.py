"""Karpathy & Fei-Fei's Multimodal RNN (§3.2, eq. 13–15), read next to the paper.

    b_v = W_hi · CNN(I)                                            (13)
    h_t = f(W_hx · x_t + W_hh · h_{t-1} + b_h + 1(t=1) ⊙ b_v)      (14)
    y_t = softmax(W_oh · h_t + b_o)                                (15)

f is ReLU, the hidden layer has 512 units, and the image enters only at the first step
(x_1 is the START vector). ``cell="lstm"`` replaces eq. 14 by an LSTM fed the same input
(W_hx·x_t + 1(t=1)⊙b_v); the paper's supplement reports that LSTMs work better. Dropout is
applied to every non-recurrent connection (§3.3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from scenetalk.models.fields import DROPOUT, LAYER, VOCABULARY, check_fields
from scenetalk.models.generator import CaptionGenerator, lstm_step


@dataclass
class MultimodalRNNConfig:
    vocab_size: int
    image_dim: int = 1280
    word_dim: int = 512
    hidden_dim: int = 512
    cell: str = "rnn"          # "rnn" (eq. 14) or "lstm"
    dropout: float = 0.5

    choices = {"cell": ("rnn", "lstm")}
    ranges = {"vocab_size": VOCABULARY, "image_dim": LAYER, "word_dim": LAYER, "hidden_dim": LAYER,
              "dropout": DROPOUT}

    def __post_init__(self):
        check_fields(self)

    def to_dict(self) -> dict:
        return {"type": "multimodal_rnn", **asdict(self)}


class MultimodalRNN(CaptionGenerator):
    def __init__(self, config: MultimodalRNNConfig):
        super().__init__()
        if config.cell not in ("rnn", "lstm"):
            raise ValueError(f"cell must be 'rnn' or 'lstm', not {config.cell!r}")
        self.config = config
        self.word_vectors = nn.Embedding(config.vocab_size, config.word_dim)    # x_t
        self.W_hi = nn.Linear(config.image_dim, config.hidden_dim)              # eq. 13
        self.W_hx = nn.Linear(config.word_dim, config.hidden_dim)               # carries b_h
        if config.cell == "rnn":
            self.W_hh = nn.Linear(config.hidden_dim, config.hidden_dim, bias=False)
        else:
            self.lstm = nn.LSTM(config.hidden_dim, config.hidden_dim, batch_first=True)
        self.W_oh = nn.Linear(config.hidden_dim, config.vocab_size)             # eq. 15, b_o
        self.dropout = nn.Dropout(config.dropout)

    def output_bias(self) -> torch.Tensor:
        return self.W_oh.bias                                                    # b_o

    def init_state(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """image: (B, image_dim) CNN features. h_0 = 0; b_v waits for the first step."""
        b_v = self.W_hi(self.dropout(image))
        zeros = torch.zeros_like(b_v)
        state = {"h": zeros, "first_step_bias": b_v}
        if self.config.cell == "lstm":
            state["c"] = zeros
        return state

    def step_logits(self, tokens: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        x_t = self.dropout(self.word_vectors(tokens))
        u_t = self.W_hx(x_t) + state["first_step_bias"]        # 1(t=1) ⊙ b_v
        if self.config.cell == "rnn":
            h_t = torch.relu(u_t + self.W_hh(state["h"]))      # eq. 14
            new = {"h": h_t}
        else:
            h_t, c_t = lstm_step(self.lstm, u_t, state["h"], state["c"])
            new = {"h": h_t, "c": c_t}
        new["first_step_bias"] = torch.zeros_like(state["first_step_bias"])
        return self.W_oh(self.dropout(h_t)), new                 # eq. 15 before the softmax

    def forward(self, image: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Teacher forcing, the same equations as ``step_logits`` but with every time step's
        input and output layers computed at once (only the recurrence loops): several times
        faster to train on a CPU."""
        b_v = self.W_hi(self.dropout(image))
        u = self.W_hx(self.dropout(self.word_vectors(inputs)))                  # (B, T, H)
        u = torch.cat([u[:, :1] + b_v[:, None], u[:, 1:]], dim=1)              # 1(t=1) ⊙ b_v
        if self.config.cell == "rnn":
            h, hs = torch.zeros_like(b_v), []
            for t in range(u.size(1)):
                h = torch.relu(u[:, t] + self.W_hh(h))                           # eq. 14
                hs.append(h)
            hidden = torch.stack(hs, dim=1)
        else:
            hidden, _ = self.lstm(u)
        return self.W_oh(self.dropout(hidden))                                   # eq. 15
