"""The zero-shot word path (issue #14): a new word's rows start as its analogues' mean (DCC's
direct transfer), the detector's classes decide which photo must say which word, and the
constrained decoding says it there and nowhere else."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

from scenetalk.captioning.captioner import caption_features
from scenetalk.captioning.detected_words import DETECTOR_WORDS, banned_unless_required, detector_words, required_words
from scenetalk.data.text import Vocabulary
from scenetalk.models import build_generator
from scenetalk.training.new_words import extend_generator

TWS_MRNN = {"type": "mrnn", "dropout": 0.0, "embed1_dim": 16, "embed2_dim": 32, "multimodal_dim": 64,
            "output": "transposed", "image_dim": 8}
WORDS = ["a", "dog", "cat", "runs", "board", "surf", "on"]


@pytest.mark.parametrize("output", ["transposed", "full"])
def test_a_word_by_analogy_starts_as_its_analogues_mean(output):
    torch.manual_seed(0)
    vocab = Vocabulary(WORDS)
    config = {**TWS_MRNN, "output": output, "vocab_size": len(vocab)}
    model = build_generator(config).eval()
    bigger, _, new_vocab, rows = extend_generator(model, config, vocab, ["surfboard", "zebra"], "base",
                                                  {"surfboard": ["surf", "board"]})
    surfboard, zebra = new_vocab.stoi["surfboard"], new_vocab.stoi["zebra"]
    for name in ("E_I.weight", "W_o.weight") if output == "full" else ("E_I.weight",):
        old, new = model.state_dict()[name], bigger.state_dict()[name]
        assert torch.allclose(new[surfboard], (old[vocab.stoi["surf"]] + old[vocab.stoi["board"]]) / 2)
        assert torch.equal(new[zebra], torch.zeros_like(new[zebra]))      # no analogues: zero, as NVCL starts
        assert torch.equal(new[: len(vocab)], old)
    # the bias stays baseline probability fixation's, analogues or not
    assert torch.allclose(bigger.output_bias()[rows], model.output_bias().mean().expand(2))


def test_required_words_take_the_best_detection_at_or_above_the_threshold():
    vocab = Vocabulary(WORDS + ["surfboard", "boat"])
    surfboard = next(c for c, w in DETECTOR_WORDS.items() if w == "surfboard")
    boat = next(c for c, w in DETECTOR_WORDS.items() if w == "boat")
    person = next(c for c, w in DETECTOR_WORDS.items() if w == "person")
    classes = np.array([[0, person, surfboard, boat], [0, boat, surfboard, person], [0, person, boat, boat]])
    scores = np.array([[1.0, 0.9, 0.6, 0.55], [1.0, 0.8, 0.3, 0.2], [1.0, 0.9, 0.4, 0.1]])
    required = required_words(classes, scores, vocab, ["surfboard", "boat"], threshold=0.5)
    assert required == [[vocab.stoi["surfboard"]], [vocab.stoi["boat"]], []]
    ids = [vocab.stoi["surfboard"], vocab.stoi["boat"]]
    assert banned_unless_required(required, ids) == [[ids[1]], [ids[0]], ids]
    # a class word the caller did not add is never required, whatever its score
    assert required_words(classes, scores, vocab, ["boat"], threshold=0.5) == [[vocab.stoi["boat"]]] * 2 + [[]]


def test_detector_words_are_the_one_word_classes_a_vocabulary_lacks():
    words = detector_words(Vocabulary(["dog", "person", "surfboard"]))
    assert "giraffe" in words and "dog" not in words and "surfboard" not in words
    assert all(" " not in w for w in words) and "hot dog" not in words


def test_the_required_word_is_said_and_a_forbidden_one_never():
    torch.manual_seed(0)
    vocab = Vocabulary(WORDS + ["surfboard"])
    model = build_generator({**TWS_MRNN, "vocab_size": len(vocab)}).eval()
    features = torch.rand(3, 8)
    surfboard = vocab.stoi["surfboard"]
    caps = caption_features(model, vocab, features, beam_size=3, max_len=8, required=[[surfboard], [], []],
                            forbidden=[[], [surfboard], [surfboard]])
    assert "surfboard" in caps[0][0].text.split()
    assert all("surfboard" not in c[0].text.split() for c in caps[1:])
    plain = caption_features(model, vocab, features[1:], beam_size=3, max_len=8, forbidden=None)
    unconstrained = caption_features(model, vocab, features[1:], beam_size=3, max_len=8, required=[[], []])
    assert [c[0].log_prob for c in plain] == pytest.approx([c[0].log_prob for c in unconstrained])


@pytest.mark.slow
@pytest.mark.word_vectors
def test_analogues_come_from_pretrained_word_vectors():
    from scenetalk.training.new_words import find_analogues

    vocab = Vocabulary(["dog", "surf", "bench", "glasses", "red", "motorcyclist"])
    found = find_analogues(["surfboard", "sunglasses", "motorbike"], vocab, k=1)
    assert found == {"surfboard": ["surf"], "sunglasses": ["glasses"], "motorbike": ["motorcyclist"]}
