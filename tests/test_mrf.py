"""The chain MRF of Karpathy & Fei-Fei eq. 10-12, against brute-force enumeration."""

import itertools

import numpy as np
import pytest

from scenetalk.models.mrf import chain_alignment, segments


def brute_force(unary: np.ndarray, beta: float) -> tuple[tuple[int, ...], float]:
    n, m = unary.shape
    best, best_a = float("-inf"), None
    for a in itertools.product(range(m), repeat=n):
        total = sum(float(unary[j, a[j]]) for j in range(n)) + beta * sum(a[j] == a[j + 1] for j in range(n - 1))
        if total > best:
            best, best_a = total, a
    return best_a, best


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0, 2.5, 50.0])
def test_viterbi_equals_brute_force(beta):
    rng = np.random.default_rng(int(beta * 10))
    for _ in range(40):
        n, m = int(rng.integers(1, 6)), int(rng.integers(1, 5))
        unary = rng.standard_normal((n, m))
        want_a, want = brute_force(unary, beta)
        got_a, got = chain_alignment(unary[None], beta)
        assert got_a.dtype == np.int64 and got.dtype == np.float64
        assert float(got[0]) == pytest.approx(want, abs=1e-5)
        assert tuple(got_a[0].tolist()) == want_a


def test_tiny_case_by_hand():
    # Two words, two regions: alone, word 0 wants region 0 (1.0 vs 0.0) and word 1 region 1
    # (0.4 vs 0.6, by 0.2). A bonus β > 0.2 moves word 1 onto region 0 with word 0.
    unary = np.array([[[1.0, 0.0], [0.4, 0.6]]], dtype=np.float32)
    a, total = chain_alignment(unary, 0.1)
    assert a.tolist() == [[0, 1]] and total.dtype == np.float32 and float(total[0]) == pytest.approx(1.6)
    a, total = chain_alignment(unary, 0.5)
    assert a.tolist() == [[0, 0]] and float(total[0]) == pytest.approx(1.9)


def test_padded_batch_equals_each_sentence_alone():
    rng = np.random.default_rng(1)
    lengths = [5, 2, 1, 4]
    unary = rng.standard_normal((4, 5, 3)).astype(np.float32)
    mask = np.arange(5)[None] < np.array(lengths)[:, None]
    got_a, got = chain_alignment(unary, 0.7, mask)
    for b, n in enumerate(lengths):
        want_a, want = brute_force(unary[b, :n], 0.7)
        assert float(got[b]) == pytest.approx(want, abs=1e-5)
        assert tuple(got_a[b, :n].tolist()) == want_a
        assert (got_a[b, n:] == -1).all()


def test_beta_limits():
    rng = np.random.default_rng(2)
    unary = rng.standard_normal((3, 7, 6)).astype(np.float32)
    a0, _ = chain_alignment(unary, 0.0)
    assert np.array_equal(a0, unary.argmax(axis=2))                        # β = 0: each word's best region
    big, _ = chain_alignment(unary, 1e4)
    assert np.array_equal(big, np.broadcast_to(unary.sum(axis=1).argmax(axis=1)[:, None], (3, 7)))  # one region
    with pytest.raises(ValueError):
        chain_alignment(unary, -1.0)


def test_same_as_the_pytorch_implementation():
    """The NumPy Viterbi gives the assignments and totals of the PyTorch one it replaced,
    bit for bit, on float32 scores with padding and ties."""
    torch = pytest.importorskip("torch")

    def torch_chain_alignment(unary, beta, mask):
        b, n, m = unary.shape
        rows = torch.arange(b)
        best = unary[:, 0].clone()
        came_from = torch.zeros(b, n, m, dtype=torch.long)
        for j in range(1, n):
            prev_value, prev_region = best.max(dim=1)
            stay = best + beta
            stays = stay >= prev_value[:, None]
            came_from[:, j] = torch.where(stays, torch.arange(m).expand(b, m), prev_region[:, None].expand(b, m))
            step = unary[:, j] + torch.where(stays, stay, prev_value[:, None])
            best = torch.where(mask[:, j, None], step, best)
        total, last = best.max(dim=1)
        lengths = mask.sum(dim=1)
        assignment = torch.full((b, n), -1, dtype=torch.long)
        region = last
        for j in range(n - 1, -1, -1):
            real = j < lengths
            assignment[:, j] = torch.where(real, region, assignment[:, j])
            region = torch.where(real & (j > 0), came_from[rows, j, region.clamp(min=0)], region)
        return assignment, total

    rng = np.random.default_rng(3)
    unary = rng.standard_normal((64, 12, 20)).astype(np.float32)
    unary[:8] = np.round(unary[:8])                                         # many ties
    mask = np.arange(12)[None] < rng.integers(1, 13, size=64)[:, None]
    for beta in (0.0, 0.2, 0.75, 3.0):
        want_a, want = torch_chain_alignment(torch.from_numpy(unary), beta, torch.from_numpy(mask))
        got_a, got = chain_alignment(unary, beta, mask)
        assert np.array_equal(got_a, want_a.numpy()) and np.array_equal(got, want.numpy())
        # A CPU tensor is read as an array.
        again, _ = chain_alignment(torch.from_numpy(unary), beta, torch.from_numpy(mask))
        assert np.array_equal(again, got_a)


def test_segments_are_contiguous_runs_with_summed_scores():
    unary = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.5, 0.0]], dtype=np.float32)
    segs = segments(np.array([0, 0, 1, 0, -1]), unary)
    assert [(s.region, s.start, s.end, s.score) for s in segs] == [(0, 0, 2, 3.0), (1, 2, 3, 3.0), (0, 3, 4, 0.5)]
