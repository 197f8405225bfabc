"""The training reward's CIDEr-D equals coco-caption's when given the same references."""

import random

import numpy as np
import pytest

pytest.importorskip("pycocoevalcap", reason="coco-caption's scorers come with the train extra")

from pycocoevalcap.cider.cider import Cider

from scenetalk.metrics.cider import CiderD

WORDS = "a the dog dogs man woman runs run on in grass beach ball red blue shirt water jumps".split()


def sentence(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))


@pytest.mark.parametrize("seed", range(3))
def test_equals_pycocoevalcap_on_random_corpora(seed):
    rng = random.Random(seed)
    refs = [[sentence(rng) for _ in range(rng.randint(1, 6))] for _ in range(30)]
    cands = [sentence(rng) for _ in refs]
    cands[0] = refs[0][0]  # an exact copy of a reference scores high
    _, expected = Cider().compute_score({i: r for i, r in enumerate(refs)}, {i: [c] for i, c in enumerate(cands)})
    got = CiderD(refs).score(cands, refs)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert got[0] > np.median(got)


def test_document_frequencies_are_fixed_by_the_corpus_not_the_batch():
    corpus = [["a dog runs"], ["a dog jumps"], ["a man runs"], ["the red ball"]]
    cider = CiderD(corpus)
    alone = cider.score(["a dog runs"], [corpus[0]])
    batch = cider.score(["a dog runs", "a man runs"], [corpus[0], corpus[2]])
    assert alone[0] == pytest.approx(batch[0])
