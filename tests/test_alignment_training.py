"""The alignment model learns on synthetic regions and sentences, and its checkpoint loads."""

import pytest

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

from scenetalk.checkpoint import CheckpointError, load_alignment
from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence
from scenetalk.training.alignment_trainer import AlignmentTrainer, AlignTrainConfig

COLOURS = ["red", "blue", "green", "black", "white"]
ANIMALS = ["dog", "cat", "horse", "bird"]


def synthetic(n_per_split=(60, 20), regions=4, seed=0):
    """Each image holds a <colour> <animal> in one region and clutter in the others; the
    region's feature codes both, so words must find the right region."""
    g = torch.Generator().manual_seed(seed)
    images, rows, feats = [], {}, []
    for split, n in zip(("train", "val"), n_per_split):
        for i in range(n):
            c, a = COLOURS[int(torch.randint(5, (1,), generator=g))], ANIMALS[int(torch.randint(4, (1,), generator=g))]
            f = torch.randn(regions, 12, generator=g) * 0.3
            k = int(torch.randint(regions, (1,), generator=g))
            f[k, COLOURS.index(c)] += 2
            f[k, 5 + ANIMALS.index(a)] += 2
            name = f"{split}{i}.jpg"
            rows[name] = len(feats)
            feats.append(f)
            texts = [f"a {c} {a} runs", f"the {a} is {c}", f"{c} {a}"]
            images.append(ImageRecord(name, split, len(images),
                                      [Sentence(t, t.split(), "en", j) for j, t in enumerate(texts)]))
    return CaptionDataset("synthetic", images), torch.stack(feats), rows


@pytest.mark.slow
def test_alignment_training_learns_retrieval(tmp_path):
    data, feats, rows = synthetic()
    cfg = AlignTrainConfig(model={"embed_dim": 16, "word_dim": 8, "hidden_dim": 16, "dropout": 0.0},
                           min_count=1, batch_size=20, optimizer="adam", lr=0.01, epochs=10, eval_every=1000,
                           checkpoint_every=1000)
    t = AlignmentTrainer(cfg, data, feats, rows, "synthetic-regions", tmp_path / "run", progress=False)
    hist = t.run()
    assert hist["val"][-1]["rsum"] > hist["val"][0]["rsum"] + 100
    assert hist["val"][-1]["t2i_R@5"] > 40  # 20 val images, at most 20 colour-animal pairs
    assert (tmp_path / "run" / "curves.png").is_file()
    model, vocab, meta = load_alignment(tmp_path / "run" / "best", expect_extractor_id="synthetic-regions")
    assert meta["kind"] == "alignment" and "dog" in vocab.stoi
    with pytest.raises(CheckpointError, match="not a caption generator checkpoint"):
        from scenetalk.checkpoint import load_generator
        load_generator(tmp_path / "run" / "best")


@pytest.mark.slow
def test_fine_tuning_with_hardest_negatives_starts_from_the_checkpoint(tmp_path):
    """VSE++'s recipe here: eq. 9's sum first, then the hardest negative from that checkpoint."""
    data, feats, rows = synthetic()
    small = {"embed_dim": 16, "word_dim": 8, "hidden_dim": 16, "dropout": 0.0}
    warm = AlignTrainConfig(model=small, min_count=1, batch_size=20, optimizer="adam", lr=0.01, epochs=8,
                            eval_every=1000, checkpoint_every=1000)
    first = AlignmentTrainer(warm, data, feats, rows, "synthetic-regions", tmp_path / "warm", progress=False).run()
    tune = AlignTrainConfig(init_from=str(tmp_path / "warm" / "best"), hardest=True, min_count=1, batch_size=20,
                            optimizer="adam", lr=0.002, epochs=4, eval_every=1000, checkpoint_every=1000)
    t = AlignmentTrainer(tune, data, feats, rows, "synthetic-regions", tmp_path / "tuned", progress=False)
    start, vocab, _ = load_alignment(tmp_path / "warm" / "best")
    assert all(torch.equal(a, b) for a, b in zip(t.model.state_dict().values(), start.state_dict().values()))
    assert t.vocab.itos == vocab.itos and t.model_config["embed_dim"] == 16
    hist = t.run()
    assert hist["val"][-1]["rsum"] > 0.8 * max(r["rsum"] for r in first["val"])  # no collapse
    with pytest.raises(ValueError, match="one of model and init_from"):
        AlignTrainConfig(model=small, init_from=str(tmp_path / "warm" / "best"))
    with pytest.raises(CheckpointError, match="image features"):
        AlignmentTrainer(tune, data, feats, rows, "other-regions", tmp_path / "x", progress=False)


GERMAN = {"red": "rot", "blue": "blau", "green": "grün", "black": "schwarz", "white": "weiß",
          "dog": "hund", "cat": "katze", "horse": "pferd", "bird": "vogel"}


