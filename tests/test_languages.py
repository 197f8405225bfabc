"""Captions in Chinese and German (issue #17): segmentation kept with the vocabulary, text in
the language's own form, scoring per language, the language switch and its errors."""

import json

import pytest

from scenetalk.data.text import Vocabulary, tokenize
from scenetalk.errors import ScenetalkError
from scenetalk.weights import CAPTION_LANGUAGES, check_language, shipped_captioner, shipped_reranker


def test_the_vocabulary_keeps_how_chinese_was_cut(tmp_path):
    chars = Vocabulary.build([tokenize("一只狗在草地上奔跑", "zh", "char")], min_count=1, language="zh",
                             zh_mode="char")
    assert chars.zh_mode == "char"
    assert chars.tokenize("一只狗") == ["一", "只", "狗"]
    chars.save(tmp_path / "v.json")
    again = Vocabulary.load(tmp_path / "v.json")
    assert again.zh_mode == "char" and again.tokenize("草地") == ["草", "地"]
    words = Vocabulary.build([tokenize("一只狗在草地上奔跑", "zh")], min_count=1, language="zh")
    assert words.zh_mode == "jieba" and "草地" in words.tokenize("一只狗在草地上奔跑")
    english = Vocabulary.build([["a", "dog"]], min_count=1)
    assert english.zh_mode is None and "zh_mode" not in english.to_dict()
    with pytest.raises(ValueError, match="segmentation"):
        Vocabulary(["a"], language="zh", zh_mode="pinyin")


def test_captions_are_written_as_the_language_writes_them():
    assert Vocabulary(["狗"], language="zh").join(["一只", "狗", "在", "跑"]) == "一只狗在跑"
    assert Vocabulary(["hund"], language="de").join(["ein", "hund"]) == "ein hund"
    assert Vocabulary(["dog"]).join(["a", "dog"]) == "a dog"


def test_language_switch_names_the_choices():
    assert set(CAPTION_LANGUAGES) == {"en", "zh", "de"}
    assert check_language("zh") == "zh"
    for bad in ("fr", "ZH", None, 3):
        with pytest.raises(ScenetalkError, match=r"lang \(--lang\) must be one of en \(English\), zh"):
            check_language(bad)
    assert shipped_captioner("en").name == "captioner-updown"   # the default English captioner
    assert shipped_reranker("en").name == "captioner"           # the m-RNN-LSTM: re-ranks, extends
    assert shipped_captioner("zh") == shipped_reranker("zh")
    # the German captioner attends over the grid: no shipped German captioner reads one vector per
    # photo as an index holds them, and asking for one says so in a line
    with pytest.raises(ScenetalkError, match="German captioner reads a grid of cells"):
        shipped_reranker("de")


def test_load_refuses_an_unknown_language_before_loading_anything():
    import scenetalk

    with pytest.raises(ScenetalkError, match="not 'fr'"):
        scenetalk.load(lang="fr")


@pytest.mark.parametrize("lang", ["zh", "de"])
def test_shipped_captioners_of_other_languages_say_what_they_write(lang):
    folder = shipped_captioner(lang)
    vocab = json.loads((folder / "config.json").read_text(encoding="utf-8"))["vocabulary"]
    assert vocab["language"] == lang
    assert folder.name == f"captioner-{lang}"


