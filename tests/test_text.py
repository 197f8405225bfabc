import json

import pytest

from scenetalk.data.text import Vocabulary, normalize, tokenize


def test_english_rule_matches_karpathy_tokens():
    assert tokenize("A boy wearing a red t-shirt is running .") == [
        "a", "boy", "wearing", "a", "red", "t", "shirt", "is", "running"]
    # apostrophes are removed inside words, as in Karpathy's released tokens
    assert tokenize("The dog's ball") == ["the", "dogs", "ball"]
    assert tokenize("Race dog #2, ahead!") == ["race", "dog", "2", "ahead"]
    assert tokenize("under_score") == ["under", "score"]


def test_german_umlauts_survive():
    assert tokenize("Zwei Männer betrachten etwas im Garten.", "de") == [
        "zwei", "männer", "betrachten", "etwas", "im", "garten"]
    assert tokenize("Straße, Fußgänger!", "de") == ["straße", "fußgänger"]


def test_chinese_characters_and_words():
    sentence = "一个穿着泳装的女人躺在海水里。"
    chars = tokenize(sentence, "zh", zh_mode="char")
    assert chars == list("一个穿着泳装的女人躺在海水里")
    words = tokenize(sentence, "zh", zh_mode="jieba")
    assert "".join(words) == "一个穿着泳装的女人躺在海水里"
    assert len(words) < len(chars)  # jieba joins characters into words
    assert "女人" in words
    # Latin runs inside Chinese stay whole in character mode; full-width digits are normalised
    assert tokenize("两只dog在玩１２", "zh", zh_mode="char") == ["两", "只", "dog", "在", "玩", "12"]
    with pytest.raises(ValueError):
        tokenize("你好", "zh", zh_mode="nope")


def test_vocabulary_threshold_order_and_specials():
    sents = [["a", "dog"], ["a", "cat"], ["a", "dog", "runs"]]
    v = Vocabulary.build(sents, min_count=2)
    assert v.itos == ["<pad>", "<start>", "<end>", "<unk>", "a", "dog"]
    assert v.num_words == 2 and len(v) == 6
    assert v.encode(["a", "cat"]) == [4, v.unk_id]
    assert v.encode(["dog"], add_start=True, add_end=True) == [v.start_id, 5, v.end_id]
    assert v.decode([v.start_id, 4, 5, v.end_id, 4]) == ["a", "dog"]
    assert v.decode([4, v.end_id], strip_specials=False) == ["a", "<end>"]


def test_vocabulary_batches_and_json_round_trip(tmp_path):
    v = Vocabulary.build([["a", "b", "c"]] * 5, min_count=5, language="de")
    ids, lengths = v.encode_batch([["a"], ["a", "b", "zzz"]])
    assert ids.tolist() == [[1, 4, 2, 0, 0], [1, 4, 5, 3, 2]]
    assert lengths.tolist() == [3, 5]
    assert v.decode_batch(ids) == [["a"], ["a", "b", "<unk>"]]
    path = tmp_path / "vocab.json"
    v.save(path)
    w = Vocabulary.load(path)
    assert w == v and w.language == "de" and w.min_count == 5 and w.counts == {"a": 5, "b": 5, "c": 5}
    assert json.loads(path.read_text())["words"] == ["a", "b", "c"]
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind


def test_vocabulary_rejects_bad_input():
    with pytest.raises(ValueError):
        Vocabulary.build([["a"]], min_count=0)
    with pytest.raises(ValueError):
        Vocabulary(["a", "a"])
    with pytest.raises(ValueError):
        Vocabulary(["<unk>"])


def test_normalize_is_unicode_aware():
    assert normalize("ÄÖÜ-Test") == "äöü test"