@pytest.mark.slow
@pytest.mark.parametrize("brnn", ["shared", "per_language"])
def test_one_model_learns_two_languages_from_a_merged_dataset(tmp_path, brnn):
    """Issue #17: English and German sentences of the same photos, merged (tokens tagged
    lang:word); one image side learns both, with one sentence side or one per language, and a
    German query is read as German."""
    import numpy as np

    from scenetalk.data.multilingual import merge_languages
    from scenetalk.data.text import tokenize
    from scenetalk.metrics.retrieval import retrieval_metrics
    from scenetalk.retrieval.scoring import score_split, sentence_set

    english, feats, rows = synthetic()
    def in_german(image):
        colour, animal = image.sentences[2].raw.split()        # "<colour> <animal>"
        texts = [f"ein {GERMAN[colour]} {GERMAN[animal]} rennt", f"{GERMAN[colour]} {GERMAN[animal]}"]
        return ImageRecord(image.file_name, image.split, image.image_id,
                           [Sentence(t, tokenize(t, "de"), "de", j) for j, t in enumerate(texts)])

    german = CaptionDataset("synthetic-de", [in_german(im) for im in english.images])
    data = merge_languages({"en": english, "de": german})
    cfg = AlignTrainConfig(model={"embed_dim": 16, "word_dim": 8, "hidden_dim": 16, "dropout": 0.0, "brnn": brnn},
                           min_count=1, batch_size=20, optimizer="adam", lr=0.01, epochs=8, eval_every=1000,
                           checkpoint_every=1000)
    t = AlignmentTrainer(cfg, data, feats, rows, "synthetic-regions", tmp_path / "run", progress=False)
    t.run()
    model, vocab, _ = load_alignment(tmp_path / "run" / "best", expect_extractor_id="synthetic-regions")
    assert vocab.language == "multi" and {"de:hund", "en:dog"} <= set(vocab.stoi)
    assert len(model.sides) == (2 if brnn == "per_language" else 1)
    if brnn == "per_language":  # the word languages came with the weights
        assert model.word_language.tolist() == vocab.word_languages().tolist()
    assert vocab.tokenize("ein roter Hund")[0] == "de:ein"
    for language in ("en", "de"):
        only = CaptionDataset(language, [ImageRecord(im.file_name, im.split, im.image_id,
                                                     [s for s in im.sentences if s.language == language])
                                         for im in data.images])
        val = sentence_set(only, "val", vocab, rows, 40)
        scores = score_split(model, feats.numpy(), val)
        t2i = retrieval_metrics(scores, np.asarray(val.image_of))["text_to_image"]
        assert t2i["R@5"] > 40, (language, t2i)


@pytest.mark.slow
def test_a_locked_model_gains_a_language_and_keeps_its_own(tmp_path):
    """Issue #17 (LiT's lock): German added to a trained English model; its image side, English
    words and English sentence side stay bit for bit what they were, through a second stage
    (init_from) too, and German learns to find the photos."""
    import numpy as np

    from scenetalk.data.multilingual import merge_languages
    from scenetalk.data.text import tokenize
    from scenetalk.metrics.retrieval import retrieval_metrics
    from scenetalk.retrieval.scoring import score_split, sentence_set

    english, feats, rows = synthetic()
    small = {"embed_dim": 16, "word_dim": 8, "hidden_dim": 16, "dropout": 0.0}
    common = dict(min_count=1, batch_size=20, optimizer="adam", eval_every=1000, checkpoint_every=1000)
    AlignmentTrainer(AlignTrainConfig(model=small, lr=0.01, epochs=8, **common), english, feats, rows,
                     "synthetic-regions", tmp_path / "en", progress=False).run()

    def in_german(image):
        colour, animal = image.sentences[2].raw.split()
        texts = [f"ein {GERMAN[colour]} {GERMAN[animal]} rennt", f"{GERMAN[colour]} {GERMAN[animal]}"]
        return ImageRecord(image.file_name, image.split, image.image_id,
                           [Sentence(t, tokenize(t, "de"), "de", j) for j, t in enumerate(texts)])

    data = merge_languages({"en": english, "de": CaptionDataset("de", [in_german(im) for im in english.images])})
    locked = str(tmp_path / "en" / "best")
    first = AlignmentTrainer(AlignTrainConfig(locked_from=locked, lr=0.01, epochs=8, **common), data, feats, rows,
                             "synthetic-regions", tmp_path / "multi", progress=False)
    words = first.train.ids[first.train.ids > 0]   # only German sentences train (English cannot change)
    assert set(first.vocab.word_languages()[words].tolist()) == {first.vocab.languages.index("de")}
    first.run()
    AlignmentTrainer(AlignTrainConfig(init_from=str(tmp_path / "multi" / "best"), locked_from=locked, hardest=True,
                                      lr=0.002, epochs=2, **common), data, feats, rows, "synthetic-regions",
                     tmp_path / "multi2", progress=False).run()
    en_model, en_vocab, _ = load_alignment(locked)
    model, vocab, _ = load_alignment(tmp_path / "multi2" / "best")
    assert vocab.languages == ["de", "en"] and len(model.sides) == 2
    assert vocab.itos[4:4 + len(en_vocab) - 4] == ["en:" + w for w in en_vocab.itos[4:]]
    assert torch.equal(model.W_m.weight, en_model.W_m.weight) and torch.equal(model.W_m.bias, en_model.W_m.bias)
    assert torch.equal(model.W_w.weight[:len(en_vocab)], en_model.W_w.weight)
    english_side = model.sides[vocab.languages.index("en")]
    assert all(torch.equal(v, english_side.state_dict()[k]) for k, v in en_model.state_dict().items()
               if k.split(".")[0] in ("W_e", "W_f", "W_b", "W_d"))
    assert not torch.equal(model.sides[0].W_f.weight, english_side.W_f.weight)   # German's side trained
    only = CaptionDataset("de", [ImageRecord(im.file_name, im.split, im.image_id,
                                             [s for s in im.sentences if s.language == "de"]) for im in data.images])
    val = sentence_set(only, "val", vocab, rows, 40)
    t2i = retrieval_metrics(score_split(model, feats.numpy(), val), np.asarray(val.image_of))["text_to_image"]
    assert t2i["R@5"] > 40, t2i
    with pytest.raises(ValueError, match="only dropout"):
        AlignTrainConfig(locked_from=locked, model=small)
    with pytest.raises(ValueError, match="weight_decay"):
        AlignTrainConfig(locked_from=locked, weight_decay=0.1)
    from scenetalk.errors import ScenetalkError
    with pytest.raises(ScenetalkError, match="sentences in other languages"):
        AlignmentTrainer(AlignTrainConfig(locked_from=locked, **common), english, feats, rows, "synthetic-regions",
                         tmp_path / "x", progress=False)


