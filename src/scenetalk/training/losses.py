"""The training objectives, in one place."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def caption_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, pad_id: int = 0,
                          label_smoothing: float = 0.0) -> tuple[torch.Tensor, int]:
    """Mean negative log-likelihood of the target words (Karpathy & Fei-Fei §3.2: "maximize
    the log probability assigned to the target labels"), padding excluded.

    logits (B, T, V), targets (B, T). Returns the mean loss and the number of words scored;
    exp(mean loss) is the per-word perplexity. ``label_smoothing`` ε (Szegedy et al. 2016,
    §7) trains against (1 − ε)·one-hot + ε/V: the loss is (1 − ε)·NLL + ε·(mean over the
    vocabulary of −log p); 0 is the plain likelihood (and what perplexity is measured with).
    """
    mask = targets != pad_id
    n = int(mask.sum())
    logits = logits.float()  # softmax in float32 even when the model ran in bfloat16
    loss = (F.cross_entropy(logits[mask], targets[mask], reduction="mean", label_smoothing=label_smoothing)
            if n else logits.sum() * 0)
    return loss, n


def self_critical_loss(logits: torch.Tensor, targets: torch.Tensor, rewards: torch.Tensor,
                       pad_id: int = 0) -> torch.Tensor:
    """REINFORCE with a baseline for sampled captions (Rennie et al. 2017, eq. 7-9):

        ∇L = -(r(w^s) - b) ∇ log p(w^s)

    with, as the baseline b of each sample, the mean reward of the other samples of the same
    image (Luo 2020), which needs no extra greedy decode and is as good.

    logits (B·K, T, V) of the sampled captions (teacher-forced), targets (B·K, T) their words
    (<end> included when sampled, padding after), rewards (B, K). Returns the mean over
    samples of -(advantage · sentence log-probability).
    """
    k = rewards.size(1)
    baseline = (rewards.sum(dim=1, keepdim=True) - rewards) / (k - 1)
    advantage = (rewards - baseline).reshape(-1)
    token_lp = torch.log_softmax(logits.float(), dim=-1).gather(2, targets.unsqueeze(2)).squeeze(2)
    sentence_lp = (token_lp * (targets != pad_id)).sum(dim=1)
    return -(advantage * sentence_lp).mean()


def ranking_loss(scores: torch.Tensor, image_ids: torch.Tensor | None = None, margin: float = 1.0,
                 hardest: bool = False) -> torch.Tensor:
    """Karpathy & Fei-Fei's max-margin structured loss (eq. 9), per image-sentence pair:

        C = Σ_k [ Σ_l max(0, S_kl - S_kk + 1)  +  Σ_l max(0, S_lk - S_kk + 1) ]

    scores (N, N): row k is image k, column l sentence l, and pair (k, k) belongs together.
    ``image_ids`` (N,) says which pairs show the same image: a batch may hold two sentences
    of one image, and those are not negatives of each other. ``hardest=True`` keeps only
    the largest violation in each row and column (VSE++, Faghri et al. 2018) instead of the
    sum. Returned divided by N, so the scale does not grow with the batch.
    """
    n = scores.size(0)
    scores = scores.float()
    positive = scores.diag()
    ids = torch.arange(n, device=scores.device) if image_ids is None else image_ids
    negatives = ids[:, None] != ids[None, :]
    rank_sentences = (margin + scores - positive[:, None]).clamp(min=0) * negatives    # image k vs sentences l
    rank_images = (margin + scores - positive[None, :]).clamp(min=0) * negatives       # sentence l vs images k
    if hardest:
        return (rank_sentences.max(dim=1).values.sum() + rank_images.max(dim=0).values.sum()) / n
    return (rank_sentences.sum() + rank_images.sum()) / n
