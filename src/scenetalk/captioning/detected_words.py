"""Words a captioner never learned from sentences, said when the detector sees the thing.

The zero-shot path of issue #14: a captioner extended with rows for the detector's class
names it lacks (``training.new_words.add_words_by_analogy``: each new row the mean of its
nearest known words' rows) must say such a word exactly when the photo shows the thing. The
detector (SSD-MobileNet-v2, 80 COCO classes) decides: when it finds a class with a score of at
least ``threshold``, decoding is constrained to say the class's word (constrained beam search,
Anderson et al. 2017, ``decoding.constrained_beam_search``); otherwise the new word is banned
and the caption is the base model's own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scenetalk.data.text import Vocabulary
from scenetalk.vision.detector import COCO_LABELS

#: the detector's classes whose name is one word, as a caption would say it
DETECTOR_WORDS: dict[int, str] = {cid: name for cid, name in COCO_LABELS.items() if " " not in name}
#: the score a detection needs before its word is required: chosen on Flickr8K val among
#: 0.3/0.5/0.7 by the held-out concepts' mention F1 (29.1/27.2/22.5; BENCHMARKS.md "Zero-shot:
#: the detector's words without photos"); lower lets more true photos say it than false ones
THRESHOLD = 0.3


def detector_words(vocab: Vocabulary) -> list[str]:
    """The detector's one-word class names this vocabulary lacks: what zero-shot can add."""
    return sorted({w for w in DETECTOR_WORDS.values() if w not in vocab})


def required_words(box_classes: Sequence[np.ndarray], box_scores: Sequence[np.ndarray], vocab: Vocabulary,
                   words: Sequence[str], threshold: float = THRESHOLD) -> list[list[int]]:
    """For each photo (its detections' COCO ids and scores: rows of two arrays, or one array
    per photo), the word id its caption must say: the best-scoring detection at or above
    ``threshold`` whose class word is one of ``words``; none when there is no such detection."""
    ids = {cid: vocab.stoi[w] for cid, w in DETECTOR_WORDS.items() if w in words and w in vocab.stoi}
    out: list[list[int]] = []
    for classes, scores in zip(box_classes, box_scores):
        found = [(float(s), ids[int(c)]) for c, s in zip(classes, scores) if int(c) in ids and s >= threshold]
        out.append([max(found)[1]] if found else [])
    return out


def banned_unless_required(required: Sequence[Sequence[int]], word_ids: Sequence[int]) -> list[list[int]]:
    """Per photo, the new words it may not say: all of them, but the one it must say."""
    return [[i for i in word_ids if i not in need] for need in required]


class DetectorGate:
    """What a captioner with detector words (its checkpoint's ``detector_words``: the words and
    the threshold) may and must say for each image: the detector runs on the images once."""

    def __init__(self, vocab: Vocabulary, words: Sequence[str], threshold: float):
        self.vocab, self.words, self.threshold = vocab, [w for w in words if w in vocab.stoi], float(threshold)
        self._detector = None

    def __call__(self, images) -> dict:
        """``required`` and ``forbidden`` word ids for ``caption_features``, per image (PIL, RGB)."""
        from scenetalk.vision.detector import create_detector

        if self._detector is None:
            self._detector = create_detector()
        found = [self._detector.detect(np.asarray(image.convert("RGB"))) for image in images]
        required = required_words([d.class_ids for d in found], [d.scores for d in found], self.vocab, self.words,
                                  self.threshold)
        return {"required": required,
                "forbidden": banned_unless_required(required, [self.vocab.stoi[w] for w in self.words])}
