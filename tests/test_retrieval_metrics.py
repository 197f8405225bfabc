"""Retrieval metrics against a brute-force reference (sort every list, find the answer),
including ties and images with fewer or more than five sentences."""

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

from scenetalk.metrics.retrieval import coco_1k, retrieval_metrics, rsum
from scenetalk.training.losses import ranking_loss


def brute_force(scores, sentence_image):
    """Sort each query's list with ties broken against the correct items."""
    n_img, n_sent = len(scores), len(sentence_image)
    i2t, t2i = [], []
    for i in range(n_img):
        order = sorted(range(n_sent), key=lambda s: (-scores[i][s], sentence_image[s] == i))
        i2t.append(next(r for r, s in enumerate(order, 1) if sentence_image[s] == i))
    for s in range(n_sent):
        order = sorted(range(n_img), key=lambda i: (-scores[i][s], i == sentence_image[s]))
        t2i.append(order.index(sentence_image[s]) + 1)

    def summary(ranks):
        return {"R@1": 100 * np.mean([r <= 1 for r in ranks]), "R@5": 100 * np.mean([r <= 5 for r in ranks]),
                "R@10": 100 * np.mean([r <= 10 for r in ranks]), "median_rank": float(np.median(ranks)),
                "mean_rank": float(np.mean(ranks))}
    return {"image_to_text": summary(i2t), "text_to_image": summary(t2i)}


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_with_ties_and_uneven_sentence_counts(seed):
    rng = random.Random(seed)
    n_img = rng.randint(3, 30)
    sentence_image = [i for i in range(n_img) for _ in range(rng.randint(1, 8))]  # 1..8 sentences each
    rng.shuffle(sentence_image)
    # small integer scores: many ties
    scores = [[rng.randint(0, 4) for _ in sentence_image] for _ in range(n_img)]
    got = retrieval_metrics(torch.tensor(scores, dtype=torch.float), torch.tensor(sentence_image))
    want = brute_force(scores, sentence_image)
    for d in ("image_to_text", "text_to_image"):
        assert got[d] == pytest.approx(want[d]), d


def test_perfect_and_constant_scorers():
    sentence_image = torch.arange(4).repeat_interleave(5)
    perfect = (sentence_image[None, :] == torch.arange(4)[:, None]).float()
    m = retrieval_metrics(perfect, sentence_image)
    assert m["image_to_text"]["R@1"] == 100 and m["text_to_image"]["median_rank"] == 1
    assert rsum(m) == 600
    constant = retrieval_metrics(torch.zeros(4, 20), sentence_image)  # ties count against the model
    assert constant["image_to_text"]["R@1"] == 0 and constant["text_to_image"]["mean_rank"] == 4


def test_coco_1k_is_the_mean_over_folds():
    torch.manual_seed(0)
    sentence_image = torch.arange(10).repeat_interleave(5)
    scores = torch.randn(10, 50)
    folds = coco_1k(scores, sentence_image, folds=2)
    a = retrieval_metrics(scores[:5, :25], sentence_image[:25])
    b = retrieval_metrics(scores[5:, 25:], sentence_image[25:] - 5)
    assert folds["image_to_text"]["R@5"] == pytest.approx((a["image_to_text"]["R@5"] + b["image_to_text"]["R@5"]) / 2)


def test_every_image_needs_a_sentence():
    with pytest.raises(ValueError, match="at least one sentence"):
        retrieval_metrics(torch.zeros(3, 2), torch.tensor([0, 1]))


def test_ranking_loss_is_equation_9_written_out():
    torch.manual_seed(1)
    S = torch.randn(4, 4)
    want = 0.0
    for k in range(4):
        for l in range(4):
            if l != k:
                want += max(0.0, float(S[k, l] - S[k, k] + 1)) + max(0.0, float(S[l, k] - S[k, k] + 1))
    assert float(ranking_loss(S)) == pytest.approx(want / 4)
    hardest = sum(max(max(0.0, float(S[k, l] - S[k, k] + 1)) for l in range(4) if l != k)
                  + max(max(0.0, float(S[l, k] - S[k, k] + 1)) for l in range(4) if l != k) for k in range(4))
    assert float(ranking_loss(S, hardest=True)) == pytest.approx(hardest / 4)
    # two sentences of the same image are not negatives of each other
    same = ranking_loss(S, image_ids=torch.tensor([0, 0, 1, 2]))
    assert float(same) < want / 4
