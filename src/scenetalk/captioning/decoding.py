"""Caption decoding shared by every generator: greedy, sampling and beam search.

A generator takes part through a small step interface (as in self-critical.pytorch):

    state = model.init_state(images)              # any tree of arrays, batch dim first
    log_probs, state = model.step(tokens, state)  # tokens (N,) -> log_probs (N, V)

``tokens`` is the previous word of each running sentence (``<start>`` on the first step).
Decoders reorder and repeat the state with ``take`` along axis 0, so a state may hold
anything with a batch dimension: hidden vectors, the image vector of m-RNN, an attention
model's feature grid.

Everything here is NumPy: tokens, log-probabilities and state are ``np.ndarray``s, so one
search drives a model in ONNX Runtime (``runtime``, the light install) and in PyTorch
(``models.generator.TorchSteps``) alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

State = Any  # an array, or a tuple/list/dict of states, every array with the batch dim first


class StepModel(Protocol):
    def step(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]: ...


@dataclass
class Hypothesis:
    tokens: list[int]       # generated word ids, without <start> and <end>
    log_prob: float         # sum of log-probabilities, <end> included when complete
    score: float            # log_prob, divided by length**length_penalty when asked
    complete: bool          # False when max_len was reached before <end>


def select_state(state: State, index: np.ndarray) -> State:
    """Rows ``index`` of every array in the state tree."""
    if isinstance(state, np.ndarray):
        return state.take(index, axis=0)
    if isinstance(state, dict):
        return {k: select_state(v, index) for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(select_state(v, index) for v in state)
    if state is None:
        return None
    raise TypeError(f"decoder state must be arrays in tuples/lists/dicts, got {type(state).__name__}")


def _mask(log_probs: np.ndarray, step: int, min_len: int, end_id: int, banned: Sequence[int]) -> np.ndarray:
    """Words that may not come next: ``<end>`` before ``min_len``, and ``banned`` ids (such as
    ``<unk>``) always. Their log-probabilities become -inf; the others are left unnormalised."""
    if step < min_len or banned:
        log_probs = log_probs.copy()
        if step < min_len:
            log_probs[:, end_id] = -math.inf
        if banned:
            log_probs[:, list(banned)] = -math.inf
    return log_probs


def greedy(model: StepModel, state: State, batch_size: int, start_id: int, end_id: int,
           max_len: int = 20, min_len: int = 1, banned: Sequence[int] = ()) -> list[Hypothesis]:
    """Most probable word at every step (beam search with beam 1, but cheaper)."""
    return sample(model, state, batch_size, start_id, end_id, max_len, min_len, top_k=1, banned=banned)


def sample(model: StepModel, state: State, batch_size: int, start_id: int, end_id: int,
           max_len: int = 20, min_len: int = 1, temperature: float = 1.0, top_k: int = 0,
           generator: np.random.Generator | None = None, banned: Sequence[int] = ()) -> list[Hypothesis]:
    """Draw one sentence per image from softmax(logits / temperature), optionally only
    among the ``top_k`` most probable words. ``top_k=1`` is greedy decoding. The reported
    log-probability is under the model's own distribution (temperature 1)."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    generator = generator if generator is not None else np.random.default_rng()
    tokens = np.full(batch_size, start_id, dtype=np.int64)
    out = np.zeros((batch_size, max_len), dtype=np.int64)
    total = np.zeros(batch_size)
    finished = np.zeros(batch_size, dtype=bool)
    lengths = np.full(batch_size, max_len, dtype=np.int64)
    rows = np.arange(batch_size)
    for t in range(max_len):
        log_probs, state = model.step(tokens, state)
        log_probs = _mask(np.asarray(log_probs, dtype=np.float32), t, min_len, end_id, banned)
        if finished.any():  # finished rows keep emitting <end>, whatever the model says
            log_probs = log_probs.copy()
            log_probs[finished] = -math.inf
            log_probs[finished, end_id] = 0.0
        if top_k == 1:
            tokens = log_probs.argmax(axis=1)
        else:
            logits = log_probs.astype(np.float64) / temperature
            if top_k > 0 and top_k < logits.shape[1]:
                kth = -np.partition(-logits, top_k - 1, axis=1)[:, top_k - 1:top_k]
                logits = np.where(logits < kth, -math.inf, logits)
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            cumulative = np.cumsum(probs, axis=1)
            draws = generator.random(batch_size) * cumulative[:, -1]
            tokens = np.minimum((cumulative <= draws[:, None]).sum(axis=1), logits.shape[1] - 1)
        step_lp = log_probs[rows, tokens]
        total += np.where(finished, 0.0, step_lp)
        out[:, t] = tokens
        newly = (tokens == end_id) & ~finished
        lengths[newly] = t
        finished |= newly
        if finished.all():
            break
    return [Hypothesis(out[i, : lengths[i]].tolist(), float(total[i]), float(total[i]), bool(finished[i]))
            for i in range(batch_size)]


