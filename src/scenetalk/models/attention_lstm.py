"""An LSTM with soft attention over the CNN feature grid (Xu et al., "Show, Attend and
Tell", ICML 2015, §3.1.2 "deterministic soft attention"): our stronger generator.

Where the Multimodal RNN sees one image vector once, this model looks at the 7×7 grid of
region vectors a_1..a_L at every word and decides where to look:

    e_ti  = w_a · tanh(W_a a_i + W_h h_{t-1})          attention scores     (Xu eq. 4)
    α_t   = softmax(e_t)                                                     (Xu eq. 5)
    z_t   = β_t · Σ_i α_ti a_i,  β_t = σ(W_β h_{t-1})   gated context        (Xu §4.2.1)
    h_t, c_t = LSTM([E y_{t-1}; z_t], (h_{t-1}, c_{t-1}))
    p(y_t) = softmax(L_o(E y_{t-1} + L_h h_t + L_z z_t))  deep output layer  (Xu eq. 7)

h_0 and c_0 come from the mean of the grid (Xu §3.1.2). The grid vectors are first
projected to ``feature_dim`` so that attention costs little on a CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from scenetalk.models.fields import DROPOUT, LAYER, VOCABULARY, check_fields
from scenetalk.models.generator import CaptionGenerator


@dataclass
class AttentionLSTMConfig:
    vocab_size: int
    image_dim: int = 1280
    feature_dim: int = 512
    word_dim: int = 256
    hidden_dim: int = 512
    attention_dim: int = 256
    dropout: float = 0.5

    ranges = {"vocab_size": VOCABULARY, "image_dim": LAYER, "feature_dim": LAYER, "word_dim": LAYER,
              "hidden_dim": LAYER, "attention_dim": LAYER, "dropout": DROPOUT}

    def __post_init__(self):
        check_fields(self)

    def to_dict(self) -> dict:
        return {"type": "attention_lstm", **asdict(self)}


class AttentionLSTM(CaptionGenerator):
    #: the trainer feeds this model the feature grid (B, cells, image_dim), not pooled vectors
    image_input = "grid"

    def __init__(self, config: AttentionLSTMConfig):
        super().__init__()
        self.config = config
        c = config
        self.project = nn.Sequential(nn.Linear(c.image_dim, c.feature_dim), nn.ReLU())
        self.init_h = nn.Linear(c.feature_dim, c.hidden_dim)
        self.init_c = nn.Linear(c.feature_dim, c.hidden_dim)
        self.W_a = nn.Linear(c.feature_dim, c.attention_dim)
        self.W_h = nn.Linear(c.hidden_dim, c.attention_dim, bias=False)
        self.w_a = nn.Linear(c.attention_dim, 1, bias=False)
        self.W_beta = nn.Linear(c.hidden_dim, 1)
        self.E = nn.Embedding(c.vocab_size, c.word_dim)
        self.lstm = nn.LSTMCell(c.word_dim + c.feature_dim, c.hidden_dim)
        self.L_h = nn.Linear(c.hidden_dim, c.word_dim)
        self.L_z = nn.Linear(c.feature_dim, c.word_dim, bias=False)
        self.L_o = nn.Linear(c.word_dim, c.vocab_size)
        self.dropout = nn.Dropout(c.dropout)

    def output_bias(self) -> torch.Tensor:
        return self.L_o.bias

    def init_state(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """image: (B, cells, image_dim) feature grid."""
        # dropout after the projection: a 512-d mask per cell is 2.5x smaller than one on
        # the raw 1280-d grid (the mask was a large part of a training step: BENCHMARKS.md
        # "Captioning speed")
        a = self.dropout(self.project(image))
        mean = a.mean(dim=1)
        return {"h": torch.tanh(self.init_h(mean)), "c": torch.tanh(self.init_c(mean)),
                "a": a, "a_att": self.W_a(a)}  # W_a a_i does not change between words

    def attend(self, state: dict) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.w_a(torch.tanh(state["a_att"] + self.W_h(state["h"])[:, None, :])).squeeze(2)
        alpha = torch.softmax(e, dim=1)
        z = (alpha[:, :, None] * state["a"]).sum(dim=1)
        return torch.sigmoid(self.W_beta(state["h"])) * z, alpha

    def step_logits(self, tokens: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        y = self.E(tokens)
        z, _ = self.attend(state)
        h, c = self.lstm(torch.cat([self.dropout(y), z], dim=1), (state["h"], state["c"]))
        logits = self.L_o(self.dropout(y + self.L_h(self.dropout(h)) + self.L_z(z)))
        return logits, {"h": h, "c": c, "a": state["a"], "a_att": state["a_att"]}

    def forward(self, image: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Teacher forcing, the same equations as ``step_logits``; the attention and the LSTM
        loop over time, the word embeddings and the deep output layer run once for all steps."""
        state = self.init_state(image)
        y = self.E(inputs)                                                      # (B, T, word_dim)
        y_in = self.dropout(y)
        hs, zs = [], []
        for t in range(inputs.size(1)):
            z, _ = self.attend(state)
            h, c = self.lstm(torch.cat([y_in[:, t], z], dim=1), (state["h"], state["c"]))
            state = {"h": h, "c": c, "a": state["a"], "a_att": state["a_att"]}
            hs.append(h)
            zs.append(z)
        h_all, z_all = torch.stack(hs, dim=1), torch.stack(zs, dim=1)
        return self.L_o(self.dropout(y + self.L_h(self.dropout(h_all)) + self.L_z(z_all)))
