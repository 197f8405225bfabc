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


@torch.no_grad()
def test_a_sentence_side_per_language_reads_each_sentence_with_its_own_side():
    """brnn: per_language (issue #17): a sentence goes through the side (eq. 3-6) of its words'
    language, and only that side's weights change its vectors."""
    torch.manual_seed(0)
    cfg = AlignmentConfig(vocab_size=20, region_dim=6, embed_dim=5, word_dim=4, hidden_dim=7, dropout=0.0,
                          brnn="per_language", languages=2)
    m = AlignmentModel(cfg).eval()
    assert len(m.sides) == 2 and not hasattr(m, "W_e")
    m.word_language.copy_(torch.tensor([-1] * 4 + [0] * 8 + [1] * 8))     # ids 4-11 language 0, 12-19 language 1
    ids = torch.tensor([[5, 6, 7, 0], [13, 14, 15, 16], [3, 0, 0, 0]])      # language 0, language 1, only <unk>
    assert m.sentence_languages(ids).tolist() == [0, 1, 0]
    s, mask = m.embed_words(ids)
    for row, k in ((0, 0), (1, 1), (2, 0)):
        alone = m.sides[k](m.W_w(ids[row:row + 1]), mask[row:row + 1], m.dropout)
        assert torch.allclose(s[row:row + 1], alone, atol=1e-6)
    m.sides[1].W_e.weight.add_(1.0)
    again, _ = m.embed_words(ids)
    assert torch.equal(again[0], s[0]) and not torch.allclose(again[1], s[1])
    with pytest.raises(ValueError, match="each sentence's language"):
        m.embed_word_vectors(m.W_w(ids), mask)


def test_one_language_keeps_the_weight_names_of_every_checkpoint_so_far():
    names = set(model().state_dict())
    assert {"W_e.weight", "W_f.weight", "W_b.weight", "W_d.weight"} <= names
    assert not any(n.startswith("sides.") for n in names) and "word_language" not in names