def _score(log_prob: float, length: int, length_penalty: float) -> float:
    return log_prob / (max(length, 1) ** length_penalty) if length_penalty else log_prob


def _top(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest values of each row of ``values``, largest first, and their column
    indices; equal values come lowest index first. A partial sort: a beam step ranks K·V
    continuations to keep 2K of them."""
    k = min(k, values.shape[1])
    if k < values.shape[1]:
        index = np.argpartition(-values, k - 1, axis=1)[:, :k]
    else:
        index = np.broadcast_to(np.arange(values.shape[1]), values.shape)
    picked = np.take_along_axis(values, index, axis=1)
    order = np.lexsort((index, -picked), axis=-1)
    return np.take_along_axis(picked, order, axis=1), np.take_along_axis(index, order, axis=1)


def _continue_beams(cand_lp: np.ndarray, cand: np.ndarray, V: int, K: int, end_id: int, step: int,
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
    state = select_state(state, np.arange(batch_size).repeat(K))
    tokens = np.full(batch_size * K, start_id, dtype=np.int64)
    beam_lp = np.full((batch_size, K), -math.inf)
    beam_lp[:, 0] = 0.0
    history = np.zeros((batch_size, K, 0), dtype=np.int64)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch_size)]
    done = [False] * batch_size

    for t in range(max_len):
        log_probs, state = model.step(tokens, state)
        log_probs = _mask(np.asarray(log_probs, dtype=np.float32), t, min_len, end_id, banned)
        V = log_probs.shape[1]
        total = (beam_lp[:, :, None] + log_probs.reshape(batch_size, K, V)).reshape(batch_size, K * V)
        cand_lp, cand = _top(total, 2 * K)

        new_lp = np.full((batch_size, K), -math.inf)
        new_beam = np.zeros((batch_size, K), dtype=np.int64)
        new_tok = np.full((batch_size, K), end_id, dtype=np.int64)
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
        flat = (np.arange(batch_size)[:, None] * K + new_beam).reshape(-1)
        history = np.concatenate([history.reshape(batch_size * K, -1)[flat].reshape(batch_size, K, -1),
                                  new_tok[:, :, None]], axis=2)
        beam_lp = new_lp
        tokens = new_tok.reshape(-1)
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
    state = select_state(state, np.arange(B).repeat(2 * K))   # slots: K per state
    tokens = np.full(B * 2 * K, start_id, dtype=np.int64)
    beam_lp = np.full((B, 2, K), -math.inf)
    history = np.zeros((B, 2, K, 0), dtype=np.int64)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    done = [False] * B
    wanted = blocked = None
    for b, ids in enumerate(required):
        beam_lp[b, 0 if ids else 1, 0] = 0.0          # no required word: start in "said"

    for t in range(max_len):
        log_probs, state = model.step(tokens, state)
        log_probs = _mask(np.asarray(log_probs, dtype=np.float32), t, min_len, end_id, banned)
        V = log_probs.shape[1]
        if wanted is None:
            wanted = np.zeros((B, 1, V), dtype=bool)
            blocked = np.zeros((B, 1, 1, V), dtype=bool)
            for b, ids in enumerate(required):
                wanted[b, 0, list(ids)] = True
                blocked[b, 0, 0, list(forbidden[b] if forbidden else ())] = True
        total = np.where(blocked, -math.inf, beam_lp[..., None] + log_probs.reshape(B, 2, K, V))
        stay = np.where(wanted, -math.inf, total[:, 0])
        stay[..., end_id] = -math.inf                               # only a beam that said the word ends
        said = np.concatenate([np.where(wanted, total[:, 0], -math.inf), total[:, 1]], axis=1)   # (B, 2K, V)

        new_lp = np.full((B, 2, K), -math.inf)
        new_slot = np.zeros((B, 2, K), dtype=np.int64)
        new_tok = np.full((B, 2, K), end_id, dtype=np.int64)
        for target, cands in ((0, stay.reshape(B, -1)), (1, said.reshape(B, -1))):
            cand_lp, cand = _top(cands, 2 * K)
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
        flat = (np.arange(B)[:, None, None] * 2 * K + new_slot).reshape(-1)
        history = np.concatenate([history.reshape(B * 2 * K, -1)[flat].reshape(B, 2, K, -1), new_tok[..., None]],
                                 axis=3)
        beam_lp = new_lp
        tokens = new_tok.reshape(-1)
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
