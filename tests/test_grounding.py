"""Grounding on hand-made scores: phrase localisation, its baselines, snippet agreement, the
region-snippet corpus and the region dataset built from it."""

import numpy as np
import pytest

from scenetalk.data.entities import EntityImage, EntityPhrase, EntitySentence
from scenetalk.grounding.localisation import (
    ScoredSentences,
    localisation_table,
    localise,
    phrase_regions,
    snippet_agreement,
)
from scenetalk.grounding.snippets import flat_region_rows, informative, phrase_like, region_dataset, snippets_of
from scenetalk.grounding.word_regions import align_sentences, word_region_scores

# Three candidate regions: 0 the whole image, 1 the left half, 2 a small box at the top right.
BOXES = np.array([[[0, 0, 1, 1], [0, 0, 0.5, 1], [0.7, 0, 1, 0.3]]], dtype=np.float32)


def phrase(text, start, types, boxes):
    return EntityPhrase(text, text.split(), start, "1", types, np.array(boxes, dtype=np.float32), False)


def scored_example():
    # "a man in a red shirt": "a man" is the left half; "a red shirt" is the small box.
    tokens = "a man in a red shirt".split()
    phrases = [phrase("a man", 0, ["people"], [[0, 0, 0.5, 1]]),
               phrase("a red shirt", 3, ["clothing"], [[0.7, 0, 1, 0.3]])]
    image = EntityImage("p.jpg", 100, 100, [EntitySentence(" ".join(tokens), tokens, phrases)], {})
    unary = np.array([[0.0, 0.1, 0.0],    # a
                      [1.0, 2.0, 0.0],    # man     -> left half
                      [0.2, 0.0, 0.0],    # in
                      [0.0, 0.0, 0.1],    # a
                      [0.5, 0.0, 1.0],    # red     -> small box
                      [0.9, 0.0, 1.0]], dtype=np.float32)[None]  # shirt -> small box
    return ScoredSentences({"p.jpg": image}, [("p.jpg", 0)], unary, np.ones((1, 6), dtype=bool))


def test_phrase_regions_sum_and_mrf():
    unary = scored_example().unary[0]
    assert phrase_regions(unary, [(0, 2), (3, 6)], "sum") == [1, 2]
    # The MRF put every word on region 0: its choice is limited to what the words got.
    assert phrase_regions(unary, [(0, 2)], "mrf", np.zeros(6, dtype=np.int64)) == [0]
    with pytest.raises(ValueError):
        phrase_regions(unary, [(0, 2)], "nearest")


def test_localisation_and_baselines():
    scored = scored_example()
    out = localise(scored, BOXES, {"p.jpg": 0}, "sum")
    assert [(o.text, o.region, o.hit, o.upper_bound, o.whole_image, o.largest_box, o.top_detection)
            for o in out] == [
        ("a man", 1, True, True, True, True, True),      # whole image IoU 0.5 with the left half: a hit
        ("a red shirt", 2, True, True, False, False, False)]
    table = localisation_table(out)
    assert table["all"] == {"phrases": 2, "alignment": 100.0, "upper_bound": 100.0, "whole_image": 50.0,
                            "largest_box": 50.0, "top_detection": 50.0}
    assert table["clothing"]["whole_image"] == 0.0
    # β large: the whole sentence goes to one region, so one phrase must miss.
    big = localise(scored, BOXES, {"p.jpg": 0}, "mrf", beta=100.0)
    assert sum(o.hit for o in big) == 1


def test_objectness_prior_moves_a_phrase_to_a_confident_box():
    scored = scored_example()
    scores = np.array([[1.0, 0.1, 0.9]], dtype=np.float32)   # region 0's stored 1 is replaced by the prior
    # "a man": left half 2.1 + 0.1λ against the small box 0 + 0.9λ: the prior wins from λ > 2.625.
    for weight, region in ((2.0, 1), (3.0, 2)):
        out = localise(scored, BOXES, {"p.jpg": 0}, "sum", box_scores=scores, prior_weight=weight)
        assert out[0].region == region and out[0].top_detection is False
    with pytest.raises(ValueError):
        localise(scored, BOXES, {"p.jpg": 0}, "sum", prior_weight=1.0)


