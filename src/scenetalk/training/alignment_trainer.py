"""Training the visual-semantic alignment model (Karpathy & Fei-Fei §3.1, §3.3).

Training pairs are (image, sentence) from the training split; a batch of 100 pairs is scored
all against all (``AlignmentModel.forward``) and ranked with the max-margin loss of eq. 9
(``training.losses.ranking_loss``), with SGD + momentum 0.9 as in the paper (Adam as an
option), dropout, and element-wise clipping at 5; ``hardest: true`` fine-tunes on VSE++'s
hardest negatives. The model is selected on the validation split's R@K sum (R@1+R@5+R@10,
both directions, ``retrieval.scoring.evaluate_alignment``), over all its images and sentences.

``locked_from`` adds languages to a trained model of one language without changing it (LiT,
Zhai et al. 2022: a locked image side, new text sides tuned to it): the new model has a
sentence side per language (``brnn: per_language``); its image side (eq. 1) and the locked
language's word vectors and sentence side (eq. 2-6) are that model's and are never trained,
so an index of its image vectors stays valid and that language's scores are exactly its
own; the other languages' sides start as copies of the locked side, their word vectors at
random, and learn from their own sentences only (the locked language's cannot change a
trained weight). With ``init_from`` (a second stage), the lock is checked and kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scenetalk.checkpoint import load_alignment
from scenetalk.data.multilingual import only_languages
from scenetalk.data.schema import CaptionDataset
from scenetalk.data.text import MULTILINGUAL, Vocabulary, tagged
from scenetalk.errors import ScenetalkError
from scenetalk.limits import MAX_WORDS
from scenetalk.metrics.retrieval import rsum
from scenetalk.models import build_alignment
from scenetalk.models.alignment import AlignmentModel
from scenetalk.models.fields import Bounds
from scenetalk.retrieval.scoring import evaluate_alignment, sentence_set
from scenetalk.training.loop import LoopConfig, Trainer, make_optimizer, training_vocabulary
from scenetalk.training.losses import ranking_loss


@dataclass
class AlignTrainConfig(LoopConfig):
    """An alignment model's training run."""
    model: dict[str, Any] = field(default_factory=dict)  # fields of AlignmentConfig (vocab and region size aside)
    init_from: str | None = None   # start from this alignment checkpoint's weights and vocabulary
    locked_from: str | None = None  # a one-language model kept as it is: its image side and language (module doc)
    margin: float = 1.0
    hardest: bool = False          # VSE++'s hardest negative instead of eq. 9's sum over negatives
    min_count: int = 5
    max_words: int = 40
    optimizer: str = "sgd"
    lr: float = 0.01
    select_metric: str = "rsum"
    language_repeats: dict[str, int] = field(default_factory=dict)  # e.g. {de: 3}: each German training
    #                                sentence 3 times an epoch (a language with fewer sentences seen as often)

    choices = {**LoopConfig.choices, "select_metric": ("rsum",)}
    ranges = {**LoopConfig.ranges, "margin": Bounds(0), "min_count": Bounds(1), "max_words": Bounds(1, MAX_WORDS)}

    def __post_init__(self):
        super().__post_init__()
        if self.model and self.init_from:
            raise ValueError("model comes from init_from's checkpoint; give one of model and init_from")
        if self.locked_from:
            if set(self.model) - {"dropout"}:
                raise ValueError("model: with locked_from the layers are the locked model's; only dropout may be set")
            if self.weight_decay:
                raise ValueError("weight_decay would move the locked words' vectors; leave it 0 with locked_from")
        for code, times in self.language_repeats.items():
            if not isinstance(times, int) or isinstance(times, bool) or times < 1:
                raise ValueError(f"language_repeats: {code}: {times!r} is not a whole number of times >= 1")


