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
