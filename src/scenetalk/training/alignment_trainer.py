"""Training the visual-semantic alignment model (Karpathy & Fei-Fei §3.1, §3.3).

Training pairs are (image, sentence) from the training split; a batch of 100 pairs is scored
all against all (``AlignmentModel.forward``) and ranked with the max-margin loss of eq. 9
(``training.losses.ranking_loss``), with SGD + momentum 0.9 as in the paper (Adam as an
option), dropout, and element-wise clipping at 5; ``hardest: true`` fine-tunes on VSE++'s
hardest negatives. The model is selected on the validation split's R@K sum (R@1+R@5+R@10,
both directions, ``retrieval.scoring.evaluate_alignment``), over all its images and sentences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scenetalk.checkpoint import load_alignment
from scenetalk.data.schema import CaptionDataset
from scenetalk.limits import MAX_WORDS
from scenetalk.metrics.retrieval import rsum
from scenetalk.models import build_alignment
from scenetalk.models.fields import Bounds
from scenetalk.retrieval.scoring import evaluate_alignment, sentence_set
from scenetalk.training.loop import LoopConfig, Trainer, training_vocabulary
from scenetalk.training.losses import ranking_loss


@dataclass
class AlignTrainConfig(LoopConfig):
    """An alignment model's training run."""
    model: dict[str, Any] = field(default_factory=dict)  # fields of AlignmentConfig (vocab and region size aside)
    init_from: str | None = None   # start from this alignment checkpoint's weights and vocabulary
    margin: float = 1.0
    hardest: bool = False          # VSE++'s hardest negative instead of eq. 9's sum over negatives
    min_count: int = 5
    max_words: int = 40
    optimizer: str = "sgd"
    lr: float = 0.01
    select_metric: str = "rsum"

    choices = {**LoopConfig.choices, "select_metric": ("rsum",)}
    ranges = {**LoopConfig.ranges, "margin": Bounds(0), "min_count": Bounds(1), "max_words": Bounds(1, MAX_WORDS)}

    def __post_init__(self):
        super().__post_init__()
        if self.model and self.init_from:
            raise ValueError("model comes from init_from's checkpoint; give one of model and init_from")


class AlignmentTrainer(Trainer):
    """Trains the alignment model on region features (N, 20, D) of a dataset's images."""

    curves = {"rsum": "R@1+5+10, both directions"}

    def __init__(self, config: AlignTrainConfig, dataset: CaptionDataset, regions: torch.Tensor,
                 row_of: dict[str, int], extractor_id: str, out_dir: str | Path,
                 progress: bool = True, on_step: Callable[[int], None] | None = None):
        super().__init__(config, out_dir, progress, on_step)
        self.regions, self.extractor_id = regions.float(), extractor_id
        torch.manual_seed(config.seed)
        if config.init_from:  # e.g. hardest negatives after a warm-up with eq. 9's sum (VSE++ §3.2)
            self.model, self.vocab, start_meta = load_alignment(config.init_from, expect_extractor_id=extractor_id)
            self.model_config = start_meta["model"]  # same extractor id (checked above), so same region size
        else:
            self.vocab = training_vocabulary(dataset, config.min_count)
            self.model_config = {**config.model, "vocab_size": len(self.vocab), "region_dim": self.regions.size(-1),
                                 "languages": len(self.vocab.languages)}
            self.model = build_alignment(self.model_config)
            if len(self.model.sides) > 1:  # each sentence goes through its language's side (eq. 3-6)
                self.model.word_language.copy_(torch.from_numpy(self.vocab.word_languages()))
        self.train = sentence_set(dataset, "train", self.vocab, row_of, config.max_words)
        self.val = sentence_set(dataset, "val", self.vocab, row_of, config.max_words)
        # the training sentences as tensors, indexed by the loop's batches of positions
        self.train_ids, self.train_rows = torch.from_numpy(self.train.ids), torch.from_numpy(self.train.image_rows)
        self.make_optimizer()

    @property
    def items_per_epoch(self) -> int:
        return len(self.train.ids)

    def batch_loss(self, idx: torch.Tensor) -> tuple[torch.Tensor, int, dict]:
        ids = self.train_ids[idx]
        ids = ids[:, : int((ids != 0).sum(1).max())]
        rows = self.train_rows[idx]
        scores = self.model(self.regions[rows], ids)
        loss = ranking_loss(scores, image_ids=rows, margin=self.config.margin, hardest=self.config.hardest)
        return loss, int((ids != 0).sum()), {}

    def evaluate(self) -> dict[str, float]:
        dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float32
        m = evaluate_alignment(self.model, self.regions, self.val, dtype)
        flat = {f"{'i2t' if d == 'image_to_text' else 't2i'}_{k}": v
                for d in ("image_to_text", "text_to_image") for k, v in m[d].items()}
        return {"rsum": rsum(m), **flat}

    def format_scores(self, scores: dict) -> str:
        return (f"R@1/5/10 image->text {scores['i2t_R@1']:.1f}/{scores['i2t_R@5']:.1f}/{scores['i2t_R@10']:.1f}, "
                f"text->image {scores['t2i_R@1']:.1f}/{scores['t2i_R@5']:.1f}/{scores['t2i_R@10']:.1f}, "
                f"rsum {scores['rsum']:.1f}")

    def checkpoint_meta(self) -> dict:
        return {"kind": "alignment", "model": self.model_config, "vocabulary": self.vocab.to_dict()}