class AlignmentTrainer(Trainer):
    """Trains the alignment model on region features (N, 20, D) of a dataset's images."""

    curves = {"rsum": "R@1+5+10, both directions"}

    def __init__(self, config: AlignTrainConfig, dataset: CaptionDataset, regions: torch.Tensor,
                 row_of: dict[str, int], extractor_id: str, out_dir: str | Path,
                 progress: bool = True, on_step: Callable[[int], None] | None = None):
        super().__init__(config, out_dir, progress, on_step)
        self.regions, self.extractor_id = regions.float(), extractor_id
        torch.manual_seed(config.seed)
        locked = load_alignment(config.locked_from, expect_extractor_id=extractor_id) if config.locked_from else None
        if config.init_from:  # e.g. hardest negatives after a warm-up with eq. 9's sum (VSE++ §3.2)
            self.model, self.vocab, start_meta = load_alignment(config.init_from, expect_extractor_id=extractor_id)
            self.model_config = start_meta["model"]  # same extractor id (checked above), so same region size
        elif locked is not None:
            self.vocab = extended_vocabulary(locked[1], dataset, config.min_count)
            self.model_config = {**locked[2]["model"], **config.model, "brnn": "per_language",
                                 "vocab_size": len(self.vocab), "languages": len(self.vocab.languages)}
            self.model = build_alignment(self.model_config)
            self.model.word_language.copy_(torch.from_numpy(self.vocab.word_languages()))
        else:
            self.vocab = training_vocabulary(dataset, config.min_count)
            self.model_config = {**config.model, "vocab_size": len(self.vocab), "region_dim": self.regions.size(-1),
                                 "languages": len(self.vocab.languages)}
            self.model = build_alignment(self.model_config)
            if len(self.model.sides) > 1:  # each sentence goes through its language's side (eq. 3-6)
                self.model.word_language.copy_(torch.from_numpy(self.vocab.word_languages()))
        if locked is not None:
            language = lock(self.model, self.vocab, *locked[:2], copy=not config.init_from)
            dataset = only_languages(dataset, [code for code in self.vocab.languages if code != language])
        self.train = sentence_set(dataset, "train", self.vocab, row_of, config.max_words)
        self.val = sentence_set(dataset, "val", self.vocab, row_of, config.max_words)
        # the training sentences as tensors, indexed by the loop's batches of positions
        self.train_ids, self.train_rows = torch.from_numpy(self.train.ids), torch.from_numpy(self.train.image_rows)
        if config.language_repeats:
            order = repeated_positions(dataset, config.language_repeats)
            self.train_ids, self.train_rows = self.train_ids[order], self.train_rows[order]
        self.make_optimizer()

    def make_optimizer(self) -> None:
        cfg = self.config   # only what trains: a locked model's image side and language side do not
        self.optimizer = make_optimizer(cfg.optimizer, [p for p in self.model.parameters() if p.requires_grad],
                                        cfg.lr, cfg.weight_decay)

    @property
    def items_per_epoch(self) -> int:
        return len(self.train_ids)

    def batch_loss(self, idx: torch.Tensor) -> tuple[torch.Tensor, int, dict]:
        ids = self.train_ids[idx]
        ids = ids[:, : int((ids != 0).sum(1).max())].to(self.device)
        rows = self.train_rows[idx]
        scores = self.model(self.regions[rows].to(self.device), ids)
        rows = rows.to(self.device)
        loss = ranking_loss(scores, image_ids=rows, margin=self.config.margin, hardest=self.config.hardest)
        return loss, int((ids != 0).sum()), {}

    def distributed_loss(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, dict]:
        """Eq. 9 ranks each image against every sentence of the batch, so on several ranks each
        embeds its slice's images and sentences, gathers everyone's (the gradient flowing back
        to each rank's own), and scores the whole batch; its share of the loss is 1/ranks."""
        if self.world.size == 1:
            return super().distributed_loss(idx)
        ids = self.train_ids[idx]
        length = int((ids != 0).sum(1).max())
        local = self.world.shard(idx)
        v = self.world.gather(self.model.embed_regions(self.regions[self.train_rows[local]].to(self.device)))
        s, _ = self.model.embed_words(self.train_ids[local][:, :length].to(self.device))
        scores = self.model.scores(v, self.world.gather(s), (ids[:, :length] != 0).to(self.device))
        loss = ranking_loss(scores, image_ids=self.train_rows[idx].to(self.device), margin=self.config.margin,
                            hardest=self.config.hardest)
        return loss / self.world.size, loss.detach(), int((ids != 0).sum()), {}

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


