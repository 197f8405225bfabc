"""The caption-metric driver, on the official coco-caption code (needs Java)."""

import pytest

pytest.importorskip("pycocoevalcap", reason="coco-caption's scorers come with the train extra")

from scenetalk.metrics.captions import java_available, score_captions

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not java_available(), reason="Java not installed: the PTB tokenizer and METEOR need it")]

REFS = {
    "dog": ["A dog runs on the grass .", "A brown dog running .", "The dog is running in a field ."],
    "soccer": ["Two men play soccer .", "Men playing football on a field .", "Two people kick a ball ."],
    "girl": ["A girl in a pink dress .", "A little girl wearing pink .", "A child in pink stands ."],
}


def test_scores_rank_good_captions_above_bad_ones_and_spice_is_reported_unavailable():
    good = {"dog": "A dog runs on the grass.", "soccer": "Two men play soccer.", "girl": "A girl in a pink dress."}
    bad = {"dog": "two men play soccer", "soccer": "a girl in a pink dress", "girl": "a dog runs on the grass"}
    g, b = score_captions(good, REFS), score_captions(bad, REFS)
    # candidates equal to a reference after PTB tokenisation: BLEU-n is exactly 1
    for n in range(1, 5):
        assert g[f"BLEU-{n}"] == pytest.approx(1.0, abs=1e-6)
    for metric in ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"):
        assert g[metric] > b[metric], metric
    # CIDEr needs several images for its document frequencies; with three it is positive
    assert g["CIDEr-D"] > 1.0
    assert isinstance(g["SPICE"], (float, str))
    if isinstance(g["SPICE"], str):
        assert g["SPICE"].startswith("unavailable")


def test_mismatched_images_are_refused():
    with pytest.raises(ValueError, match="different images"):
        score_captions({"dog": "a dog"}, REFS, meteor=False)


def test_german_is_scored_on_our_tokens_with_germans_meteor():
    from scenetalk.captioning.evaluation import scoring_tokens

    refs = {"hund": ["Ein Hund rennt über eine Wiese.", "Ein brauner Hund läuft im Gras."],
            "kinder": ["Zwei Kinder spielen am Strand.", "Kinder spielen im Sand."],
            "frau": ["Eine Frau fährt Fahrrad.", "Eine Frau auf einem Rad."]}
    good = {"hund": "ein hund rennt über eine wiese", "kinder": "zwei kinder spielen am strand",
            "frau": "eine frau fährt fahrrad"}
    bad = {"hund": "zwei kinder spielen", "kinder": "eine frau fährt fahrrad", "frau": "ein hund rennt"}
    g = score_captions(good, refs, language="de", tokenize=scoring_tokens("de"))
    b = score_captions(bad, refs, language="de", tokenize=scoring_tokens("de"))
    assert g["BLEU-4"] == pytest.approx(1.0, abs=1e-6)   # equal to a reference after our tokens
    assert isinstance(g["METEOR"], float) and g["METEOR"] > b["METEOR"]
    assert g["SPICE"] == "unavailable (English only)"
    with pytest.raises(ValueError, match="PTB tokenizer is English"):
        score_captions(good, refs, language="de")


def test_chinese_is_scored_on_jieba_words_or_characters_and_meteor_is_never_faked():
    from scenetalk.captioning.evaluation import scoring_tokens

    refs = {"a": ["一只狗在草地上奔跑。", "一条棕色的狗在草地上跑"], "b": ["两个孩子在沙滩上玩耍", "孩子们在海滩上玩"]}
    cands = {"a": "一只狗在草地上奔跑", "b": "孩子们在海滩上玩"}
    words = score_captions(cands, refs, language="zh", tokenize=scoring_tokens("zh"))
    chars = score_captions(cands, refs, language="zh", tokenize=scoring_tokens("zh", "char"))
    assert words["BLEU-4"] == pytest.approx(1.0, abs=1e-6) and chars["BLEU-4"] == pytest.approx(1.0, abs=1e-6)
    assert words["METEOR"].startswith("unavailable: METEOR 1.5 has no resources for 'zh'")
    wrong = {"a": "孩子们在海滩上玩", "b": "一只狗在草地上奔跑"}
    assert score_captions(wrong, refs, language="zh", tokenize=scoring_tokens("zh"))["BLEU-1"] < words["BLEU-1"]


def test_human_agreement_scores_each_reference_against_the_others():
    from scenetalk.captioning.evaluation import human_agreement
    from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence
    from scenetalk.data.text import tokenize

    def image(name, texts, k):
        return ImageRecord(name, "val", k, [Sentence(t, tokenize(t), "en", 10 * k + j) for j, t in enumerate(texts)])

    same = CaptionDataset("same", [image(f"{k}.jpg", [f"a dog runs on grass number {k}"] * 3, k) for k in range(3)])
    scores = human_agreement(same, "val", meteor=False)
    assert scores["BLEU-4"] == pytest.approx(1.0, abs=1e-6)     # people who all write the same sentence
    varied = CaptionDataset("varied", [image(f"{k}.jpg", REFS[n], k) for k, n in enumerate(REFS)])
    assert human_agreement(varied, "val", meteor=False)["BLEU-4"] < 1.0
