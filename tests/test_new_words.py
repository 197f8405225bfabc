"""Learning new words (NVCL, training/new_words.py) on synthetic data: transposed weight
sharing computes what its equation says; extending the vocabulary leaves every old logit as it
was; NVCL learns the new word while every old parameter stays bit-identical and the old
words' probabilities on old captions stay the base model's; fine-tuning does change them; and
every bad request is one ScenetalkError line."""

import pytest

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

from scenetalk.checkpoint import load_generator, save_checkpoint
from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence
from scenetalk.errors import ScenetalkError
from scenetalk.models import build_generator, eval_mode
from scenetalk.models.mrnn import scaled_tanh
from scenetalk.training.caption_trainer import CaptionTrainer, TrainConfig
from scenetalk.training.new_words import NewWordsConfig, extend_generator, learn_words

COLOURS = ["red", "blue", "green", "black"]
ANIMALS = ["dog", "cat", "horse"]
TWS_MRNN = {"type": "mrnn", "dropout": 0.0, "embed1_dim": 16, "embed2_dim": 32, "multimodal_dim": 64,
            "output": "transposed"}


def photos(split, animals, n, start=0):
    """n photos of ``split``; photo i shows a <colour> <animal> (its feature a one-hot code of
    both) and its sentences say so in three ways."""
    images, feats = [], []
    for i in range(start, start + n):
        c, a = COLOURS[i % 4], animals[(i // 4) % len(animals)]
        f = torch.zeros(8)
        f[COLOURS.index(c)] = 1
        f[4 + ANIMALS.index(a)] = 1
        texts = [f"a {c} {a} runs", f"the {c} {a} is running", f"a {a} that is {c}"]
        images.append(ImageRecord(f"{split}{i}.jpg", split, i, [Sentence(t, t.split(), "en", k)
                                                              for k, t in enumerate(texts)]))
        feats.append(f)
    return images, feats


def dataset(*parts):
    images, feats = [], []
    for im, f in parts:
        images += im
        feats += f
    return CaptionDataset("synthetic", images), torch.stack(feats), {im.file_name: k for k, im in enumerate(images)}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A captioner with transposed weight sharing that has never seen a horse."""
    folder = tmp_path_factory.mktemp("base")
    data, feats, rows = dataset(photos("train", ["dog", "cat"], 24), photos("val", ["dog", "cat"], 8))
    cfg = TrainConfig(model=TWS_MRNN, min_count=1, batch_size=8, optimizer="adam", lr=0.01, epochs=100,
                      max_steps=120, eval_every=120, checkpoint_every=120, seed=3, select_metric="perplexity")
    CaptionTrainer(cfg, data, feats, rows, "synthetic-features", folder / "run", progress=False).run()
    return folder / "run" / "best"


@pytest.fixture(scope="module")
def horses():
    """Twelve photos of horses (of all four colours), with their sentences."""
    return dataset(photos("train", ["horse"], 12))


def teach(base, horses, **config):
    data, feats, rows = horses
    settings = dict(steps=60, batch_size=12, lr=0.05, seed=1)
    settings.update(config)
    return learn_words(base, ["horse"], data, feats, rows, "synthetic-features", NewWordsConfig(**settings),
                       progress=False)


def test_transposed_weight_sharing_is_its_equation():
    """[TWS] logits = E_I^T · g(U_I · m(t)) + b: one matrix for the words in and out, and no W_o."""
    torch.manual_seed(0)
    model = build_generator({**TWS_MRNN, "vocab_size": 30, "image_dim": 8}).eval()
    assert not hasattr(model, "W_o")
    m = torch.randn(5, 64)
    expected = scaled_tanh(m @ model.U_I.weight.T + model.U_I.bias) @ model.E_I.weight.T + model.b_o
    assert torch.allclose(model.word_logits(m), expected, atol=1e-6)
    full = build_generator({**TWS_MRNN, "output": "full", "vocab_size": 30, "image_dim": 8})
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    # W_o (30 × 64 + 30) is replaced by U_I (64 → 16) and b (30)
    assert count(full) - count(model) == 30 * 64 + 30 - (64 * 16 + 16 + 30)


def test_unknown_output_layer_is_refused():
    with pytest.raises(ValueError, match="output"):
        build_generator({**TWS_MRNN, "output": "shared", "vocab_size": 30, "image_dim": 8})


@pytest.mark.parametrize("output", ["transposed", "full"])
def test_extending_the_vocabulary_keeps_every_old_logit(output):
    from scenetalk.data.text import Vocabulary

    torch.manual_seed(0)
    config = {**TWS_MRNN, "output": output, "vocab_size": 10, "image_dim": 8}
    model = build_generator(config).eval()
    vocab = Vocabulary([f"w{i}" for i in range(6)])
    bigger, new_config, new_vocab, rows = extend_generator(model, config, vocab, ["horse", "zebra"], "base")
    assert new_config["vocab_size"] == 12 and new_vocab.itos[-2:] == ["horse", "zebra"] and rows == [10, 11]
    image, inputs = torch.rand(3, 8), torch.randint(0, 10, (3, 5))
    with torch.no_grad():
        old, new = model(image, inputs), bigger.eval()(image, inputs)
    assert torch.allclose(old, new[..., :10], atol=1e-6)   # a wider matrix product: float tolerance
    # baseline probability fixation: the new words start at the old words' mean bias
    assert torch.allclose(bigger.output_bias()[10:], model.output_bias().mean().expand(2))


def test_nvcl_learns_the_word_and_freezes_everything_else(base, horses):
    old_model, old_vocab, _ = load_generator(base)
    learned = teach(base, horses)
    assert learned.words == ["horse"] and learned.uses == {"horse": 36} and learned.photos == 12
    model, vocab = learned.model, learned.vocab
    horse, size = vocab.stoi["horse"], len(old_vocab)
    assert horse == size and vocab.itos[:size] == old_vocab.itos
    old_state, new_state = old_model.state_dict(), model.state_dict()
    for name, tensor in old_state.items():   # every old weight bit-identical, old rows included
        assert torch.equal(new_state[name][: tensor.shape[0]] if tensor.dim() else new_state[name], tensor), name
    assert torch.equal(model.output_bias()[horse], old_model.output_bias().mean())  # fixed, never trained
    # the old words' probabilities on old captions (renormalised over the old words) are unchanged
    data, feats, rows = dataset(photos("val", ["dog", "cat"], 8))
    ids = torch.from_numpy(old_vocab.encode_batch([s.tokens for s in data.sentences()])[0])
    image = feats[[rows[im.file_name] for im in data.images for _ in im.sentences]]
    with eval_mode(old_model), eval_mode(model), torch.no_grad():
        before = torch.log_softmax(old_model(image, ids[:, :-1]), -1)
        after = torch.log_softmax(model(image, ids[:, :-1])[..., :size], -1)
    assert torch.allclose(before, after, atol=1e-6)
    # ...and it has learned the word: after "a <colour>", a horse photo's next word is "horse"
    horse_image = torch.zeros(1, 8)
    horse_image[0, 0], horse_image[0, 6] = 1, 1          # a red horse
    prefix = torch.tensor([[vocab.start_id, vocab.stoi["a"], vocab.stoi["red"]]])
    with eval_mode(model), torch.no_grad():
        after_red = model(horse_image, prefix)[0, -1]
    assert int(after_red.argmax()) == horse


def test_fine_tuning_changes_the_old_weights(base, horses):
    old_model, _, _ = load_generator(base)
    learned = teach(base, horses, method="finetune", steps=10)
    assert not torch.equal(learned.model.V_I.weight, old_model.V_I.weight)


def test_the_learned_captioner_is_a_normal_checkpoint(base, horses, tmp_path):
    learned = teach(base, horses, steps=5)
    learned.save(tmp_path / "ckpt")
    model, vocab, meta = load_generator(tmp_path / "ckpt")
    assert "horse" in vocab and meta["learned_words"]["words"] == ["horse"]
    assert meta["learned_words"]["method"] == "nvcl" and meta["extractor_id"] == "synthetic-features"
    for name, tensor in learned.model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor)


@pytest.mark.parametrize("words, relearn, message", [
    ([], False, "at least one word"),
    (["two words"], False, "not one word"),
    (["dog"], False, "knows this word already"),
    (["<unk>"], False, "would read it as 'unk'"),
    (["zebra"], False, "no sentence uses 'zebra'"),
    (["horse", "zebra"], False, "no sentence uses 'zebra'"),
])
def test_bad_requests_are_one_line(base, horses, words, relearn, message):
    data, feats, rows = horses
    with pytest.raises(ScenetalkError, match=message) as info:
        learn_words(base, words, data, feats, rows, "synthetic-features", NewWordsConfig(steps=1), relearn=relearn,
                    progress=False)
    assert "\n" not in str(info.value)


def test_relearning_a_known_word_keeps_its_id(base, horses):
    data, feats, rows = horses
    old_model, old_vocab, _ = load_generator(base)
    learned = learn_words(base, ["horse", "red"], data, feats, rows, "synthetic-features",
                          NewWordsConfig(steps=3), relearn=True, progress=False)
    assert learned.vocab.stoi["red"] == old_vocab.stoi["red"] and len(learned.vocab) == len(old_vocab) + 1


def test_a_captioner_without_word_rows_cannot_learn(tmp_path, horses):
    from scenetalk.data.text import Vocabulary

    config = {"type": "multimodal_rnn", "word_dim": 8, "hidden_dim": 8, "vocab_size": 7, "image_dim": 8}
    model = build_generator(config)
    save_checkpoint(tmp_path / "rnn", model.state_dict(),
                    {"kind": "caption_generator", "model": config, "extractor_id": "synthetic-features",
                     "vocabulary": Vocabulary(["a", "red", "dog"]).to_dict()})
    data, feats, rows = horses
    with pytest.raises(ScenetalkError, match="cannot learn new words"):
        learn_words(tmp_path / "rnn", ["horse"], data, feats, rows, "synthetic-features", progress=False)


def test_features_of_another_extractor_are_refused(base, horses):
    data, feats, rows = horses
    with pytest.raises(ScenetalkError, match="extractor"):
        learn_words(base, ["horse"], data, feats, rows, "another-extractor", progress=False)


@pytest.mark.slow
def test_zero_shot_and_nvcl_from_analogues(base, horses, tmp_path):
    """add_words_by_analogy writes a normal checkpoint whose new word starts at its analogues'
    mean; NVCL from there (init="analogy") still freezes every old weight."""
    from scenetalk.training.new_words import add_words_by_analogy

    old_model, old_vocab, _ = load_generator(base)
    added = add_words_by_analogy(base, ["horse"], k=2)
    [analogues] = added.meta["learned_words"]["analogues"].values()
    assert len(analogues) == 2 and all(a in old_vocab.stoi for a in analogues)
    rows = [old_vocab.stoi[a] for a in analogues]
    assert torch.allclose(added.model.E_I.weight[added.vocab.stoi["horse"]], old_model.E_I.weight[rows].mean(0))
    model, vocab, _ = load_generator(added.save(tmp_path / "zero"))
    assert vocab.itos == added.vocab.itos
    learned = teach(base, horses, init="analogy")
    assert learned.meta["learned_words"]["init"] == "analogy"
    for name, tensor in old_model.state_dict().items():
        new = learned.model.state_dict()[name]
        assert torch.equal(new[: tensor.shape[0]] if tensor.dim() else new, tensor), name
