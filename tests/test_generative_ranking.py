"""m-RNN-style retrieval: sentence log-likelihoods against stepping the model word by word."""

import math

import pytest

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

from scenetalk.models.mrnn import MRNN, MRNNConfig
from scenetalk.models.multimodal_rnn import MultimodalRNN, MultimodalRNNConfig
from scenetalk.retrieval.generative_ranking import generative_scores, log_prior, sentence_log_likelihoods

GENERATORS = {  # the m-RNN takes the once-per-sentence path, the Multimodal RNN the full one
    "mrnn": lambda: MRNN(MRNNConfig(20, image_dim=6, embed1_dim=4, embed2_dim=8, multimodal_dim=8)),
    "mrnn-lstm": lambda: MRNN(MRNNConfig(20, image_dim=6, embed1_dim=4, embed2_dim=8, multimodal_dim=8,
                                         recurrent="lstm", recurrent_dim=6)),
    "multimodal-rnn": lambda: MultimodalRNN(MultimodalRNNConfig(20, image_dim=6, word_dim=5, hidden_dim=7)),
}


@pytest.mark.parametrize("kind", GENERATORS)
@torch.no_grad()
def test_log_likelihoods_equal_stepping_through_each_sentence(kind):
    torch.manual_seed(0)
    model = GENERATORS[kind]().eval()
    images = torch.randn(3, 6)
    ids = torch.tensor([[1, 5, 6, 2, 0, 0], [1, 7, 2, 0, 0, 0], [1, 8, 9, 10, 11, 2]])  # <start> .. <end> <pad>
    got = sentence_log_likelihoods(model, images, ids, sentences_per_pass=2, precision="fp32")
    for k in range(3):
        for l in range(3):
            state, total, t = model.init_state(images[k:k + 1]), 0.0, 0
            while ids[l, t + 1] != 0:
                log_probs, state = model.step(ids[l, t:t + 1], state)
                total += float(log_probs[0, ids[l, t + 1]])
                t += 1
                if t + 1 == ids.size(1):
                    break
            assert float(got[k, l]) == pytest.approx(total, abs=1e-4)
    bf16 = sentence_log_likelihoods(model, images, ids, precision="bf16")
    assert torch.allclose(bf16, got, rtol=0.05, atol=0.1)


def test_prior_normalisation():
    lik = torch.log(torch.tensor([[0.1, 0.5], [0.3, 0.5]]))
    prior = log_prior(lik)
    assert prior.tolist() == pytest.approx([math.log(0.2), math.log(0.5)])
    to_text, to_image = generative_scores(lik, prior, torch.tensor([2, 1]))
    assert to_text[0].tolist() == pytest.approx([math.log(0.5) / 2, 0.0])
    assert torch.equal(to_image, lik)


@pytest.mark.parametrize("kind", ["mrnn", "mrnn-lstm"])
def test_pair_log_likelihoods_are_the_all_pairs_ones_at_those_pairs(kind):
    from scenetalk.retrieval.generative_ranking import pair_log_likelihoods

    torch.manual_seed(1)
    model = GENERATORS[kind]().eval()
    images = torch.randn(4, 6)
    ids = torch.tensor([[1, 5, 6, 2, 0, 0], [1, 7, 2, 0, 0, 0], [1, 8, 9, 10, 11, 2], [1, 3, 2, 0, 0, 0]])
    full = sentence_log_likelihoods(model, images, ids, precision="fp32")
    pairs = torch.tensor([[3, 0], [0, 2], [0, 1], [2, 2], [3, 3]])  # image 1 has none; any order
    got = pair_log_likelihoods(model, images, ids, pairs, precision="fp32")
    assert torch.allclose(got, full[pairs[:, 0], pairs[:, 1]], atol=1e-5)


def test_prior_images_are_a_seeded_sample_of_the_training_split_only():
    from types import SimpleNamespace

    from scenetalk.retrieval.generative_ranking import prior_image_rows

    images = {s: [SimpleNamespace(relpath=f"{s}{i}.jpg") for i in range(50)] for s in ("train", "test")}
    dataset = SimpleNamespace(split=images.__getitem__)
    row_index = {im.relpath: r for r, im in enumerate(images["train"] + images["test"])}
    rows = prior_image_rows(dataset, row_index, count=10)
    assert len(set(rows.tolist())) == 10 and int(rows.max()) < 50  # training rows only
    assert torch.equal(rows, prior_image_rows(dataset, row_index, count=10))
    assert not torch.equal(rows, prior_image_rows(dataset, row_index, count=10, seed=1))


def test_rank_split_scores_every_image_of_the_split_against_every_sentence_of_it():
    from test_training import synthetic

    from scenetalk.data.text import Vocabulary
    from scenetalk.retrieval.generative_ranking import prior_image_rows, rank_split

    data, feats, rows = synthetic(n_per_split=(12, 4))  # 4 val images, 3 sentences each
    vocab = Vocabulary.build([s.tokens for s in data.sentences("train")], min_count=1)
    torch.manual_seed(0)
    model = MRNN(MRNNConfig(len(vocab), image_dim=8, embed1_dim=4, embed2_dim=8, multimodal_dim=8)).eval()
    ranking = rank_split(model, vocab, data, "val", feats, rows, prior_count=5)
    assert ranking.to_text.shape == ranking.to_image.shape == (4, 12) and ranking.prior_images == 5
    assert ranking.sentence_image.tolist() == [k for k in range(4) for _ in range(3)]
    # text -> image scores are log P(s | I) of each sentence under each val image
    val = data.split("val")
    ids = torch.from_numpy(vocab.encode_batch([s.tokens for im in val for s in im.sentences])[0])
    lik = sentence_log_likelihoods(model, feats[[rows[im.relpath] for im in val]], ids, vocab.pad_id)
    assert torch.allclose(ranking.to_image, lik, atol=1e-4)
    # image -> text: against the prior of the 5 seeded training images, per word (<end> included)
    prior = log_prior(sentence_log_likelihoods(model, feats[prior_image_rows(data, rows, count=5)], ids,
                                               vocab.pad_id))
    expected, _ = generative_scores(lik, prior, (ids[:, 1:] != vocab.pad_id).sum(1))
    assert torch.allclose(ranking.to_text, expected, atol=1e-4)


def test_the_sentence_prior_of_a_model_that_reads_a_grid_pairs_each_sentence_with_each_whole_grid():
    import numpy as np

    from scenetalk.captioning.likelihood import sentence_log_priors, step_log_likelihoods
    from scenetalk.models.generator import TorchSteps
    from scenetalk.models.updown import UpDownGrid, UpDownGridConfig

    torch.manual_seed(0)
    steps = TorchSteps(UpDownGrid(UpDownGridConfig(20, image_dim=6, feature_dim=4, word_dim=4, hidden_dim=6,
                                                   attention_dim=3)).eval())
    grids = np.random.default_rng(0).standard_normal((3, 5, 6)).astype(np.float32)  # 3 photos of 5 cells
    ids = np.array([[1, 5, 6, 2, 0], [1, 7, 2, 0, 0]])
    got = sentence_log_priors(steps, grids, ids, sentences_per_call=2)
    for l in range(2):
        each = [float(step_log_likelihoods(steps, grids[k:k + 1], ids[l:l + 1])[0]) for k in range(3)]
        assert got[l] == pytest.approx(math.log(np.mean(np.exp(each))), abs=1e-4)