def repeated_positions(dataset: CaptionDataset, repeats: dict[str, int]) -> torch.Tensor:
    """The training sentences' positions (``sentence_set``'s order), each of language L
    ``repeats[L]`` times (1 for the others): an epoch then holds that many copies, shuffled
    with the rest, so the loop's batches oversample L."""
    languages = [s.language for image in dataset.split("train") for s in image.sentences]
    unknown = sorted(set(repeats) - set(languages))
    if unknown:
        raise ScenetalkError(f"language_repeats names {', '.join(unknown)}, but the training sentences are in "
                             f"{', '.join(sorted(set(languages)))}")
    times = torch.tensor([repeats.get(code, 1) for code in languages])
    return torch.repeat_interleave(torch.arange(len(languages)), times)


def extended_vocabulary(locked: Vocabulary, dataset: CaptionDataset, min_count: int) -> Vocabulary:
    """A vocabulary of several languages whose ``locked.language`` words are exactly ``locked``'s
    (tagged ``lang:word``, in its order) and whose other words are the other languages' training
    words seen at least ``min_count`` times (``training_vocabulary``'s rule, never val or test)."""
    if locked.language == MULTILINGUAL:
        raise ScenetalkError("locked_from: needs a model of one language (this one reads several)")
    others = [s for s in dataset.sentences("train") if s.language != locked.language]
    if not others or len(others) == len(dataset.sentences("train")):
        raise ScenetalkError(f"locked_from: the dataset must hold {locked.language!r} sentences and sentences "
                             f"in other languages (it has {', '.join(sorted({s.language for s in dataset.sentences()}))})")
    new = Vocabulary.build([s.tokens for s in others], min_count=min_count, language=MULTILINGUAL,
                           zh_mode=dataset.zh_mode)
    kept = tagged(locked.language, locked.itos[len(Vocabulary.SPECIALS):])
    counts = {**{t: locked.counts.get(w, min_count) for t, w in zip(kept, locked.itos[len(Vocabulary.SPECIALS):])},
              **new.counts}
    return Vocabulary(kept + new.itos[len(Vocabulary.SPECIALS):], counts, min_count=min_count, language=MULTILINGUAL,
                      zh_mode=dataset.zh_mode)


def lock(model: AlignmentModel, vocab: Vocabulary, locked: AlignmentModel, locked_vocab: Vocabulary,
         copy: bool = True) -> str:
    """Keep ``locked``'s image side, word vectors and sentence side in ``model`` (a model of
    several languages with a side per language) and never train them; returns their language.
    ``copy``: a new model, which takes them (and its other languages' sides start as copies of
    the locked side); else a model trained so far, whose locked parts must still be equal."""
    language = locked_vocab.language
    if len(model.sides) < 2 or language not in vocab.languages:
        raise ScenetalkError(f"locked_from: the model must have a sentence side per language, {language!r} among them")
    side = model.sides[vocab.languages.index(language)]
    rows = torch.tensor([vocab.stoi[t] for t in locked_vocab.itos[:len(Vocabulary.SPECIALS)]]
                        + [vocab.stoi.get(t, -1) for t in tagged(language, locked_vocab.itos[len(Vocabulary.SPECIALS):])])
    if bool((rows < 0).any()):
        raise ScenetalkError(f"locked_from: the model lacks some of the locked model's {language!r} words")
    locked_side = {k: v for k, v in locked.state_dict().items() if k.split(".")[0] in ("W_e", "W_f", "W_b", "W_d")}
    with torch.no_grad():
        if copy:
            model.W_m.load_state_dict(locked.W_m.state_dict())
            model.W_w.weight[rows] = locked.W_w.weight
            for every in model.sides:
                every.load_state_dict(locked_side)
        elif not (torch.equal(model.W_m.weight, locked.W_m.weight) and torch.equal(model.W_w.weight[rows],
                                                                                   locked.W_w.weight)
                  and all(torch.equal(v, side.state_dict()[k]) for k, v in locked_side.items())):
            raise ScenetalkError("locked_from: init_from's image side or locked language differ from the locked "
                                 "model's; give the model the first stage was locked to")
    model.W_m.requires_grad_(False)
    side.requires_grad_(False)
    trained_rows = torch.ones(len(vocab), 1)
    trained_rows[rows] = 0.0
    # eq. 2's table is one matrix: its locked rows get no gradient (and, with no weight decay,
    # SGD's and Adam's steps of a zero gradient are zero)
    model.W_w.weight.register_hook(lambda grad: grad * trained_rows.to(grad.device, grad.dtype))
    return language
