"""Loading a trained generator, captioning cached features, the nearest-neighbour baseline
and the evaluation report, on the synthetic colour/animal data of test_training."""

import pytest
from test_training import config, synthetic

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

from scenetalk.captioning.captioner import caption_features
from scenetalk.captioning.evaluation import caption_report, nearest_neighbour_captions
from scenetalk.checkpoint import CheckpointError, load_generator, save_checkpoint
from scenetalk.metrics.captions import java_available
from scenetalk.training.caption_trainer import CaptionTrainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    data, feats, rows = synthetic()
    small = {"type": "mrnn", "embed1_dim": 16, "embed2_dim": 32, "multimodal_dim": 32, "dropout": 0.0}
    cfg = config(max_steps=200, eval_every=100, checkpoint_every=100, model=small)
    CaptionTrainer(cfg, data, feats, rows, "synthetic-features", out, progress=False).run()
    return out / "best", data, feats, rows


@pytest.mark.slow
def test_loaded_generator_names_colour_and_animal(trained):
    folder, data, feats, rows = trained
    model, vocab, meta = load_generator(folder, expect_extractor_id="synthetic-features")
    val = data.split("val")
    caps = caption_features(model, vocab, feats[[rows[im.relpath] for im in val]], beam_size=3, n_best=2)
    assert all(len(c) == 2 and c[0].score >= c[1].score for c in caps)
    right = sum(im.sentences[0].tokens[1] in c[0].text and im.sentences[0].tokens[2] in c[0].text
                for im, c in zip(val, caps))
    assert right >= 0.75 * len(val)
    greedy = caption_features(model, vocab, feats[:3], beam_size=1)
    assert all(len(c) == 1 and c[0].complete for c in greedy)


@pytest.mark.slow
def test_load_generator_refuses_other_checkpoints(tmp_path, trained):
    folder = trained[0]
    with pytest.raises(CheckpointError, match="synthetic-features"):
        load_generator(folder, expect_extractor_id="efficientnet-lite0-224-x")
    save_checkpoint(tmp_path / "other", {"w": torch.zeros(1)}, {"kind": "alignment"})
    with pytest.raises(CheckpointError, match="not a caption generator"):
        load_generator(tmp_path / "other")


def test_nearest_neighbour_baseline_copies_the_closest_training_sentence():
    data, feats, rows = synthetic()
    caps = nearest_neighbour_captions(data, "val", feats, rows)
    by_name = data.by_name()
    for name, caption in caps.items():
        colour, animal = by_name[name].sentences[0].tokens[1:3]
        assert caption == f"a {colour} {animal} runs"  # identical features -> same scene


@pytest.mark.skipif(not java_available(), reason="Java not installed: the PTB tokenizer and METEOR need it")
@pytest.mark.slow
def test_caption_report_counts_training_copies_and_vocabulary():
    data, feats, rows = synthetic()
    caps = nearest_neighbour_captions(data, "val", feats, rows)
    report = caption_report(caps, data, "val", meteor=False)
    assert report["images"] == 8 and report["in_training_set"] == 1.0
    assert report["scores"]["BLEU-1"] > 0.9 and report["scores"]["CIDEr-D"] > 1.0
    assert report["vocabulary_used"] == len({w for c in caps.values() for w in c.split()})
    with pytest.raises(ValueError, match="no caption"):
        caption_report(dict(list(caps.items())[:3]), data, "val", meteor=False)


@pytest.mark.slow
def test_generated_captions_are_the_best_beam_caption_of_every_split_image(trained):
    from scenetalk.captioning.evaluation import generated_captions

    folder, data, feats, rows = trained
    model, vocab, _ = load_generator(folder)
    caps = generated_captions(model, vocab, data, "val", feats, rows, beam_size=3)
    val = data.split("val")
    assert list(caps) == [im.relpath for im in val]
    best = caption_features(model, vocab, feats[[rows[im.relpath] for im in val]], beam_size=3)
    assert list(caps.values()) == [c[0].text for c in best]
    # the model was trained to say "a <colour> <animal> runs": most val captions name both
    assert sum(im.sentences[0].tokens[1] in caps[im.relpath].split() and im.sentences[0].tokens[2]
               in caps[im.relpath].split() for im in val) >= 0.75 * len(val)
