"""Top-down attention over the detector's regions and the feature grid (Anderson et al.,
"Bottom-Up and Top-Down Attention for Image Captioning and VQA", CVPR 2018, §3.2), read next to
the paper. The image is a set of k vectors v_1..v_k: the 20 region vectors of the feature store
(region 0 is the whole photo) followed by the 7×7 grid cells, each projected once per photo
(``UpDownGrid``, type ``updown_grid``: the grid cells alone).

Two LSTMs a word. The top-down attention LSTM sees the previous word, the mean image vector and
the language LSTM's last state, and decides where to look; the language LSTM reads what it saw:

    x¹_t = [h²_{t-1}; v̄; W_e Π_t]                          attention LSTM input   (eq. 2)
    h¹_t = LSTM_1(x¹_t, h¹_{t-1})
    a_it = w_a · tanh(W_va v_i + W_ha h¹_t)                 attention scores       (eq. 3)
    α_t  = softmax(a_t)                                                            (eq. 4)
    v̂_t  = Σ_i α_it v_i                                     attended image         (eq. 5)
    x²_t = [v̂_t; h¹_t],  h²_t = LSTM_2(x²_t, h²_{t-1})      language LSTM          (eq. 6)
    p(y_t) = softmax(W_p h²_t + b_p)                                               (eq. 7)

v_i here is ReLU(W_v f_i) of the stored 1280-d feature f_i (the paper's 2048-d Faster R-CNN
vectors enter as they are; ours are narrowed to ``feature_dim`` so a step is cheap on a CPU).
v_i, v̄ and W_va v_i do not change between words, so ``init_state`` computes them once per photo.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from scenetalk.models.attention_lstm import AttentionLSTMConfig
from scenetalk.models.generator import CaptionGenerator


@dataclass
class UpDownConfig(AttentionLSTMConfig):
    """The sizes are the attention LSTM's: image, projected feature, word, hidden (both LSTMs)
    and attention widths, and the dropout."""

    def to_dict(self) -> dict:
        return {"type": "updown", **asdict(self)}


@dataclass
class UpDownGridConfig(UpDownConfig):
    def to_dict(self) -> dict:
        return {"type": "updown_grid", **asdict(self)}


class UpDown(CaptionGenerator):
    #: the trainer feeds this model the 20 regions and the grid cells, (B, 20 + cells, image_dim)
    image_input = "regions+grid"

    def __init__(self, config: UpDownConfig):
        super().__init__()
        self.config = config
        c = config
        self.W_v = nn.Linear(c.image_dim, c.feature_dim)
        self.W_e = nn.Embedding(c.vocab_size, c.word_dim)
        self.lstm1 = nn.LSTMCell(c.hidden_dim + c.feature_dim + c.word_dim, c.hidden_dim)   # eq. 2
        self.W_va = nn.Linear(c.feature_dim, c.attention_dim, bias=False)                   # eq. 3
        self.W_ha = nn.Linear(c.hidden_dim, c.attention_dim)
        self.w_a = nn.Linear(c.attention_dim, 1, bias=False)
        self.lstm2 = nn.LSTMCell(c.feature_dim + c.hidden_dim, c.hidden_dim)                # eq. 6
        self.W_p = nn.Linear(c.hidden_dim, c.vocab_size)                                    # eq. 7
        self.dropout = nn.Dropout(c.dropout)

    def output_bias(self) -> torch.Tensor:
        return self.W_p.bias

    def init_state(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """image: (B, k, image_dim), the regions then the grid cells."""
        v = self.dropout(torch.relu(self.W_v(image)))                    # v_i, once per photo
        zeros = v.new_zeros(v.size(0), self.config.hidden_dim)
        return {"h1": zeros, "c1": zeros, "h2": zeros, "c2": zeros,
                "v": v, "v_mean": v.mean(dim=1), "v_att": self.W_va(v)}   # v̄ and W_va v_i: fixed

    def recur(self, tokens: torch.Tensor, state: dict) -> dict:
        """Both LSTMs one word on (eq. 2-6): the next state, h²_t included."""
        x1 = torch.cat([state["h2"], state["v_mean"], self.W_e(tokens)], dim=1)                   # eq. 2
        h1, c1 = self.lstm1(x1, (state["h1"], state["c1"]))
        a = self.w_a(torch.tanh(state["v_att"] + self.W_ha(h1)[:, None, :])).squeeze(2)         # eq. 3
        alpha = torch.softmax(a, dim=1)                                                          # eq. 4
        v_hat = torch.bmm(alpha[:, None, :], state["v"]).squeeze(1)                             # eq. 5
        h2, c2 = self.lstm2(torch.cat([v_hat, h1], dim=1), (state["h2"], state["c2"]))          # eq. 6
        return {**state, "h1": h1, "c1": c1, "h2": h2, "c2": c2}

    def step_logits(self, tokens: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        state = self.recur(tokens, state)
        return self.W_p(self.dropout(state["h2"])), state                                       # eq. 7

    def forward(self, image: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Teacher forcing through the same ``recur``, with the softmax layer (eq. 7) applied
        to every step's h²_t at once."""
        state, hs = self.init_state(image), []
        for t in range(inputs.size(1)):
            state = self.recur(inputs[:, t], state)
            hs.append(state["h2"])
        return self.W_p(self.dropout(torch.stack(hs, dim=1)))


class UpDownGrid(UpDown):
    """The same model over the 7×7 grid cells alone: no detector, so a new photo's features
    cost one backbone pass (the regions' crops cost 20)."""
    image_input = "grid"