def test_snippet_agreement_counts_exact_grounded_phrases():
    scored = scored_example()
    # β = 0: words go to their own best regions: "a man" is split ("a" and "man" both on 1 -> one
    # run), "red shirt" runs on 2 but "a" before it goes to 2 as well: runs are
    # [a man](1) [in](0) [a red shirt](2) -> both phrases exact and on hit regions.
    row = snippet_agreement(scored, BOXES, {"p.jpg": 0}, beta=0.0)
    assert (row["precision"], row["recall"]) == (pytest.approx(100 * 2 / 3, abs=0.01), 100.0)
    assert row["mean_snippet_words"] == 2.0


def test_snippets_and_region_dataset():
    scored = scored_example()
    snips = snippets_of("p.jpg", 0, "a man in a red shirt".split(), scored.unary[0],
                        np.array([1, 1, 0, 2, 2, 2]), BOXES[0])
    assert [(s.region, s.text, s.score) for s in snips] == [(1, "a man", 2.1), (0, "in", 0.2),
                                                             (2, "a red shirt", 2.1)]
    assert snips[2].box == [0.7, 0.0, 1.0, 0.3]
    corpus = {"snippets": [{"split": "train", **s.__dict__} for s in snips]
              + [{"split": "val", "image": "q.jpg", "sentence": 0, "region": 1, "box": [0, 0, 1, 1], "start": 0,
                  "end": 1, "text": "dog", "score": -0.5}]}
    data = region_dataset(corpus)
    # "in" is only a function word; the val snippet scores below 0: both are left out.
    assert [(im.file_name, im.split, [s.raw for s in im.sentences]) for im in data.images] == [
        ("p.jpg#1", "train", ["a man"]), ("p.jpg#2", "train", ["a red shirt"])]
    assert not informative(["in", "the"]) and informative(["the", "dog"])
    assert phrase_like(["a", "brown", "dog"]) and phrase_like(["grass"])
    assert not phrase_like(["two"]) and not phrase_like(["a", "group", "of"]) and not phrase_like([])


def test_flat_region_rows():
    class Store:
        row_index = {"a.jpg": 0, "b.jpg": 1}

        def model_input(self, kind):
            assert kind == "regions"
            return np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)

    feats, rows = flat_region_rows(Store())
    assert feats.shape == (6, 2)
    assert feats[rows["b.jpg#2"]].tolist() == [10.0, 11.0]


def test_encode_batch_pads_numpy_ids():
    from scenetalk.data.text import Vocabulary

    vocab = Vocabulary.build([["a", "dog"], ["a", "cat"]], min_count=1)
    ids, lengths = vocab.encode_batch([["a", "dog", "runs"], ["cat"], []], add_start=False, add_end=False)
    assert ids.dtype == np.int64 and lengths.dtype == np.int64 and lengths.tolist() == [3, 1, 0]
    assert ids.tolist() == [[vocab.stoi["a"], vocab.stoi["dog"], vocab.unk_id], [vocab.stoi["cat"], 0, 0], [0, 0, 0]]
    assert vocab.encode_batch([], add_start=False, add_end=False)[0].shape == (0, 0)


