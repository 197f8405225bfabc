"""The training objectives, in one place."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def caption_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, pad_id: int = 0) -> tuple[torch.Tensor, int]:
    """Mean negative log-likelihood of the target words (Karpathy & Fei-Fei §3.2: "maximize
    the log probability assigned to the target labels"), padding excluded.

    logits (B, T, V), targets (B, T). Returns the mean loss and the number of words scored;
    exp(mean loss) is the per-word perplexity.
    """
    mask = targets != pad_id
    n = int(mask.sum())
    loss = F.cross_entropy(logits[mask], targets[mask], reduction="mean") if n else logits.sum() * 0
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
    token_lp = torch.log_softmax(logits, dim=-1).gather(2, targets.unsqueeze(2)).squeeze(2)
    sentence_lp = (token_lp * (targets != pad_id)).sum(dim=1)
    return -(advantage * sentence_lp).mean()
