"""Decoding tested exactly against tiny fake models with hand-written next-word tables
(as im2txt does), and beam search against exhaustive enumeration."""

import itertools
import math

import numpy as np
import pytest

from scenetalk.captioning.decoding import beam_search, constrained_beam_search, greedy, sample

PAD, START, END, A, B, C = range(6)


class TableModel:
    """Next-word distribution depends only on (image, previous word). The state is the image
    index of each row, so a wrong reordering of the state changes the result."""

    def __init__(self, tables):
        # tables: (images, V, V) probabilities; row = previous word
        with np.errstate(divide="ignore"):
            self.log_table = np.log(np.asarray(tables, dtype=np.float32))

    def init_state(self, n):
        return {"image": np.arange(n) % self.log_table.shape[0]}

    def step(self, tokens, state):
        return self.log_table[state["image"], tokens], state


def table(rows):
    """rows: {previous word: {next word: p}} -> dense (V, V) table."""
    t = [[0.0] * 6 for _ in range(6)]
    for prev, nxt in rows.items():
        for w, p in nxt.items():
            t[prev][w] = p
    return t


WITH_END = table({
    START: {A: 0.5, B: 0.3, C: 0.2},
    A: {END: 0.4, B: 0.5, C: 0.1},
    B: {END: 0.6, A: 0.2, C: 0.2},
    C: {END: 0.9, A: 0.1},
})
NEVER_END = table({
    START: {A: 0.5, B: 0.3, C: 0.2},
    A: {A: 0.1, B: 0.6, C: 0.3},
    B: {A: 0.7, B: 0.2, C: 0.1},
    C: {A: 0.4, B: 0.4, C: 0.2},
})


def run_beam(tables, **kw):
    m = TableModel(tables)
    return beam_search(m, m.init_state(len(tables)), len(tables), START, END, **kw)


def test_beam_finds_better_sentence_than_greedy():
    # greedy: A (.5), then B (.5), then <end> (.6) = .15; beam 2 also finds "A <end>" = .2
    m = TableModel([WITH_END])
    g = greedy(m, m.init_state(1), 1, START, END)[0]
    assert g.tokens == [A, B] and g.complete
    assert g.log_prob == pytest.approx(math.log(0.5 * 0.5 * 0.6))
    hyps = run_beam([WITH_END], beam_size=2, n_best=2)[0]
    assert [h.tokens for h in hyps] == [[A], [A, B]]
    assert [h.log_prob for h in hyps] == pytest.approx([math.log(0.2), math.log(0.15)])
    assert all(h.complete for h in hyps)


def test_beam_one_equals_greedy():
    hyps = run_beam([WITH_END], beam_size=1)[0]
    assert hyps[0].tokens == [A, B]


def test_beams_that_never_end_return_incomplete_hypotheses():
    hyps = run_beam([NEVER_END], beam_size=2, n_best=2, max_len=2)[0]
    assert [h.tokens for h in hyps] == [[A, B], [B, A]]
    assert [h.log_prob for h in hyps] == pytest.approx([math.log(0.30), math.log(0.21)])
    assert not any(h.complete for h in hyps)
    g = greedy(TableModel([NEVER_END]), {"image": np.arange(1)}, 1, START, END, max_len=3)[0]
    assert g.tokens == [A, B, A] and not g.complete


def test_complete_hypotheses_rank_before_incomplete_ones():
    # "A B" never ends in time but is more probable than the only complete sentence "C <end>"
    t = table({START: {A: 0.8, C: 0.2}, A: {B: 1.0}, B: {B: 1.0}, C: {END: 1.0}})
    hyps = run_beam([t], beam_size=2, n_best=2, max_len=2)[0]
    assert [h.tokens for h in hyps] == [[C], [A, B]]
    assert [h.complete for h in hyps] == [True, False]


def test_batch_rows_keep_their_own_image():
    out = run_beam([WITH_END, NEVER_END, WITH_END], beam_size=2, max_len=2)
    assert out[0][0].tokens == [A] and out[2][0].tokens == [A]
    assert out[1][0].tokens == [A, B] and not out[1][0].complete


