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


def _continue_beams(cand_lp: torch.Tensor, cand: torch.Tensor, V: int, K: int, end_id: int, step: int,
                    length_penalty: float, words_of, finished: list[Hypothesis]) -> list[tuple[float, int, int]]:
    """One image's continuations, best first (log-probs ``cand_lp`` of flat indices ``cand`` =
    beam·V + word) -> its next ``K`` live beams as (log-prob, beam, word). A continuation by
    ``<end>`` among the first ``K`` becomes a finished hypothesis (``words_of(beam)``: its words)."""
    live: list[tuple[float, int, int]] = []
    for rank in range(len(cand)):
        lp = float(cand_lp[rank])
        if lp == -math.inf or len(live) == K:
            break
        beam, tok = divmod(int(cand[rank]), V)
        if tok == end_id:
            if rank < K:
                finished.append(Hypothesis(words_of(beam), lp, _score(lp, step + 1, length_penalty), True))
        else:
            live.append((lp, beam, tok))
    return live


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

        new_lp = torch.full((batch_size, K), -math.inf)
        new_beam = torch.zeros((batch_size, K), dtype=torch.long)
        new_tok = torch.full((batch_size, K), end_id, dtype=torch.long)
        for b in range(batch_size):
            if done[b]:
                continue
            live = _continue_beams(cand_lp[b], cand[b], V, K, end_id, t, length_penalty,
                                   lambda beam: history[b, beam].tolist(), finished[b])
            for i, (lp, beam, tok) in enumerate(live):
                new_lp[b, i], new_beam[b, i], new_tok[b, i] = lp, beam, tok
            best = sorted(finished[b], key=lambda h: -h.score)
            # The best score any live beam can still reach: its log-prob only falls, and a
            # length-normalised score is highest at the longest length, max_len.
            reachable = float(new_lp[b, 0]) / (max_len ** length_penalty if length_penalty else 1.0)
            if not live or (len(best) >= n_best and reachable <= best[n_best - 1].score):
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


@torch.no_grad()
def constrained_beam_search(model: StepModel, state: State, batch_size: int, start_id: int, end_id: int,
                            required: Sequence[Sequence[int]], beam_size: int = 7, n_best: int = 1,
                            max_len: int = 20, min_len: int = 1, length_penalty: float = 0.0,
                            banned: Sequence[int] = (), forbidden: Sequence[Sequence[int]] | None = None
                            ) -> list[list[Hypothesis]]:
    """Beam search whose captions must say one of ``required[b]``'s words (Anderson et al.
    2017, "Guided Open Vocabulary Image Captioning with Constrained Beam Search", with one
    disjunctive constraint per image: a two-state automaton, *not yet said* → *said*).

    Each image keeps ``beam_size`` beams per automaton state, so the beams that have said the
    word do not have to beat the unconstrained ones to survive. Every step, a beam in state
    *not yet said* moves to *said* by a required word and stays by any other word; only beams
    in *said* may end. An image with no required word starts in *said*, and its search is
    exactly ``beam_search``'s. Scores and the stopping rule are ``beam_search``'s. Beams live
    at ``max_len`` come back after every complete one, those that never said the word last.
    ``banned`` ids are never chosen; ``forbidden[b]`` ids are never chosen for image ``b``."""
    if beam_size < 1 or n_best < 1 or n_best > beam_size:
        raise ValueError("need 1 <= n_best <= beam_size")
    if len(required) != batch_size:
        raise ValueError("need one list of required word ids per image")
    K, B = beam_size, batch_size
    state = select_state(state, torch.arange(B).repeat_interleave(2 * K))   # slots: K per state
    tokens = torch.full((B * 2 * K,), start_id, dtype=torch.long)
    beam_lp = torch.full((B, 2, K), -math.inf)
    history = torch.zeros((B, 2, K, 0), dtype=torch.long)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    done = [False] * B
    wanted = blocked = None
    for b, ids in enumerate(required):
        beam_lp[b, 0 if ids else 1, 0] = 0.0          # no required word: start in "said"

    for t in range(max_len):
        log_probs, state = model.step(tokens, state)
        log_probs = _mask(log_probs.float(), t, min_len, end_id, banned)
        V = log_probs.size(1)
        if wanted is None:
            wanted = torch.zeros((B, 1, V), dtype=torch.bool)
            blocked = torch.zeros((B, 1, 1, V), dtype=torch.bool)
            for b, ids in enumerate(required):
                wanted[b, 0, list(ids)] = True
                blocked[b, 0, 0, list(forbidden[b] if forbidden else ())] = True
        total = (beam_lp[..., None] + log_probs.view(B, 2, K, V)).masked_fill(blocked, -math.inf)
        stay = total[:, 0].masked_fill(wanted, -math.inf)
        stay[..., end_id] = -math.inf                               # only a beam that said the word ends
        said = torch.cat([total[:, 0].masked_fill(~wanted, -math.inf), total[:, 1]], dim=1)   # (B, 2K, V)

        new_lp = torch.full((B, 2, K), -math.inf)
        new_slot = torch.zeros((B, 2, K), dtype=torch.long)
        new_tok = torch.full((B, 2, K), end_id, dtype=torch.long)
        for target, cands in ((0, stay.reshape(B, -1)), (1, said.reshape(B, -1))):
            cand_lp, cand = cands.topk(min(2 * K, cands.size(1)), dim=1)
            for b in range(B):
                if done[b]:
                    continue
                # a slot below K is a beam of "not yet said", from K on one of "said"
                live = _continue_beams(cand_lp[b], cand[b], V, K, end_id, t, length_penalty,
                                       lambda slot: history[b, slot // K, slot % K].tolist(), finished[b])
                for i, (lp, slot, tok) in enumerate(live):
                    new_lp[b, target, i], new_slot[b, target, i], new_tok[b, target, i] = lp, slot, tok
        for b in range(B):
            if done[b]:
                continue
            best = sorted(finished[b], key=lambda h: -h.score)
            reachable = float(new_lp[b].max()) / (max_len ** length_penalty if length_penalty else 1.0)
            if reachable == -math.inf or (len(best) >= n_best and reachable <= best[n_best - 1].score):
                done[b] = True
                new_lp[b] = -math.inf
        if all(done):
            break
        flat = (torch.arange(B)[:, None, None] * 2 * K + new_slot).view(-1)
        history = torch.cat([history.view(B * 2 * K, -1)[flat].view(B, 2, K, -1), new_tok[..., None]], dim=3)
        beam_lp = new_lp
        tokens = new_tok.view(-1)
        state = select_state(state, flat)

    results = []
    for b in range(B):
        hyps = [(True, h) for h in finished[b]]
        if not done[b]:  # reached max_len: live beams become incomplete hypotheses
            for s in (1, 0):
                for k in range(K):
                    lp = float(beam_lp[b, s, k])
                    if lp > -math.inf:
                        words = history[b, s, k].tolist()
                        hyps.append((s == 1, Hypothesis(words, lp, _score(lp, len(words), length_penalty), False)))
        hyps.sort(key=lambda sh: (not sh[0], not sh[1].complete, -sh[1].score))
        results.append([h for _, h in hyps[:n_best]])
    return results