def test_cli_refuses_an_unknown_language_in_one_line(capsys):
    from scenetalk.cli import main

    assert main(["caption", "photo.jpg", "--lang", "klingon"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("scenetalk caption: error: lang (--lang) must be one of")


def test_training_config_zh_mode_is_checked(tmp_path):
    pytest.importorskip("torch")
    from scenetalk.training.config import trainer_for

    (tmp_path / "features").mkdir()
    cfg = {"dataset": "flickr8k-cn", "zh_mode": "pinyin", "features": str(tmp_path / "features"),
           "out": str(tmp_path / "run"), "train": {"model": {"type": "mrnn"}}}
    with pytest.raises(ScenetalkError, match="zh_mode must be one of jieba, char, not 'pinyin'"):
        trainer_for(cfg)


# --- one model for three languages: tagged tokens, merged datasets, detection -----------------

def _dataset(name, language, texts_by_image, split="train"):
    from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence

    images = [ImageRecord(image, split, k, [Sentence(t, tokenize(t, language), language, j)
                                            for j, t in enumerate(texts)])
              for k, (image, texts) in enumerate(texts_by_image.items())]
    return CaptionDataset(name, images, sources=[f"{name}.txt"], zh_mode="jieba" if language == "zh" else None)


def test_merged_languages_tag_tokens_and_keep_the_split():
    pytest.importorskip("torch", reason="training_vocabulary is in the training package (the train extra)")
    from scenetalk.data.multilingual import merge_languages
    from scenetalk.training.loop import training_vocabulary

    merged = merge_languages({
        "en": _dataset("en", "en", {"1.jpg": ["a dog runs in the grass"], "2.jpg": ["two children in a pool"]}),
        "zh": _dataset("zh", "zh", {"1.jpg": ["一只狗在草地上奔跑"]}),
        "de": _dataset("de", "de", {"2.jpg": ["zwei kinder in einem pool"], "3.jpg": ["ein mann"]}),
    })
    assert [im.relpath for im in merged.images] == ["1.jpg", "2.jpg", "3.jpg"]
    one = merged.images[0]
    assert [s.language for s in one.sentences] == ["en", "zh"]
    assert one.sentences[1].tokens[:2] == ["zh:一只", "zh:狗"]
    assert len({s.sentence_id for s in merged.sentences()}) == 5
    vocab = training_vocabulary(merged, min_count=1)
    assert vocab.language == "multi" and vocab.languages == ["de", "en", "zh"]
    assert "en:in" in vocab and "de:in" in vocab          # the same spelling, two words
    assert vocab.tokenize("zwei Kinder") == ["de:zwei", "de:kinder"]     # detected
    assert vocab.tokenize("Kinder", "en") == ["en:kinder"]                # given
    with pytest.raises(ScenetalkError, match="lang 'fr'"):
        vocab.tokenize("un chien", "fr")


def test_one_language_of_a_merged_dataset():
    from scenetalk.data.multilingual import merge_languages, only_language
    from scenetalk.errors import DataError

    merged = merge_languages({"en": _dataset("en", "en", {"1.jpg": ["a dog"], "2.jpg": ["a cat"]}),
                              "de": _dataset("de", "de", {"2.jpg": ["eine katze"]})})
    german = only_language(merged, "de")
    assert [im.relpath for im in german.images] == ["2.jpg"]
    assert [s.tokens for s in german.sentences()] == [["de:eine", "de:katze"]]
    with pytest.raises(DataError, match="has no 'zh' sentences"):
        only_language(merged, "zh")


def test_merging_refuses_photos_whose_splits_disagree():
    from scenetalk.data.multilingual import merge_languages
    from scenetalk.errors import DataError

    with pytest.raises(DataError, match="1.jpg is in split 'test' here but 'train'"):
        merge_languages({"en": _dataset("en", "en", {"1.jpg": ["a dog"]}),
                         "de": _dataset("de", "de", {"1.jpg": ["ein hund"]}, split="test")})


@pytest.mark.parametrize("text, language", [
    ("一只狗在草地上奔跑", "zh"), ("两个孩子在沙滩上玩耍。", "zh"),
    ("Ein Hund rennt über eine Wiese", "de"), ("Zwei Kinder spielen im Wasser", "de"), ("Mädchen", "de"),
    ("a dog runs on the beach", "en"), ("Two men play soccer", "en"), ("dog", "en"),
])
def test_detect_language(text, language):
    from scenetalk.data.text import detect_language

    assert detect_language(text) == language


@pytest.mark.parametrize("text, script", [("Собака бежит по траве", "Cyrillic"), ("犬が走っている", "Hiragana"),
                                          ("개가 달린다", "Hangul"), ("كلب يجري", "Arabic")])
def test_a_sentence_in_another_script_is_one_clear_line(text, script):
    from scenetalk.data.text import detect_language

    with pytest.raises(ScenetalkError, match=f"written in {script} script; this model reads English, Chinese, German"):
        detect_language(text)


def test_a_language_the_model_does_not_read_is_named():
    from scenetalk.data.text import detect_language

    with pytest.raises(ScenetalkError, match="reads as Chinese; this model reads English, German"):
        detect_language("一只狗", ["en", "de"])


def test_one_language_models_refuse_another_language_or_script():
    english = Vocabulary.build([["a", "dog"]], min_count=1)
    with pytest.raises(ScenetalkError, match="'Собака' is written in Cyrillic script; this model reads English"):
        english.tokenize("Собака")
    with pytest.raises(ScenetalkError, match="written in Chinese characters; this model reads English"):
        english.tokenize("一只狗")
    with pytest.raises(ScenetalkError, match="reads English only"):
        english.tokenize("ein hund", "de")
    assert english.tokenize("ein hund") == ["ein", "hund"]   # Latin script: unknown words, reported as today
    chinese = Vocabulary(["狗"], language="zh")
    assert chinese.tokenize("一只狗") == ["一只", "狗"]


def test_unseen_words_are_placed_for_english_words_only():
    import numpy as np

    from scenetalk.retrieval.unseen_words import UnseenWords

    vocab = Vocabulary(["en:dog", "en:cat", "zh:狗", "de:hund"], language="multi")
    unseen = UnseenWords(np.zeros((len(vocab), 4), np.float32), vocab)
    assert unseen.known == ["en:dog", "en:cat"]
    assert unseen.place(["zh:猫", "de:katze"]) == []


def test_german_captions_capitalise_nouns_as_the_training_sentences_do(tmp_path):
    raw = ["Ein Hund rennt über die Wiese.", "Der Hund spielt im Gras", "Zwei Hunde im Gras", "ein hund"]
    tokens = [tokenize(r, "de") for r in raw]
    vocab = Vocabulary.build(tokens, min_count=1, language="de")
    vocab.learn_forms(raw, tokens)
    assert vocab.forms["hund"] == "Hund" and vocab.forms["gras"] == "Gras"
    assert "rennt" not in vocab.forms and "der" not in vocab.forms      # a first word is capitalised anyway
    assert vocab.join(["ein", "hund", "spielt", "im", "gras"]) == "Ein Hund spielt im Gras"
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json").join(["der", "hund"]) == "Der Hund"
    english = Vocabulary.build([["a", "dog"]], min_count=1)
    english.learn_forms(["A Dog"], [["a", "dog"]])
    assert english.forms == {} and english.join(["a", "dog"]) == "a dog"