def test_min_len_blocks_early_end():
    hyps = run_beam([WITH_END], beam_size=2, min_len=2)[0]
    assert len(hyps[0].tokens) >= 2
    g = greedy(TableModel([WITH_END]), {"image": np.arange(1)}, 1, START, END, min_len=3)[0]
    assert len(g.tokens) >= 3


def test_length_penalty_prefers_longer_sentences():
    # "A <end>": log .2 / 2 = -0.80; "A B <end>": log .15 / 3 = -0.63
    hyps = run_beam([WITH_END], beam_size=2, length_penalty=1.0)[0]
    assert hyps[0].tokens == [A, B]
    assert hyps[0].score == pytest.approx(math.log(0.15) / 3)


def random_table(seed):
    """A random next-word table, peaked (cubed uniform) so that beams differ."""
    probs = np.random.default_rng(seed).random((6, 6)) ** 3
    probs[:, [PAD, START]] = 0
    return (probs / probs.sum(1, keepdims=True)).tolist()


def exhaustive(t, max_len, n):
    """All complete sentences of 1..max_len-1 words (min_len=1) then <end>, best first."""
    with np.errstate(divide="ignore"):
        lt = np.log(np.asarray(t, dtype=np.float32))
    found = []
    for length in range(1, max_len):
        for words in itertools.product([A, B, C], repeat=length):
            seq = [START, *words, END]
            lp = sum(float(lt[p, q]) for p, q in zip(seq, seq[1:]))
            if lp > -math.inf:
                found.append((lp, list(words)))
    found.sort(key=lambda x: -x[0])
    return found[:n]


@pytest.mark.parametrize("seed", range(5))
def test_wide_beam_is_exact_on_random_tables(seed):
    t = random_table(seed)
    ref = exhaustive(t, max_len=4, n=3)
    hyps = run_beam([t], beam_size=27, n_best=3, max_len=4)[0]
    assert [h.tokens for h in hyps] == [w for _, w in ref]
    assert [h.log_prob for h in hyps] == pytest.approx([lp for lp, _ in ref], abs=1e-5)


def test_sampling_top1_is_greedy_and_seeded_sampling_repeats():
    m = TableModel([WITH_END])
    s = sample(m, m.init_state(1), 1, START, END, top_k=1)[0]
    assert s.tokens == [A, B]
    draws1 = sample(m, m.init_state(64), 64, START, END, generator=np.random.default_rng(0))
    draws2 = sample(m, m.init_state(64), 64, START, END, generator=np.random.default_rng(0))
    assert [d.tokens for d in draws1] == [d.tokens for d in draws2]


def test_sampling_follows_the_distribution():
    m = TableModel([WITH_END])
    n = 4000
    draws = sample(m, m.init_state(n), n, START, END, generator=np.random.default_rng(1))
    first = np.array([d.tokens[0] for d in draws])
    freq = [float((first == w).mean()) for w in (A, B, C)]
    assert freq == pytest.approx([0.5, 0.3, 0.2], abs=0.03)
    # top_k=2 never draws the third most probable first word; the log-prob stays the model's
    draws = sample(m, m.init_state(500), 500, START, END, top_k=2, generator=np.random.default_rng(2))
    assert all(d.tokens[0] in (A, B) for d in draws)
    d = next(d for d in draws if d.tokens == [A])
    assert d.log_prob == pytest.approx(math.log(0.2))


def test_bad_arguments():
    with pytest.raises(ValueError):
        run_beam([WITH_END], beam_size=2, n_best=3)
    m = TableModel([WITH_END])
    with pytest.raises(ValueError):
        sample(m, m.init_state(1), 1, START, END, temperature=0)


def test_banned_words_are_never_chosen():
    # banning A: greedy takes B (.3) then <end> (.6); beam search finds the same best sentence
    m = TableModel([WITH_END])
    [g] = greedy(m, m.init_state(1), 1, START, END, banned=(A,))
    assert g.tokens == [B] and g.log_prob == pytest.approx(math.log(0.3 * 0.6))
    [[b1, b2]] = run_beam([WITH_END], beam_size=3, n_best=2, banned=(A,))
    assert b1.tokens == [B] and A not in b2.tokens
    for seed in range(5):
        [s] = sample(m, m.init_state(1), 1, START, END, banned=(A,), generator=np.random.default_rng(seed))
        assert A not in s.tokens


