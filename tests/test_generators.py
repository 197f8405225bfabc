"""The paper generators: shapes, the step interface, and where the image enters."""

import pytest

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

from scenetalk.models.attention_lstm import AttentionLSTM, AttentionLSTMConfig
from scenetalk.models.mrnn import MRNN, MRNNConfig, scaled_tanh
from scenetalk.models.multimodal_rnn import MultimodalRNN, MultimodalRNNConfig
from scenetalk.models.updown import UpDown, UpDownConfig

V, D = 30, 12


def models():
    torch.manual_seed(0)
    return [MultimodalRNN(MultimodalRNNConfig(V, image_dim=D, word_dim=16, hidden_dim=16)),
            MultimodalRNN(MultimodalRNNConfig(V, image_dim=D, word_dim=16, hidden_dim=16, cell="lstm")),
            MRNN(MRNNConfig(V, image_dim=D, embed1_dim=8, embed2_dim=16, multimodal_dim=16)),
            MRNN(MRNNConfig(V, image_dim=D, embed1_dim=8, embed2_dim=16, multimodal_dim=16,
                            recurrent="lstm", recurrent_dim=20)),
            AttentionLSTM(AttentionLSTMConfig(V, image_dim=D, feature_dim=8, word_dim=8, hidden_dim=16,
                                              attention_dim=8)),
            UpDown(UpDownConfig(V, image_dim=D, feature_dim=8, word_dim=8, hidden_dim=16, attention_dim=8))]


def image_for(model, batch):
    return torch.randn(batch, 9, D) if model.image_input != "global" else torch.randn(batch, D)


@pytest.mark.parametrize("model", models(), ids=["rnn", "lstm", "mrnn", "mrnn_lstm", "attention", "updown"])
def test_teacher_forcing_equals_stepping(model):
    model.eval()
    image, inputs = image_for(model, 4), torch.randint(0, V, (4, 6))
    logits = model(image, inputs)
    assert logits.shape == (4, 6, V)
    state = model.init_state(image)
    for t in range(6):
        log_probs, state = model.step(inputs[:, t], state)
        assert torch.allclose(log_probs, torch.log_softmax(logits[:, t], -1), atol=1e-5)


def test_multimodal_rnn_sees_the_image_only_at_the_first_step():
    model = models()[0].eval()
    inputs = torch.randint(0, V, (1, 5))
    state_a, state_b = model.init_state(torch.randn(1, D)), model.init_state(torch.randn(1, D))
    out_a, next_a = model.step_logits(inputs[:, 0], state_a)
    out_b, next_b = model.step_logits(inputs[:, 0], state_b)
    assert not torch.allclose(out_a, out_b)
    # after the first step the image bias is gone: same hidden state -> same output
    next_b["h"] = next_a["h"]
    assert torch.allclose(model.step_logits(inputs[:, 1], next_a)[0], model.step_logits(inputs[:, 1], next_b)[0])


def test_mrnn_sees_the_image_at_every_step():
    model = models()[2].eval()
    inputs = torch.randint(0, V, (1, 5))
    state_a, state_b = model.init_state(torch.randn(1, D)), model.init_state(torch.randn(1, D))
    state_b["r"] = torch.randn_like(state_b["r"])
    _, next_a = model.step_logits(inputs[:, 0], state_a)
    _, next_b = model.step_logits(inputs[:, 0], state_b)
    next_b["r"] = next_a["r"]  # same recurrent state, different image -> different output
    assert not torch.allclose(model.step_logits(inputs[:, 1], next_a)[0], model.step_logits(inputs[:, 1], next_b)[0])
    # the recurrent layer sees words only: r(t) does not depend on the image
    state_b["r"] = state_a["r"]
    assert torch.allclose(model.step_logits(inputs[:, 0], state_a)[1]["r"], model.step_logits(inputs[:, 0], state_b)[1]["r"])


def test_scaled_tanh():
    x = torch.tensor([0.0, 1.0, -1.0, 100.0])
    y = scaled_tanh(x)
    assert y[0] == 0 and y[1] == pytest.approx(1.0, abs=2e-3) and y[2] == pytest.approx(-1.0, abs=2e-3)
    assert y[3] == pytest.approx(1.7159, abs=1e-4)


def test_unknown_cell_is_refused():
    with pytest.raises(ValueError):
        MultimodalRNN(MultimodalRNNConfig(V, cell="gru"))


def test_attention_weights_are_a_distribution_over_cells_and_follow_the_image():
    model = models()[4].eval()
    grid = torch.randn(2, 9, D)
    state = model.init_state(grid)
    _, alpha = model.attend(state)
    assert alpha.shape == (2, 9)
    assert torch.allclose(alpha.sum(1), torch.ones(2))
    # moving the content of the cells moves the attention with it
    perm = torch.randperm(9)
    _, alpha_perm = model.attend(model.init_state(grid[:, perm]))
    assert torch.allclose(alpha_perm, alpha[:, perm], atol=1e-6)


def test_updown_reads_the_image_as_a_set_of_vectors_at_every_word():
    model = models()[5].eval()
    image, inputs = torch.randn(2, 9, D), torch.randint(0, V, (2, 5))
    logits = model(image, inputs)
    # eq. 2-5 only average and attend over the vectors: their order does not matter
    assert torch.allclose(model(image[:, torch.randperm(9)], inputs), logits, atol=1e-5)
    # and every word looks at them again: one region changed changes every step's words
    changed = image.clone()
    changed[:, 3] += 5.0
    assert all(not torch.allclose(model(changed, inputs)[:, t], logits[:, t]) for t in range(5))