def test_language_repeats_oversample_a_language_each_epoch(tmp_path):
    """Issue #17: German, with fewer sentences, seen `language_repeats` times an epoch."""
    from scenetalk.data.multilingual import merge_languages
    from scenetalk.data.text import tokenize
    from scenetalk.errors import ScenetalkError

    english, feats, rows = synthetic(n_per_split=(10, 4))
    german = CaptionDataset("de", [ImageRecord(im.file_name, im.split, im.image_id,
                                               [Sentence("ein hund", tokenize("ein hund", "de"), "de", 0)])
                                   for im in english.images])
    data = merge_languages({"en": english, "de": german})
    small = {"embed_dim": 8, "word_dim": 8, "hidden_dim": 8}
    common = dict(model=small, min_count=1, batch_size=5, epochs=1)
    plain = AlignmentTrainer(AlignTrainConfig(**common), data, feats, rows, "synthetic-regions", tmp_path / "a",
                             progress=False)
    more = AlignmentTrainer(AlignTrainConfig(language_repeats={"de": 3}, **common), data, feats, rows,
                            "synthetic-regions", tmp_path / "b", progress=False)
    assert plain.items_per_epoch == 10 * 3 + 10 and more.items_per_epoch == 10 * 3 + 3 * 10
    de = more.vocab.languages.index("de")
    first_words = more.vocab.word_languages()[more.train_ids[:, 0].numpy()]
    assert (first_words == de).sum() == 30
    # each German sentence three times over, with its own photo
    german_rows = more.train_rows[torch.from_numpy(first_words == de)]
    assert sorted(german_rows.tolist()) == sorted(plain.train_rows[torch.from_numpy(
        plain.vocab.word_languages()[plain.train_ids[:, 0].numpy()] == de)].tolist() * 3)
    with pytest.raises(ScenetalkError, match="language_repeats names fr"):
        AlignmentTrainer(AlignTrainConfig(language_repeats={"fr": 2}, **common), data, feats, rows,
                         "synthetic-regions", tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="language_repeats"):
        AlignTrainConfig(language_repeats={"de": 0})


def test_validation_in_bfloat16_reads_only_the_split_images_from_the_store():
    """What training validates with (``score_split`` in bfloat16) reads the val images' rows of a
    store's memory map, never the whole store: at COCO size the float32 copy of every photo's
    regions was 12.6 GB, and a synthetic COCO-size run died of it (benchmarks/bench_coco_memory.py)."""
    import numpy as np

    from scenetalk.features.store import FeatureRows
    from scenetalk.models import build_alignment
    from scenetalk.retrieval.scoring import score_split, sentence_set
    from scenetalk.training.loop import training_vocabulary

    data, feats, rows = synthetic()
    vocab = training_vocabulary(data, 1)
    torch.manual_seed(0)
    model = build_alignment({"embed_dim": 16, "word_dim": 8, "hidden_dim": 16, "dropout": 0.0,
                             "vocab_size": len(vocab), "region_dim": 12})
    val = sentence_set(data, "val", vocab, rows, 40)

    class StoreRows(FeatureRows):
        def __array__(self, *args, **kwargs):
            raise AssertionError("the whole store was read")

    from_store = score_split(model, StoreRows(feats.numpy()), val, dtype=torch.bfloat16)
    np.testing.assert_array_equal(from_store, score_split(model, feats, val, dtype=torch.bfloat16))
