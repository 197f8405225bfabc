"""The alignment model: eq. 8 and eq. 7 against loops, and padding that changes nothing."""

import pytest

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

from scenetalk.models.alignment import AlignmentConfig, AlignmentModel


def model(score="max"):
    torch.manual_seed(0)
    return AlignmentModel(AlignmentConfig(vocab_size=20, region_dim=6, embed_dim=5, word_dim=4, hidden_dim=7,
                                          dropout=0.0, score=score)).eval()


@pytest.mark.parametrize("score", ["max", "fragment"])
@torch.no_grad()
def test_scores_match_the_equations_written_as_loops(score):
    m = model(score)
    regions = torch.randn(3, 4, 6)
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    S = m(regions, ids)
    v = m.embed_regions(regions)
    s, mask = m.embed_words(ids)
    for k in range(3):
        for l in range(2):
            want = 0.0
            for t in range(int(mask[l].sum())):
                dots = [float(v[k, i] @ s[l, t]) for i in range(4)]
                want += max(dots) if score == "max" else sum(max(0.0, d) for d in dots)  # eq. 8 / eq. 7
            assert float(S[k, l]) == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_padding_does_not_change_a_sentence():
    m = model()
    short = m.embed_words(torch.tensor([[5, 6, 7]]))[0]
    padded = m.embed_words(torch.tensor([[5, 6, 7, 0, 0, 0]]))[0]
    assert torch.allclose(short, padded[:, :3], atol=1e-6)
    assert torch.all(padded[:, 3:] == 0)


def test_words_see_both_directions():
    m = model()
    a = m.embed_words(torch.tensor([[5, 6, 7]]))[0]
    b = m.embed_words(torch.tensor([[5, 6, 8]]))[0]
    c = m.embed_words(torch.tensor([[9, 6, 7]]))[0]
    assert not torch.allclose(a[0, 0], b[0, 0])  # the last word reaches the first (backward RNN)
    assert not torch.allclose(a[0, 2], c[0, 2])  # and the first reaches the last (forward RNN)


@pytest.mark.parametrize("score", ["max", "fragment"])
def test_all_pairs_scoring_equals_the_batched_equation(score):
    from scenetalk.models.alignment import all_pairs_scores, image_sentence_scores

    torch.manual_seed(2)
    v = torch.randn(7, 4, 5)
    lengths = torch.tensor([3, 1, 6, 2, 4])
    mask = torch.arange(6)[None, :] < lengths[:, None]
    s = torch.randn(5, 6, 5).relu() * mask[..., None]
    want = image_sentence_scores(v, s, mask, score)
    got = all_pairs_scores(v, s, mask, score, words_per_chunk=4)  # chunks that split sentences
    assert torch.allclose(got, want, atol=1e-5)
