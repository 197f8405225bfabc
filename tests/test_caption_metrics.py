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
