"""Training caption generators on cached image features (Karpathy & Fei-Fei §3.3, §6.5).

The paper's recipe: RMSprop (Adam as an option), element-wise gradient clipping at 5,
softmax biases initialised to the log unigram frequencies of the training words, dropout on
every non-recurrent connection (inside the models). ``objective: scst`` fine-tunes a trained
generator by self-critical sequence training with a CIDEr-D reward (Rennie et al. 2017).
The model is selected on the validation split (greedy captions' CIDEr-D or BLEU-4, or
perplexity). The loop itself (batches, checkpoints, resume) is ``training.loop``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scenetalk.captioning.decoding import sample
from scenetalk.captioning.examples import CaptionExamples, build_examples
from scenetalk.data.schema import CaptionDataset
from scenetalk.data.text import Vocabulary
from scenetalk.limits import MAX_BEAM, MAX_CAPTION_WORDS, MAX_WORDS
from scenetalk.models import build_generator, eval_mode
from scenetalk.models.fields import Bounds
from scenetalk.models.generator import CaptionGenerator, TorchSteps
from scenetalk.training.loop import LoopConfig, Trainer, training_vocabulary
from scenetalk.training.losses import caption_cross_entropy, self_critical_loss


@dataclass
class TrainConfig(LoopConfig):
    """A caption generator's training run."""
    model: dict[str, Any] | None = None  # {"type": ..., **fields}; taken from init_from when that is set
    objective: str = "xe"          # "xe": cross-entropy on the references; "scst": self-critical CIDEr-D
    init_from: str | None = None   # start from this checkpoint's weights and vocabulary (scst needs one)
    scst_samples: int = 5          # sampled captions per image; each one's baseline is the others' mean
    scst_max_len: int = 16
    min_count: int = 5
    max_words: int = 20            # longer training sentences are cut (after this many words)
    select_metric: str = "cider"   # "cider" or "bleu4" (greedy captions on val), or "perplexity"
    val_images: int | None = None  # score only the first N validation images (faster)
    label_smoothing: float = 0.0   # ε of the cross-entropy's smoothed targets (losses.caption_cross_entropy)

    choices = {**LoopConfig.choices, "select_metric": ("cider", "bleu4", "perplexity"), "objective": ("xe", "scst")}
    ranges = {**LoopConfig.ranges, "scst_samples": Bounds(1, MAX_BEAM), "scst_max_len": Bounds(1, MAX_CAPTION_WORDS),
              "min_count": Bounds(1), "max_words": Bounds(1, MAX_WORDS), "val_images": Bounds(1),
              "label_smoothing": Bounds(0.0, 0.5)}

    def __post_init__(self):
        super().__post_init__()
        if self.model is None and self.init_from is None:
            raise ValueError("give the model (model: {type: ...}) or a checkpoint to start from (init_from)")
        if self.model is not None and self.init_from is not None:
            raise ValueError("model comes from init_from's checkpoint; give one of model and init_from")
        if self.objective == "scst" and (self.init_from is None or self.scst_samples < 2):
            raise ValueError("objective scst fine-tunes a trained model: set init_from, and scst_samples >= 2")


def log_unigram_bias(examples: CaptionExamples, vocab_size: int) -> torch.Tensor:
    """Karpathy & Fei-Fei §6.5: start the softmax biases at the log frequency of each word
    (END included) in the training targets, so the untrained model already predicts words
    at their chance rate. Words never seen as targets get the frequency of half a count."""
    targets = examples.ids[:, 1:]
    counts = torch.bincount(targets[targets != Vocabulary.pad_id], minlength=vocab_size).float()
    counts = counts.clamp(min=0.5)
    return (counts / counts.sum()).log()


@torch.no_grad()
def perplexity(model: CaptionGenerator, features: torch.Tensor, examples: CaptionExamples, pad_id: int,
               batch_size: int = 250) -> float:
    """Per-word perplexity of the examples' sentences (<end> included), as the papers report it."""
    total, words = 0.0, 0
    with eval_mode(model):
        for chunk in torch.arange(len(examples.ids)).split(batch_size):
            ids = examples.ids[chunk]
            length = int((ids != pad_id).sum(1).max())
            logits = model(features[examples.image_rows[chunk]], ids[:, : length - 1])
            loss, n = caption_cross_entropy(logits, ids[:, 1:length], pad_id)
            total += float(loss) * n
            words += n
    return math.exp(total / max(words, 1))


