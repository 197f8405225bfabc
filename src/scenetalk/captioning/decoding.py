"""Caption decoding shared by every generator: greedy, sampling and beam search.

A generator takes part through a small step interface (as in self-critical.pytorch):

    state = model.init_state(images)              # any tree of tensors, batch dim first
    log_probs, state = model.step(tokens, state)  # tokens (N,) -> log_probs (N, V)

``tokens`` is the previous word of each running sentence (``<start>`` on the first step).
Decoders reorder and repeat the state with ``index_select`` along dim 0, so a state may
hold anything with a batch dimension: hidden vectors, the image vector of m-RNN, an
attention model's feature grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

State = Any  # a tensor, or a tuple/list/dict of states, every tensor with the batch dim first


class StepModel(Protocol):
    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]: ...


@dataclass
class Hypothesis:
    tokens: list[int]       # generated word ids, without <start> and <end>
    log_prob: float         # sum of log-probabilities, <end> included when complete
    score: float            # log_prob, divided by length**length_penalty when asked
    complete: bool          # False when max_len was reached before <end>


def select_state(state: State, index: torch.Tensor) -> State:
    """Rows ``index`` of every tensor in the state tree."""
    if torch.is_tensor(state):
        return state.index_select(0, index)
    if isinstance(state, dict):
        return {k: select_state(v, index) for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(select_state(v, index) for v in state)
    if state is None:
        return None
    raise TypeError(f"decoder state must be tensors in tuples/lists/dicts, got {type(state).__name__}")


def _mask(log_probs: torch.Tensor, step: int, min_len: int, end_id: int, banned: Sequence[int]) -> torch.Tensor:
    """Words that may not come next: ``<end>`` before ``min_len``, and ``banned`` ids (such as
    ``<unk>``) always. Their log-probabilities become -inf; the others are left unnormalised."""
    if step < min_len or banned:
        log_probs = log_probs.clone()
        if step < min_len:
            log_probs[:, end_id] = -math.inf
        if banned:
            log_probs[:, list(banned)] = -math.inf
    return log_probs


@torch.no_grad()
def greedy(model: StepModel, state: State, batch_size: int, start_id: int, end_id: int,
           max_len: int = 20, min_len: int = 1, banned: Sequence[int] = ()) -> list[Hypothesis]:
    """Most probable word at every step (beam search with beam 1, but cheaper)."""
    return sample(model, state, batch_size, start_id, end_id, max_len, min_len, top_k=1, banned=banned)


@torch.no_grad()
def sample(model: StepModel, state: State, batch_size: int, start_id: int, end_id: int,
           max_len: int = 20, min_len: int = 1, temperature: float = 1.0, top_k: int = 0,
           generator: torch.Generator | None = None, banned: Sequence[int] = ()) -> list[Hypothesis]:
    """Draw one sentence per image from softmax(logits / temperature), optionally only
    among the ``top_k`` most probable words. ``top_k=1`` is greedy decoding. The reported
    log-probability is under the model's own distribution (temperature 1)."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    tokens = torch.full((batch_size,), start_id, dtype=torch.long)
    out = torch.zeros((batch_size, max_len), dtype=torch.long)
    total = torch.zeros(batch_size)
    finished = torch.zeros(batch_size, dtype=torch.bool)
    lengths = torch.full((batch_size,), max_len, dtype=torch.long)
    for t in range(max_len):
        log_probs, state = model.step(tokens, state)
        log_probs = _mask(log_probs.float(), t, min_len, end_id, banned)
        if bool(finished.any()):  # finished rows keep emitting <end>, whatever the model says
            log_probs = log_probs.clone()
            log_probs[finished] = -math.inf
            log_probs[finished, end_id] = 0.0
        if top_k == 1:
            tokens = log_probs.argmax(dim=1)
        else:
            logits = log_probs / temperature
            if top_k > 0:
                kth = logits.topk(min(top_k, logits.size(1)), dim=1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, -math.inf)
            tokens = torch.multinomial(logits.softmax(dim=1), 1, generator=generator).squeeze(1)
        step_lp = log_probs.gather(1, tokens[:, None]).squeeze(1)
        total += torch.where(finished, torch.zeros_like(step_lp), step_lp)
        out[:, t] = tokens
        newly = (tokens == end_id) & ~finished
        lengths[newly] = t
        finished |= newly
        if bool(finished.all()):
            break
    return [Hypothesis(out[i, : lengths[i]].tolist(), float(total[i]), float(total[i]), bool(finished[i]))
            for i in range(batch_size)]


