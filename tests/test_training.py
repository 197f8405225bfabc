"""Caption training on synthetic data: it learns, it is deterministic, and a killed run
resumed from its last checkpoint ends exactly where an uninterrupted run ends."""

import json

import pytest

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

from scenetalk.checkpoint import CheckpointError, load_checkpoint
from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence
from scenetalk.errors import ScenetalkError
from scenetalk.training.caption_trainer import CaptionTrainer, TrainConfig

COLOURS = ["red", "blue", "green", "black"]
ANIMALS = ["dog", "cat", "horse"]


def synthetic(n_per_split=(24, 8)):
    """Image i shows a <colour> <animal>; its feature is a one-hot code of both, and its
    sentences say 'a <colour> <animal> runs' in a few ways."""
    images, rows, feats = [], {}, []
    for split, n in zip(("train", "val"), n_per_split):
        for i in range(n):
            c, a = COLOURS[i % 4], ANIMALS[(i // 4) % 3]
            name = f"{split}{i}.jpg"
            f = torch.zeros(8)
            f[COLOURS.index(c)] = 1
            f[4 + ANIMALS.index(a)] = 1
            rows[name] = len(feats)
            feats.append(f)
            texts = [f"a {c} {a} runs", f"the {c} {a} is running", f"a {a} that is {c}"]
            images.append(ImageRecord(name, split, len(images),
                                      [Sentence(t, t.split(), "en", k) for k, t in enumerate(texts)]))
    return CaptionDataset("synthetic", images), torch.stack(feats), rows


#: an m-RNN with small layers (the paper's are 128/256/512): it learns the toy data as well,
#: a few times faster
SMALL_MRNN = {"type": "mrnn", "dropout": 0.0, "embed1_dim": 16, "embed2_dim": 32, "multimodal_dim": 64}


def config(**kw):
    base = dict(model={"type": "multimodal_rnn", "cell": "lstm", "word_dim": 16, "hidden_dim": 32, "dropout": 0.1},
                min_count=1, batch_size=8, optimizer="adam", lr=0.01, epochs=40, max_steps=12,
                eval_every=6, checkpoint_every=3, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def trainer(tmp_path, name, cfg, **kw):
    data, feats, rows = synthetic()
    return CaptionTrainer(cfg, data, feats, rows, "synthetic-features", tmp_path / name, progress=False, **kw)


@pytest.mark.slow
def test_training_learns_and_writes_run_files(tmp_path):
    t = trainer(tmp_path, "run", config(max_steps=60, eval_every=30, checkpoint_every=30, model=SMALL_MRNN))
    hist = t.run()
    first, last = hist["train"][0]["loss"], hist["train"][-1]["loss"]
    assert last < first * 0.5
    assert hist["val"][-1]["perplexity"] < hist["val"][0]["perplexity"]
    assert hist["val"][-1]["cider"] > 0.5  # greedy captions name the right colour and animal
    for f in ("last/model.safetensors", "best/config.json", "history.json", "curves.png"):
        assert (tmp_path / "run" / f).is_file()
    tensors, meta = load_checkpoint(tmp_path / "run" / "best", expect_extractor_id="synthetic-features")
    assert meta["model"]["type"] == "mrnn" and "W_o.weight" in tensors
    assert meta["vocabulary"]["words"][:1] == ["a"]
    with pytest.raises(CheckpointError, match="synthetic-features"):
        load_checkpoint(tmp_path / "run" / "best", expect_extractor_id="other-features")


def test_softmax_bias_starts_at_log_unigram_frequencies(tmp_path):
    t = trainer(tmp_path, "run", config())
    probs = torch.softmax(t.model.output_bias().detach(), 0)
    vocab = t.vocab
    # "a" and <end> are the commonest targets; unseen <pad>/<start> get almost nothing
    assert probs[vocab.stoi["a"]] > probs[vocab.stoi["horse"]] > probs[vocab.start_id]
    targets = t.train.ids[:, 1:]
    n_targets = int((targets != vocab.pad_id).sum())
    assert probs[vocab.end_id] == pytest.approx(72 / n_targets, rel=0.01)  # 24 images x 3 sentences


class Crash(Exception):
    pass


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    full = trainer(tmp_path, "full", config())
    full.run()

    def crash_at_7(step):
        if step == 7:
            raise Crash

    crashed = trainer(tmp_path, "crashed", config(), on_step=crash_at_7)
    with pytest.raises(Crash):
        crashed.run()
    assert json.loads((tmp_path / "crashed/last/config.json").read_text())["trainer"]["step"] == 6

    resumed = trainer(tmp_path, "crashed", config())
    assert resumed.resume()
    assert resumed.step == 6
    resumed.run()
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert [h["loss"] for h in full.history["train"]] == [h["loss"] for h in resumed.history["train"]]


@pytest.mark.slow
def test_resume_refuses_another_config(tmp_path):
    t = trainer(tmp_path, "run", config(max_steps=3))
    t.run()
    other = trainer(tmp_path, "run", config(max_steps=3, lr=0.5))
    with pytest.raises(Exception, match="another configuration"):
        other.resume()


def test_cosine_schedule_ends_near_zero_and_is_a_function_of_the_step():
    from scenetalk.training.loop import scheduled_lr

    cfg = config(lr=0.1, lr_schedule="cosine")
    assert scheduled_lr(cfg, 0, 100) == pytest.approx(0.1)
    assert scheduled_lr(cfg, 50, 100) == pytest.approx(0.05)
    assert scheduled_lr(cfg, 99, 100) < 0.001
    assert scheduled_lr(config(lr=0.1), 99, 100) == 0.1


@pytest.mark.parametrize("bad, message", [
    (dict(objective="scst"), "init_from"),
    (dict(lr_schedule="steps"), "lr_schedule"),
    (dict(model=None), "give the model"),
])
def test_bad_config_values_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        config(**bad)


def test_label_smoothing_is_the_equations_mix_of_likelihood_and_uniform_target():
    """ε-smoothed targets (1 − ε)·one-hot + ε/V: loss = (1 − ε)·NLL + ε·mean_v(−log p_v), padding excluded."""
    import torch

    from scenetalk.training.losses import caption_cross_entropy

    torch.manual_seed(0)
    logits, targets = torch.randn(2, 3, 5), torch.tensor([[1, 4, 0], [2, 0, 0]])
    log_p = torch.log_softmax(logits, -1)[targets != 0]
    words = targets[targets != 0]
    nll = -log_p[torch.arange(len(words)), words].mean()
    uniform = -log_p.mean()
    loss, n = caption_cross_entropy(logits, targets, 0, label_smoothing=0.2)
    assert n == 3 and float(loss) == pytest.approx(float(0.8 * nll + 0.2 * uniform), rel=1e-6)
    assert float(caption_cross_entropy(logits, targets, 0)[0]) == pytest.approx(float(nll), rel=1e-6)
    with pytest.raises(ValueError, match="label_smoothing"):
        config(label_smoothing=0.7)


def scst_config(start, **kw):
    base = dict(model=None, init_from=str(start), objective="scst", optimizer="adam", lr=0.01, batch_size=8,
                max_steps=40, eval_every=20, checkpoint_every=5, scst_samples=4)
    return config(**{**base, **kw})


@pytest.fixture(scope="module")
def xe_start(tmp_path_factory):
    """A briefly trained model (one epoch): it knows the words but often names the wrong colour."""
    out = tmp_path_factory.mktemp("xe")
    t = trainer(out, "xe", config(max_steps=9, eval_every=9, checkpoint_every=9, model=SMALL_MRNN))
    t.run()
    return out / "xe" / "best"


@pytest.mark.slow
def test_self_critical_training_raises_the_cider_reward(tmp_path, xe_start):
    t = trainer(tmp_path, "scst", scst_config(xe_start))
    assert t.model_config["type"] == "mrnn" and t.items_per_epoch == 24  # images, not sentences
    hist = t.run()
    rewards = [h["reward"] for h in hist["train"]]
    assert sum(rewards[-8:]) / 8 > sum(rewards[:8]) / 8 + 0.5
    assert hist["val"][-1]["cider"] > hist["val"][0]["cider"]


@pytest.mark.slow
def test_self_critical_resume_matches_uninterrupted_run(tmp_path, xe_start):
    full = trainer(tmp_path, "full", scst_config(xe_start, max_steps=12))
    full.run()

    def crash_at_7(step):
        if step == 7:
            raise Crash

    with pytest.raises(Crash):
        trainer(tmp_path, "crashed", scst_config(xe_start, max_steps=12), on_step=crash_at_7).run()
    resumed = trainer(tmp_path, "crashed", scst_config(xe_start, max_steps=12))
    assert resumed.resume() and resumed.step == 5
    resumed.run()
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


@pytest.mark.slow
def test_bf16_training_learns_like_fp32(tmp_path):
    kw = dict(max_steps=60, eval_every=60, checkpoint_every=60, model=SMALL_MRNN)
    fp32 = trainer(tmp_path, "fp32", config(**kw)).run()
    bf16 = trainer(tmp_path, "bf16", config(precision="bf16", **kw)).run()
    assert bf16["train"][-1]["loss"] < bf16["train"][0]["loss"] * 0.5
    assert bf16["val"][-1]["perplexity"] < fp32["val"][-1]["perplexity"] * 1.2


@pytest.mark.slow
def test_a_diverging_run_stops_with_a_clear_error_and_keeps_its_best_checkpoint(tmp_path):
    t = trainer(tmp_path, "run", config(max_steps=40, eval_every=10, checkpoint_every=10, model=SMALL_MRNN))
    good_loss = t.batch_loss

    def loss_that_diverges(idx):
        loss, n, extra = good_loss(idx)
        return (loss * float("nan") if t.step >= 15 else loss), n, extra

    t.batch_loss = loss_that_diverges
    with pytest.raises(ScenetalkError, match=r"diverged: the loss is nan at step 16 .*lower the learning rate"):
        t.run()
    weights = load_checkpoint(tmp_path / "run" / "best")[0]
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())["train"]) == 15