def test_word_region_scores_and_mrf_match_the_pytorch_code_they_replaced():
    """NumPy scores of a PyTorch model (a trainer's, in training mode with dropout) equal what
    the PyTorch code computed: v_iᵀ s_t in eval mode, the mode given back afterwards."""
    torch = pytest.importorskip("torch")
    from scenetalk.data.text import Vocabulary
    from scenetalk.models.alignment import AlignmentConfig, AlignmentModel

    torch.manual_seed(0)
    sentences = [["a", "dog", "on", "the", "grass"], ["a", "red", "ball"], ["dog"], [], ["a", "zebra", "dog", "a"]]
    vocab = Vocabulary.build(sentences[:3], min_count=1)
    model = AlignmentModel(AlignmentConfig(vocab_size=len(vocab), region_dim=6, embed_dim=5, word_dim=4,
                                           hidden_dim=7, dropout=0.5)).train()
    regions = torch.randn(3, 4, 6)
    image_of = [0, 2, 1, 0, 2]
    unary, mask = word_region_scores(model, vocab, regions.numpy(), sentences, image_of, batch_size=2)
    assert model.training and all(m.training for m in model.modules())
    assert unary.dtype == np.float32 and unary.shape == (5, 5, 4) and mask.dtype == bool
    assert mask.sum(axis=1).tolist() == [5, 3, 1, 1, 4]          # an empty sentence is one <unk>
    with torch.no_grad():
        model.eval()
        ids, _ = vocab.encode_batch([t or ["<unk>"] for t in sentences], add_start=False, add_end=False)
        s, want_mask = model.embed_words(torch.from_numpy(ids))
        v = model.embed_regions(regions)[torch.tensor(image_of)]
        want = torch.einsum("lth,lmh->ltm", s, v)
    np.testing.assert_allclose(unary, want.numpy(), rtol=1e-6, atol=1e-6)
    assert np.array_equal(mask, want_mask.numpy())
    # A CPU tensor of regions reads the same, and so does the NumPy engine wrapping the model.
    from scenetalk.models.alignment import NumpyAlignment

    again, _ = word_region_scores(NumpyAlignment(model), vocab, regions, sentences, image_of, batch_size=2)
    assert np.array_equal(again, unary)
    assignment = align_sentences(unary, mask, 0.5, batch_size=2)
    assert assignment.dtype == np.int64 and (assignment[~mask] == -1).all() and (assignment[mask] >= 0).all()
    assert np.array_equal(assignment, align_sentences(torch.from_numpy(unary), torch.from_numpy(mask), 0.5))


@pytest.mark.slow
def test_corpus_and_region_generator_end_to_end(tmp_path, capsys):
    """features with regions -> alignment -> MRF snippets -> a generator trained on regions."""
    pytest.importorskip("torch", reason="trains models (the train extra)")
    import json

    from conftest import write_colour_squares

    from scenetalk.cli import main

    data = write_colour_squares(tmp_path, count=12)
    assert main(["features", str(data), "--images", str(tmp_path / "images"), "--regions",
                 "--out", str(tmp_path / "features"), "--quiet"]) == 0
    common = f"dataset: {data}\nfeatures: {tmp_path / 'features'}\n"
    (tmp_path / "align.yaml").write_text(common + f"""task: alignment
out: {tmp_path / 'align'}
train: {{model: {{embed_dim: 16, word_dim: 8, hidden_dim: 16, dropout: 0.0}}, min_count: 1, batch_size: 8,
         optimizer: adam, lr: 0.01, epochs: 4, eval_every: 10, checkpoint_every: 10}}
""")
    assert main(["train", str(tmp_path / "align.yaml"), "--quiet"]) == 0
    corpus = tmp_path / "snippets.json"
    assert main(["snippets", str(tmp_path / "align" / "best"), "--dataset", str(data), "--features",
                 str(tmp_path / "features"), "--out", str(corpus), "--quiet"]) == 0
    assert "snippets" in capsys.readouterr().out
    made = json.loads(corpus.read_text())
    assert made["beta"] == 0.75 and made["splits"] == ["train", "val"]
    # every word of every sentence is in exactly one snippet
    assert sum(s["end"] - s["start"] for s in made["snippets"]) == 12 * (3 + 4)
    assert main(["snippets", str(tmp_path / "align" / "best"), "--dataset", str(data), "--features",
                 str(tmp_path / "features"), "--splits", "train,test", "--out", str(tmp_path / "x.json")]) == 2
    assert "test split" in capsys.readouterr().err and not (tmp_path / "x.json").exists()
    (tmp_path / "regions.yaml").write_text(f"""task: regions
features: {tmp_path / 'features'}
snippets: {corpus}
out: {tmp_path / 'regions'}
train: {{model: {{type: mrnn, embed1_dim: 8, embed2_dim: 16, multimodal_dim: 16, dropout: 0.0}}, min_count: 1,
         batch_size: 8, optimizer: adam, lr: 0.01, epochs: 2, eval_every: 10, checkpoint_every: 10}}
""")
    assert main(["train", str(tmp_path / "regions.yaml"), "--quiet"]) == 0
    assert (tmp_path / "regions" / "best" / "model.safetensors").is_file()
