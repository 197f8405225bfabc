"""Mao et al.'s m-RNN (ICLR 2015), read next to the paper.

    w(t) = g(E_II · g(E_I · word_t))                  [w]  two word-embedding layers, 128 -> 256
    r(t) = f(U_r · r(t-1) + w(t))                     [r]  recurrent layer, 256-d, f = ReLU
    m(t) = g(V_w · w(t) + V_r · r(t) + V_I · I)       [m]  multimodal layer, 512-d
    P(w_{t+1} | w_1..t, I) = softmax(W_o · m(t))      [P]  the softmax layer

with the scaled tanh g(x) = 1.7159 · tanh(2x/3) (LeCun et al.) [g] for the embedding and
multimodal layers. Unlike the Multimodal RNN, the image I enters at every step, through the
multimodal layer; the recurrent layer sees only words.

The paper's text in ``docs/papers`` (the ICLR 2015 poster, ``000_*.txt``, "Detailed
calculation for recurrent r(t) and multimodal layer m(t)") gives these equations without
numbers, so the code cites them by the labels in brackets above: [r] and [m] are its two
displayed equations, [g] and f its "non-linear activation functions", [P] "the output of
the trained model"; [w] is its embedding layers I and II, which it draws but does not write out.

``recurrent="lstm"`` swaps the ReLU recurrence for an LSTM fed w(t) (our stronger variant:
the rest of the model, and the image at every step, stay as in the paper).

``output="transposed"`` is the *transposed weight sharing* of Mao et al.'s follow-up, "Learning
like a Child" (NVCL, ICCV 2015, arXiv 1504.06692, §4.1): the softmax layer W_o (V × 512) is
replaced by the transposed word-embedding matrix behind an intermediate layer U_I,

    P(w_{t+1} | w_1..t, I) = softmax(E_I^T · g(U_I · m(t)) + b)      [TWS]

so every word's input and output vectors are one row of E_I. A new word then needs one new
row of E_I and one bias (``training/new_words.py``), and the model has V·512 fewer weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from scenetalk.models.fields import DROPOUT, LAYER, VOCABULARY, FieldError, check_fields
from scenetalk.models.generator import CaptionGenerator, lstm_step


def scaled_tanh(x: torch.Tensor) -> torch.Tensor:
    """[g] g(x) = 1.7159 · tanh(2x/3): unit gain near 0, g(±1) ≈ ±1."""
    return 1.7159 * torch.tanh(2.0 * x / 3.0)


@dataclass
class MRNNConfig:
    vocab_size: int
    image_dim: int = 1280
    embed1_dim: int = 128
    embed2_dim: int = 256
    multimodal_dim: int = 512
    dropout: float = 0.5
    recurrent: str = "relu"            # "relu" (the paper) or "lstm"
    recurrent_dim: int | None = None   # defaults to embed2_dim (the paper ties them)
    output: str = "full"               # "full": W_o [P]; "transposed": E_I^T · g(U_I · m(t)) [TWS]

    choices = {"recurrent": ("relu", "lstm"), "output": ("full", "transposed")}
    ranges = {"vocab_size": VOCABULARY, "image_dim": LAYER, "embed1_dim": LAYER, "embed2_dim": LAYER,
              "multimodal_dim": LAYER, "recurrent_dim": LAYER, "dropout": DROPOUT}

    def __post_init__(self):
        check_fields(self)
        if self.recurrent == "relu" and self.recurrent_dim not in (None, self.embed2_dim):
            raise FieldError("recurrent_dim", "must equal embed2_dim for a ReLU recurrent layer (it adds w(t))")

    def to_dict(self) -> dict:
        return {"type": "mrnn", **asdict(self)}


class MRNN(CaptionGenerator):
    def __init__(self, config: MRNNConfig):
        super().__init__()
        if config.recurrent not in ("relu", "lstm"):
            raise ValueError(f"recurrent must be 'relu' or 'lstm', not {config.recurrent!r}")
        self.config = config
        self.r_dim = config.recurrent_dim or config.embed2_dim
        if config.recurrent == "relu" and self.r_dim != config.embed2_dim:
            raise ValueError("a ReLU recurrent layer adds w(t), so recurrent_dim must equal embed2_dim")
        self.E_I = nn.Embedding(config.vocab_size, config.embed1_dim)            # [w] embedding I
        self.E_II = nn.Linear(config.embed1_dim, config.embed2_dim)              # [w] embedding II
        if config.recurrent == "relu":
            self.U_r = nn.Linear(config.embed2_dim, config.embed2_dim)           # [r] U_r
        else:
            self.lstm = nn.LSTM(config.embed2_dim, self.r_dim, batch_first=True)
        # [m]: one bias for the three terms, carried by V_w
        self.V_w = nn.Linear(config.embed2_dim, config.multimodal_dim)
        self.V_r = nn.Linear(self.r_dim, config.multimodal_dim, bias=False)
        self.V_I = nn.Linear(config.image_dim, config.multimodal_dim, bias=False)
        if config.output == "full":
            self.W_o = nn.Linear(config.multimodal_dim, config.vocab_size)       # [P]
        else:
            self.U_I = nn.Linear(config.multimodal_dim, config.embed1_dim)       # [TWS] U_I
            self.b_o = nn.Parameter(torch.zeros(config.vocab_size))              # [TWS] b
            # E_I now also scores words: rows of norm ~1 (not nn.Embedding's N(0, 1), norm ~16),
            # so the first logits are ~N(0, 0.5) like W_o's instead of ~N(0, 8)
            nn.init.normal_(self.E_I.weight, std=config.embed1_dim ** -0.5)
        self.dropout = nn.Dropout(config.dropout)

    def output_bias(self) -> torch.Tensor:
        return self.W_o.bias if self.config.output == "full" else self.b_o

    def word_logits(self, m: torch.Tensor) -> torch.Tensor:
        """The softmax layer's input for m(t): W_o·m(t) [P], or E_I^T·g(U_I·m(t)) + b [TWS]."""
        if self.config.output == "full":
            return self.W_o(self.dropout(m))                                     # [P]
        return F.linear(scaled_tanh(self.U_I(self.dropout(m))), self.E_I.weight, self.b_o)  # [TWS]

    def init_state(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """image: (B, image_dim). V_I·I is the same at every step, so it is computed once."""
        image_term = self.V_I(self.dropout(image))
        r0 = torch.zeros(image.size(0), self.r_dim, dtype=image_term.dtype)
        state = {"r": r0, "image_term": image_term}
        if self.config.recurrent == "lstm":
            state["c"] = torch.zeros_like(r0)
        return state

    def step_logits(self, tokens: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        w_t = scaled_tanh(self.E_II(self.dropout(scaled_tanh(self.E_I(tokens)))))  # [w] w(t)
        new = {"image_term": state["image_term"]}
        if self.config.recurrent == "relu":
            r_t = torch.relu(self.U_r(state["r"]) + w_t)                          # [r] r(t), f = ReLU
        else:
            r_t, new["c"] = lstm_step(self.lstm, w_t, state["r"], state["c"])
        new["r"] = r_t
        m_t = scaled_tanh(self.V_w(self.dropout(w_t)) + self.V_r(self.dropout(r_t))
                          + state["image_term"])                                  # [m] m(t)
        return self.word_logits(m_t), new                                         # [P] before the softmax

    def text_term(self, inputs: torch.Tensor) -> torch.Tensor:
        """V_w·w(t) + V_r·r(t) for every time step (B, T, multimodal_dim): the part of m(t)
        that does not depend on the image, so ranking can compute it once per sentence."""
        w = scaled_tanh(self.E_II(self.dropout(scaled_tanh(self.E_I(inputs)))))   # [w] (B, T, 256)
        if self.config.recurrent == "relu":
            r, rs = torch.zeros(inputs.size(0), self.r_dim, dtype=w.dtype), []
            for t in range(inputs.size(1)):
                r = torch.relu(self.U_r(r) + w[:, t])                              # [r] r(t)
                rs.append(r)
            r_all = torch.stack(rs, dim=1)
        else:
            r_all, _ = self.lstm(w)
        return self.V_w(self.dropout(w)) + self.V_r(self.dropout(r_all))

    def multimodal_logits(self, text_term: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """m(t) = g(text term + V_I·I), then W_o·m(t); image (B, image_dim) or broadcastable."""
        m = scaled_tanh(text_term + self.V_I(self.dropout(image))[:, None])      # [m] m(t)
        return self.word_logits(m)                                               # [P] before the softmax

    def pair_log_likelihoods(self, text_term: torch.Tensor, image: torch.Tensor, targets: torch.Tensor,
                             mask: torch.Tensor) -> torch.Tensor:
        """log P(s_p | I_p) = Σ_t log softmax(W_o·m(t))[w_{t+1}] of each pair p, from its text term
        (P, T, M), image (P, D), next words (P, T) and word mask (P, T, 1 = a word): what ranking
        by likelihood computes per pair (``TorchSteps`` and the exported graph alike)."""
        logits = self.multimodal_logits(text_term, image)
        lp = logits.gather(2, targets[..., None]).squeeze(2) - torch.logsumexp(logits, dim=-1)
        return (lp * mask).sum(dim=1)

    def forward(self, image: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Teacher forcing, the same equations as ``step_logits`` with the embedding,
        multimodal and softmax layers computed for every time step at once."""
        return self.multimodal_logits(self.text_term(inputs), image)
