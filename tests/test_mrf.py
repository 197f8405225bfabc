"""The chain MRF of Karpathy & Fei-Fei eq. 10-12, against brute-force enumeration."""

import itertools

import pytest
import torch

from scenetalk.models.mrf import chain_alignment, segments


def brute_force(unary: torch.Tensor, beta: float) -> tuple[tuple[int, ...], float]:
    n, m = unary.shape
    best, best_a = float("-inf"), None
    for a in itertools.product(range(m), repeat=n):
        total = sum(float(unary[j, a[j]]) for j in range(n)) + beta * sum(a[j] == a[j + 1] for j in range(n - 1))
        if total > best:
            best, best_a = total, a
    return best_a, best


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0, 2.5, 50.0])
def test_viterbi_equals_brute_force(beta):
    g = torch.Generator().manual_seed(int(beta * 10))
    for _ in range(40):
        n, m = int(torch.randint(1, 6, (1,), generator=g)), int(torch.randint(1, 5, (1,), generator=g))
        unary = torch.randn(n, m, generator=g, dtype=torch.float64)
        want_a, want = brute_force(unary, beta)
        got_a, got = chain_alignment(unary[None], beta)
        assert float(got[0]) == pytest.approx(want, abs=1e-5)
        assert tuple(got_a[0].tolist()) == want_a


def test_padded_batch_equals_each_sentence_alone():
    g = torch.Generator().manual_seed(1)
    lengths = [5, 2, 1, 4]
    unary = torch.randn(4, 5, 3, generator=g)
    mask = torch.arange(5)[None] < torch.tensor(lengths)[:, None]
    got_a, got = chain_alignment(unary, 0.7, mask)
    for b, n in enumerate(lengths):
        want_a, want = brute_force(unary[b, :n], 0.7)
        assert float(got[b]) == pytest.approx(want, abs=1e-5)
        assert tuple(got_a[b, :n].tolist()) == want_a
        assert (got_a[b, n:] == -1).all()


def test_beta_limits():
    g = torch.Generator().manual_seed(2)
    unary = torch.randn(3, 7, 6, generator=g)
    a0, _ = chain_alignment(unary, 0.0)
    assert torch.equal(a0, unary.argmax(dim=2))                    # β = 0: each word's best region
    big, _ = chain_alignment(unary, 1e4)
    assert torch.equal(big, unary.sum(dim=1).argmax(dim=1)[:, None].expand(3, 7))  # one region
    with pytest.raises(ValueError):
        chain_alignment(unary, -1.0)


def test_segments_are_contiguous_runs_with_summed_scores():
    unary = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.5, 0.0]])
    segs = segments(torch.tensor([0, 0, 1, 0, -1]), unary)
    assert [(s.region, s.start, s.end, s.score) for s in segs] == [(0, 0, 2, 3.0), (1, 2, 3, 3.0), (0, 3, 4, 0.5)]