@torch.no_grad()
def evaluate_generator(model: CaptionGenerator, features: torch.Tensor, examples: CaptionExamples,
                       vocab: Vocabulary, max_images: int | None = None, batch_size: int = 250) -> dict[str, float]:
    """Validation perplexity (all sentences), and CIDEr-D and BLEU-4 of greedy captions (our
    tokens, no PTB step: selection needs a fast, consistent score; reported numbers use the
    full protocol)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    from scenetalk.captioning.captioner import caption_features

    rows = sorted(examples.references)[:max_images]
    with eval_mode(model):
        caps = caption_features(model, vocab, features[torch.tensor(rows)], beam_size=1, batch_size=batch_size)
    captions = {r: " ".join(c[0].words) or "<empty>" for r, c in zip(rows, caps)}  # the references' form
    refs, hyps = {r: examples.references[r] for r in rows}, {r: [captions[r]] for r in rows}
    cider, _ = Cider().compute_score(refs, hyps)
    bleu, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
    return {"perplexity": perplexity(model, features, examples, vocab.pad_id, batch_size), "cider": float(cider),
            "bleu4": float(bleu[3])}


class CaptionTrainer(Trainer):
    """Trains one caption generator (cross-entropy, or self-critical from a trained one)."""

    curves = {"cider": "CIDEr-D (greedy captions)", "bleu4": "BLEU-4 (greedy captions)"}

    def __init__(self, config: TrainConfig, dataset: CaptionDataset, features: torch.Tensor,
                 row_of: dict[str, int], extractor_id: str, out_dir: str | Path,
                 progress: bool = True, on_step: Callable[[int], None] | None = None):
        super().__init__(config, out_dir, progress, on_step)
        self.features, self.extractor_id = features.float(), extractor_id
        torch.manual_seed(config.seed)
        if config.init_from:
            from scenetalk.checkpoint import load_generator

            self.model, self.vocab, start_meta = load_generator(config.init_from, expect_extractor_id=extractor_id)
            self.model_config = start_meta["model"]
        else:
            self.vocab = training_vocabulary(dataset, config.min_count)
            self.model_config = {**config.model, "vocab_size": len(self.vocab), "image_dim": self.features.size(-1)}
            self.model = build_generator(self.model_config)
        self.train = build_examples(dataset, "train", self.vocab, row_of, config.max_words)
        self.val = build_examples(dataset, "val", self.vocab, row_of, config.max_words)
        self.train_images = torch.tensor(sorted(self.train.references))
        if not config.init_from:
            with torch.no_grad():
                self.model.output_bias().copy_(log_unigram_bias(self.train, len(self.vocab)))
        self.reward = None
        if config.objective == "scst":
            from scenetalk.metrics.cider import CiderD

            self.reward = CiderD([self.train.references[int(r)] for r in self.train_images])
        self.make_optimizer()

    def checkpoint_meta(self) -> dict:
        return {"kind": "caption_generator", "model": self.model_config, "vocabulary": self.vocab.to_dict()}

    def evaluate(self) -> dict[str, float]:
        return evaluate_generator(self.model, self.features, self.val, self.vocab, self.config.val_images)

    def format_scores(self, scores: dict) -> str:
        return (f"perplexity {scores['perplexity']:.2f}, CIDEr-D (greedy) {scores['cider']:.3f}, "
                f"BLEU-4 {scores['bleu4']:.3f}")

    # -- the objectives -------------------------------------------------------------------
    @property
    def items_per_epoch(self) -> int:
        """An epoch visits every training sentence (xe) or every training image (scst)."""
        return len(self.train.ids) if self.config.objective == "xe" else len(self.train_images)

    def batch_loss(self, idx: torch.Tensor) -> tuple[torch.Tensor, int, dict]:
        return self.xe_loss(idx) if self.config.objective == "xe" else self.scst_loss(idx)

    def loss_weight(self, idx: torch.Tensor, n: int) -> float:
        return n if self.config.objective == "xe" else len(idx)   # SCST: a mean over images' samples

    def xe_loss(self, idx: torch.Tensor) -> tuple[torch.Tensor, int, dict]:
        ids = self.train.ids[idx]
        length = int((ids != self.vocab.pad_id).sum(1).max())
        ids = ids[:, :length].to(self.device)
        logits = self.model(self.features[self.train.image_rows[idx]].to(self.device), ids[:, : length - 1])
        loss, n = caption_cross_entropy(logits, ids[:, 1:length], self.vocab.pad_id, self.config.label_smoothing)
        return loss, n, {}

    def scst_loss(self, idx: torch.Tensor) -> tuple[torch.Tensor, int, dict]:
        """Sample ``scst_samples`` captions per image (dropout off, so the gradient is that of
        the sampling policy), score them with CIDEr-D against the image's references, and
        weight each one's log-probability by its reward minus the others' mean."""
        cfg, vocab, k = self.config, self.vocab, self.config.scst_samples
        rows = self.train_images[idx]
        image = self.features[rows].repeat_interleave(k, dim=0).to(self.device)
        generator = np.random.default_rng(cfg.seed * 1_000_003 + self.step)
        with eval_mode(self.model):
            steps = TorchSteps(self.model)
            samples = sample(steps, steps.init_state(image.cpu().numpy()), len(image), vocab.start_id,
                             vocab.end_id, max_len=cfg.scst_max_len, generator=generator, banned=(vocab.unk_id,))
            texts = [" ".join(vocab.decode(h.tokens)) for h in samples]
            refs = [self.train.references[int(r)] for r in rows for _ in range(k)]
            rewards = torch.from_numpy(self.reward.score(texts, refs)).float().view(len(rows), k).to(self.device)
            seqs = [[vocab.start_id, *h.tokens] + ([vocab.end_id] if h.complete else []) for h in samples]
            ids = torch.full((len(seqs), max(map(len, seqs))), vocab.pad_id, dtype=torch.long)
            for i, seq in enumerate(seqs):
                ids[i, : len(seq)] = torch.tensor(seq)
            ids = ids.to(self.device)
            logits = self.model(image, ids[:, :-1])
        loss = self_critical_loss(logits, ids[:, 1:], rewards, vocab.pad_id)
        return loss, int((ids[:, 1:] != vocab.pad_id).sum()), {"reward": float(rewards.mean())}