def _score(log_prob: float, length: int, length_penalty: float) -> float:
    return log_prob / (max(length, 1) ** length_penalty) if length_penalty else log_prob


@torch.no_grad()
def beam_search(model: StepModel, state: State, batch_size: int, start_id: int, end_id: int,
                beam_size: int = 7, n_best: int = 1, max_len: int = 20, min_len: int = 1,
                length_penalty: float = 0.0, banned: Sequence[int] = ()) -> list[list[Hypothesis]]:
    """Beam search over a batch of images; returns the ``n_best`` hypotheses of each image.

    Every step expands each live beam by every word and keeps the ``2·beam_size`` best
    continuations: those ending in ``<end>`` among the top ``beam_size`` become finished
    hypotheses, the best ``beam_size`` others stay live. Scores are summed
    log-probabilities, divided by ``length**length_penalty`` when ``length_penalty`` > 0
    (length counts the ``<end>`` token). ``banned`` word ids are never chosen. Beams still live at ``max_len`` are returned as
    incomplete hypotheses, ranked after every complete one. An image stops early once no
    live beam can beat its ``n_best`` finished ones (log-probs only fall; with length
    normalisation the bound divides by ``max_len**length_penalty``).
    """
    if beam_size < 1 or n_best < 1 or n_best > beam_size:
        raise ValueError("need 1 <= n_best <= beam_size")
    K = beam_size
    # Every image starts with K copies of its state; only the first copy is live, so the
    # first step does not pick the same word K times.
    state = select_state(state, torch.arange(batch_size).repeat_interleave(K))
    tokens = torch.full((batch_size * K,), start_id, dtype=torch.long)
    beam_lp = torch.full((batch_size, K), -math.inf)
    beam_lp[:, 0] = 0.0
    history = torch.zeros((batch_size, K, 0), dtype=torch.long)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch_size)]
    done = [False] * batch_size

    for t in range(max_len):
        log_probs, state = model.step(tokens, state)
        log_probs = _mask(log_probs.float(), t, min_len, end_id, banned)
        V = log_probs.size(1)
        total = (beam_lp[:, :, None] + log_probs.view(batch_size, K, V)).view(batch_size, K * V)
        cand_lp, cand = total.topk(min(2 * K, K * V), dim=1)
        cand_beam, cand_tok = cand // V, cand % V

        new_lp = torch.full((batch_size, K), -math.inf)
        new_beam = torch.zeros((batch_size, K), dtype=torch.long)
        new_tok = torch.full((batch_size, K), end_id, dtype=torch.long)
        for b in range(batch_size):
            if done[b]:
                continue
            live = 0
            for rank in range(cand.size(1)):
                lp = float(cand_lp[b, rank])
                if lp == -math.inf or live == K:
                    break
                beam, tok = int(cand_beam[b, rank]), int(cand_tok[b, rank])
                if tok == end_id:
                    if rank < K:
                        words = history[b, beam].tolist()
                        finished[b].append(Hypothesis(words, lp, _score(lp, t + 1, length_penalty), True))
                else:
                    new_lp[b, live], new_beam[b, live], new_tok[b, live] = lp, beam, tok
                    live += 1
            best = sorted(finished[b], key=lambda h: -h.score)
            # The best score any live beam can still reach: its log-prob only falls, and a
            # length-normalised score is highest at the longest length, max_len.
            reachable = float(new_lp[b, 0]) / (max_len ** length_penalty if length_penalty else 1.0)
            if live == 0 or (len(best) >= n_best and reachable <= best[n_best - 1].score):
                done[b] = True
                new_lp[b] = -math.inf
        if all(done):
            break
        flat = (torch.arange(batch_size)[:, None] * K + new_beam).view(-1)
        history = torch.cat([history.view(batch_size * K, -1)[flat].view(batch_size, K, -1),
                             new_tok[:, :, None]], dim=2)
        beam_lp = new_lp
        tokens = new_tok.view(-1)
        state = select_state(state, flat)

    results = []
    for b in range(batch_size):
        hyps = list(finished[b])
        if not done[b]:  # reached max_len: the live beams become incomplete hypotheses
            for k in range(K):
                lp = float(beam_lp[b, k])
                if lp > -math.inf:
                    words = history[b, k].tolist()
                    hyps.append(Hypothesis(words, lp, _score(lp, len(words), length_penalty), False))
        hyps.sort(key=lambda h: (not h.complete, -h.score))
        results.append(hyps[:n_best])
    return results