@pytest.mark.parametrize("seed", range(5))
def test_wide_beam_with_length_penalty_is_exact_on_random_tables(seed):
    # the early stop with length normalisation (bound: log-prob / max_len**alpha) loses nothing
    t = random_table(seed)
    alpha = 0.7
    every = exhaustive(t, max_len=4, n=10_000)
    ref = sorted(every, key=lambda x: -x[0] / (len(x[1]) + 1) ** alpha)[:3]
    hyps = run_beam([t], beam_size=27, n_best=3, max_len=4, length_penalty=alpha)[0]
    assert [h.tokens for h in hyps] == [w for _, w in ref]


def run_constrained(tables, required, **kw):
    m = TableModel(tables)
    return constrained_beam_search(m, m.init_state(len(tables)), len(tables), START, END, required, **kw)


@pytest.mark.parametrize("seed", range(5))
def test_wide_constrained_beam_is_exact_on_random_tables(seed):
    # the best sentences that say C (or, second case, A or C), against exhaustive enumeration
    t = random_table(seed)
    every = exhaustive(t, max_len=4, n=10_000)
    for required in ([C], [A, C]):
        ref = [(lp, w) for lp, w in every if set(w) & set(required)][:3]
        hyps = run_constrained([t], [required], beam_size=27, n_best=3, max_len=4)[0]
        assert [h.tokens for h in hyps] == [w for _, w in ref]
        assert [h.log_prob for h in hyps] == pytest.approx([lp for lp, _ in ref], abs=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_constrained_beam_with_length_penalty_is_exact(seed):
    t = random_table(seed)
    alpha = 0.7
    every = [(lp, w) for lp, w in exhaustive(t, max_len=4, n=10_000) if B in w]
    ref = sorted(every, key=lambda x: -x[0] / (len(x[1]) + 1) ** alpha)[:3]
    hyps = run_constrained([t], [[B]], beam_size=27, n_best=3, max_len=4, length_penalty=alpha)[0]
    assert [h.tokens for h in hyps] == [w for _, w in ref]


def test_without_a_required_word_it_is_beam_search():
    tables = [random_table(s) for s in range(3)]
    for kw in ({"beam_size": 3, "n_best": 2, "max_len": 5}, {"beam_size": 2, "max_len": 3, "length_penalty": 0.5}):
        plain = run_beam(tables, **kw)
        same = run_constrained(tables, [[], [], []], **kw)
        # the same hypotheses; of sentences with equal log-probability either may be kept
        def key(hs):
            return [(round(h.log_prob, 5), h.complete) for h in hs]
        assert [key(hs) for hs in same] == [key(hs) for hs in plain]
        assert [hs[0].tokens for hs in same] == [hs[0].tokens for hs in plain]


def test_constraint_is_kept_even_when_the_word_is_unlikely():
    # greedy and beam never say C after START (p 0.2, and C ends at once); the constraint does,
    # for its own image only: the batch's other row is unconstrained
    hyps = run_constrained([WITH_END, WITH_END], [[C], []], beam_size=2, max_len=5)
    assert C in hyps[0][0].tokens and hyps[0][0].complete
    assert hyps[1][0].tokens == run_beam([WITH_END], beam_size=2, max_len=5)[0][0].tokens


def test_a_constraint_that_cannot_be_met_comes_back_last_and_incomplete():
    # C is banned, so no beam can say it: what comes back is incomplete, never a complete
    # sentence without the word
    [[h]] = run_constrained([WITH_END], [[C]], beam_size=2, max_len=3, banned=(C,))
    assert not h.complete and C not in h.tokens


def test_forbidden_words_are_per_image():
    # image 0 may not say A, image 1 may; the batch shares one table
    hyps = run_constrained([WITH_END, WITH_END], [[], []], beam_size=3, n_best=3, max_len=4, forbidden=[[A], []])
    assert all(A not in h.tokens for h in hyps[0])
    assert any(A in h.tokens for h in hyps[1])
