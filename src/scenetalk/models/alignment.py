"""Karpathy & Fei-Fei's visual-semantic alignment model (§3.1), read next to the paper.

Image regions (the whole image + top 19 detections) and the words of a sentence are mapped
into one h-dimensional space:

    v_i = W_m · CNN(I_b) + b_m                               (1)  region embedding
    x_t = W_w · 𝕀_t                                          (2)  word vector (trained from scratch)
    e_t = f(W_e · x_t + b_e)                                 (3)
    h^f_t = f(e_t + W_f · h^f_{t-1} + b_f)                   (4)  forward RNN
    h^b_t = f(e_t + W_b · h^b_{t+1} + b_b)                   (5)  backward RNN
    s_t = f(W_d · (h^f_t + h^b_t) + b_d)                     (6)  word embedding in context

with f = ReLU. An image k and a sentence l score

    S_kl = Σ_t max_i v_iᵀ s_t                                (8)  each word picks its best region

or, as in the older fragment model, S_kl = Σ_t Σ_i max(0, v_iᵀ s_t) (7). The ranking losses
(eq. 9 and the hardest-negative variant) are in ``scenetalk.losses``.

A model of several languages (a vocabulary of ``lang:word`` tokens, ``data.multilingual``)
has a word vector per language and word (eq. 2) and either one sentence side (eq. 3-6) for
every language (``brnn: shared``) or one per language (``brnn: per_language``: W_e, W_f,
W_b, W_d of its own), chosen by the sentence's language, which its word ids say
(``word_language``, a table from the vocabulary kept with the weights).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from scenetalk.models.fields import DROPOUT, LAYER, VOCABULARY, Bounds, check_fields

SCORES = ("max", "fragment")
BRNNS = ("shared", "per_language")


@dataclass
class AlignmentConfig:
    vocab_size: int
    region_dim: int = 1280
    embed_dim: int = 1000        # h, the multimodal space (the paper: 1000-1600)
    word_dim: int = 300          # x_t
    hidden_dim: int = 1000       # e_t, h^f_t, h^b_t
    dropout: float = 0.5
    score: str = "max"           # "max" (eq. 8) or "fragment" (eq. 7)
    brnn: str = "shared"         # one sentence side (eq. 3-6) for every language, or one per language
    languages: int = 1           # the vocabulary's languages (set from it, as vocab_size is)

    choices = {"score": SCORES, "brnn": BRNNS}
    ranges = {"vocab_size": VOCABULARY, "region_dim": LAYER, "embed_dim": LAYER, "word_dim": LAYER,
              "hidden_dim": LAYER, "dropout": DROPOUT, "languages": Bounds(1, 64)}

    @property
    def sentence_sides(self) -> int:
        return self.languages if self.brnn == "per_language" else 1

    def __post_init__(self):
        check_fields(self)

    def to_dict(self) -> dict:
        return {"type": "alignment", **asdict(self)}


class SentenceSide(nn.Module):
    """Eq. 3-6: word vectors x_t -> words in context s_t, one language's (or every language's)."""

    def __init__(self, config: AlignmentConfig):
        super().__init__()
        self.W_e = nn.Linear(config.word_dim, config.hidden_dim)                          # eq. 3
        self.W_f = nn.Linear(config.hidden_dim, config.hidden_dim)                        # eq. 4 (b_f)
        self.W_b = nn.Linear(config.hidden_dim, config.hidden_dim)                        # eq. 5 (b_b)
        self.W_d = nn.Linear(config.hidden_dim, config.embed_dim)                         # eq. 6

    def forward(self, x: torch.Tensor, mask: torch.Tensor, dropout: nn.Module) -> torch.Tensor:
        e = torch.relu(self.W_e(dropout(x)))                                            # eq. 3
        hf, hb = bidirectional_rnn(e, mask.to(e.dtype), self.W_f.weight, self.W_f.bias,
                                   self.W_b.weight, self.W_b.bias)                      # eq. 4-5
        s = torch.relu(self.W_d(dropout(hf + hb)))                                      # eq. 6
        return s * mask[..., None]


class AlignmentModel(nn.Module):
    def __init__(self, config: AlignmentConfig):
        super().__init__()
        if config.score not in SCORES:
            raise ValueError(f"score must be one of {', '.join(SCORES)}, not {config.score!r}")
        self.config = config
        self.W_m = nn.Linear(config.region_dim, config.embed_dim)                        # eq. 1
        self.W_w = nn.Embedding(config.vocab_size, config.word_dim, padding_idx=0)      # eq. 2
        if config.sentence_sides == 1:
            # one side, its weights at the model's top level (W_e, W_f, W_b, W_d), as every
            # checkpoint of one language has them
            side = SentenceSide(config)
            self.W_e, self.W_f, self.W_b, self.W_d = side.W_e, side.W_f, side.W_b, side.W_d
            self.sides: list[SentenceSide] | nn.ModuleList = [side]
        else:
            self.sides = nn.ModuleList(SentenceSide(config) for _ in range(config.sentence_sides))
            # the language (index into the vocabulary's languages) of every word id; -1: none
            # (<pad>, <unk>, ...). Set by the trainer from the vocabulary, saved with the weights.
            self.register_buffer("word_language", torch.zeros(config.vocab_size, dtype=torch.int64))
        self.dropout = nn.Dropout(config.dropout)

    def embed_regions(self, regions: torch.Tensor) -> torch.Tensor:
        """(B, R, region_dim) CNN features -> (B, R, h) region vectors v_i (eq. 1)."""
        return self.W_m(self.dropout(regions))

    def embed_words(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, T) word ids, 0-padded at the end -> (L, T, h) word vectors s_t (eq. 2-6) and
        the (L, T) mask of real words. Padding never reaches a real word's state: the
        backward pass starts at each sentence's own last word."""
        mask = ids != 0
        return self.embed_word_vectors(self.W_w(ids), mask, self.sentence_languages(ids)), mask  # eq. 2

    def sentence_languages(self, ids: torch.Tensor) -> torch.Tensor | None:
        """The sentence side each of the (L, T) sentences goes through: (L,) language indices,
        or None for a model with one side. A sentence of unknown words only goes to side 0."""
        if len(self.sides) == 1:
            return None
        return self.word_language[ids].max(dim=1).values.clamp(min=0) if ids.size(1) else ids.new_zeros(len(ids))

    def embed_word_vectors(self, x: torch.Tensor, mask: torch.Tensor,
                           languages: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 3-6 from the word vectors x_t (L, T, word_dim) themselves, so a caller can give a
        word the model never saw a vector of its own (``retrieval.unseen_words``). ``languages``
        (L,): each sentence's side, for a model with one per language."""
        if len(self.sides) == 1:
            return self.sides[0](x, mask, self.dropout)
        if languages is None:
            raise ValueError("a model with a sentence side per language needs each sentence's language")
        s = x.new_zeros(*x.shape[:2], self.config.embed_dim)
        for k, side in enumerate(self.sides):
            rows = (languages == k).nonzero().flatten()
            if len(rows):
                s = s.index_put((rows,), side(x[rows], mask[rows], self.dropout).to(s.dtype))
        return s

    def scores(self, v: torch.Tensor, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """S (B, L): every image (v: B, R, h) against every sentence (s: L, T, h)."""
        return image_sentence_scores(v, s, mask, self.config.score)

    def forward(self, regions: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Scores of every image in the batch against every sentence in the batch."""
        s, mask = self.embed_words(ids)
        return self.scores(self.embed_regions(regions), s, mask)


def bidirectional_rnn(e: torch.Tensor, mask: torch.Tensor, w_f: torch.Tensor, b_f: torch.Tensor,
                      w_b: torch.Tensor, b_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 4-5 over (L, T, hidden) inputs e_t with the (L, T) word mask (1 = a word): the forward
    states h^f_t and the backward states h^b_t, which stay zero until each sentence's own last
    word (the backward pass is the forward recurrence over the sentence reversed). Written for
    ``torch.jit.script`` too, so the export keeps the loop over T (an ONNX Loop) instead of
    unrolling it at one sentence length."""
    forward = masked_recurrence(e, mask, w_f, b_f)                                      # eq. 4
    backward = masked_recurrence(e.flip(1), mask.flip(1), w_b, b_b).flip(1)             # eq. 5
    return forward, backward


def masked_recurrence(e: torch.Tensor, mask: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h_t = ReLU(e_t + W·h_{t-1} + b) ⊙ mask_t from h_0 = 0, for every t: (L, T, hidden).
    Only padding is masked, so a real word's state is the paper's."""
    h = torch.zeros(e.size(0), w.size(0), dtype=e.dtype)
    states: list[torch.Tensor] = []
    for t in range(e.size(1)):
        h = torch.relu(e[:, t] + torch.nn.functional.linear(h, w, b)) * mask[:, t, None]
        states.append(h)
    if len(states) == 0:
        return e.new_zeros(e.size(0), 0, w.size(0))
    return torch.stack(states, 1)


def image_sentence_scores(v: torch.Tensor, s: torch.Tensor, mask: torch.Tensor, score: str = "max") -> torch.Tensor:
    """S_kl for images v (B, R, h) and sentences s (L, T, h) with word mask (L, T). Always in
    float32, even under bfloat16 autocast: S is a sum of many dot products, compared with a
    margin of 1, and bfloat16's 8-bit mantissa would blur it by about that much."""
    with torch.autocast(v.device.type, enabled=False):
        dots = torch.einsum("brh,lth->blrt", v.float(), s.float())  # v_iᵀ s_t for every pair
        if score == "max":
            per_word = dots.max(dim=2).values                      # eq. 8: best region per word
        else:
            per_word = dots.clamp(min=0).sum(dim=2)                # eq. 7
        return (per_word * mask[None]).sum(dim=2)


@torch.no_grad()
def all_pairs_scores(v: torch.Tensor, s: torch.Tensor, mask: torch.Tensor, score: str = "max",
                     words_per_chunk: int = 512, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """S_kl for every image (v: N, R, h) against every sentence (s: L, T, h, mask: L, T),
    exactly as ``image_sentence_scores`` but for thousands of pairs at once: the real words
    of all sentences are packed into one (W, h) matrix, so each chunk is a single matrix
    product of every region against a block of words, followed by the max over each image's
    regions and a sum over each sentence's words. No padding is ever multiplied.
    ``dtype=torch.bfloat16`` runs the products 3-4 times as fast (sums stay float32), for
    model selection; reported numbers use float32."""
    n, r, h = v.shape
    words = s[mask].to(dtype)                                             # (W, h)
    owner = torch.arange(s.size(0)).repeat_interleave(mask.sum(dim=1))    # sentence of each word
    regions = v.reshape(n * r, h).to(dtype)
    out = torch.zeros(n, s.size(0))
    for start in range(0, len(words), words_per_chunk):
        block = words[start:start + words_per_chunk]
        dots = (regions @ block.T).view(n, r, -1)                         # v_iᵀ s_t
        if score == "max":  # the max of rounded values is exact: convert after reducing
            per_word = dots.max(dim=1).values.float()
        else:
            per_word = dots.float().clamp(min=0).sum(dim=1)
        out.index_add_(1, owner[start:start + words_per_chunk], per_word)
    return out


class NumpyAlignment:
    """The alignment model's two sides with NumPy arrays in and out: what inference reads
    (``runtime.OnnxAlignment`` is the same in ONNX Runtime)."""

    def __init__(self, model: AlignmentModel):
        self.model = model
        self.word_table = model.W_w.weight.detach().float().numpy()
        self.score = model.config.score
        self.embed_dim = model.config.embed_dim

    @torch.no_grad()
    def embed_regions(self, regions: np.ndarray) -> np.ndarray:
        return self.model.embed_regions(torch.from_numpy(np.asarray(regions, dtype=np.float32))).numpy()

    def embed_words(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids, dtype=np.int64)
        mask = ids != 0
        return self.embed_word_vectors(self.word_table[ids], mask, self.sentence_languages(ids)), mask

    def sentence_languages(self, ids: np.ndarray) -> np.ndarray | None:
        languages = self.model.sentence_languages(torch.from_numpy(np.asarray(ids, dtype=np.int64)))
        return None if languages is None else languages.numpy()

    @torch.no_grad()
    def embed_word_vectors(self, x: np.ndarray, mask: np.ndarray, languages: np.ndarray | None = None) -> np.ndarray:
        return self.model.embed_word_vectors(torch.from_numpy(np.asarray(x, dtype=np.float32)),
                                             torch.from_numpy(np.asarray(mask, dtype=bool)),
                                             None if languages is None else torch.from_numpy(np.asarray(languages))
                                             ).numpy()
