"""The one training loop every trainer shares (caption generators and the alignment model).

A ``Trainer`` subclass gives the model, its batch loss and its validation scores; the loop
does the rest: padded batches in a seeded permutation per epoch (a run is deterministic on
CPU), the optimiser (RMSprop, Adam or SGD with momentum 0.9), element-wise gradient
clipping at 5 (Karpathy & Fei-Fei §3.3), a constant or cosine learning rate, bfloat16
matrix products as an option, and a stop with a one-line error when the loss is NaN/inf.

A run folder holds ``last/`` (written every ``checkpoint_every`` steps, with the optimizer
and random-number state, so ``resume=True`` continues a killed run exactly as if it had
never stopped), ``best/`` (the checkpoint with the best validation score, chosen on the
validation split only), ``history.json`` and ``curves.png``.

Under ``torchrun`` the same loop runs data-parallel (``training.distributed``): every rank
reads the same global batches, computes its slice's share of the loss, and the gradients are
summed over the ranks before the step; rank 0 validates and writes the run folder.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from scenetalk.checkpoint import load_checkpoint, save_checkpoint
from scenetalk.data.schema import CaptionDataset
from scenetalk.data.text import MULTILINGUAL, Vocabulary
from scenetalk.errors import ScenetalkError
from scenetalk.io import atomic_write_text
from scenetalk.limits import MAX_EPOCHS, MAX_TRAIN_BATCH
from scenetalk.models import eval_mode
from scenetalk.models.fields import Bounds, check_fields
from scenetalk.progress import progress_bar
from scenetalk.training.distributed import current_world


@dataclass
class LoopConfig:
    """What every training run needs, whatever the model."""
    batch_size: int = 100
    optimizer: str = "rmsprop"     # "rmsprop", "adam" or "sgd" (momentum 0.9)
    lr: float = 1e-3
    lr_schedule: str = "constant"  # or "cosine": lr · ½(1 + cos(π · step / total steps))
    weight_decay: float = 0.0
    clip: float = 5.0              # element-wise gradient clipping (§3.3)
    epochs: int = 10
    max_steps: int | None = None
    eval_every: int = 500          # steps between validation runs (and at every epoch end)
    checkpoint_every: int = 100
    select_metric: str = ""        # a validation score (each trainer has its default)
    seed: int = 0
    precision: str = "fp32"        # "bf16": forward and backward matrix products in bfloat16 (autocast),
    #                                weights and optimiser in float32; faster on CPUs with AVX-512 BF16
    #                                (BENCHMARKS.md "Captioning quality", the bfloat16 paragraph)
    device: str = "auto"           # where the steps run: "cpu", "cuda", or "auto" (CUDA when PyTorch sees a
    #                                GPU); validation runs on the CPU code the shipped models use. Not part
    #                                of what a run is: a run resumes on another device

    #: allowed values of the string fields; subclasses add their own
    choices = {"optimizer": ("rmsprop", "adam", "sgd"), "lr_schedule": ("constant", "cosine"),
               "precision": ("fp32", "bf16"), "device": ("auto", "cpu", "cuda")}

    #: allowed ranges of the number fields (``limits``); subclasses add their own
    ranges = {"batch_size": Bounds(1, MAX_TRAIN_BATCH), "lr": Bounds(0, None, low_open=True),
              "weight_decay": Bounds(0), "clip": Bounds(0, None, low_open=True), "epochs": Bounds(1, MAX_EPOCHS),
              "max_steps": Bounds(1), "eval_every": Bounds(1), "checkpoint_every": Bounds(1),
              "seed": Bounds(0, 2**32 - 1)}

    def __post_init__(self):
        """Every field checked by its type, ``choices`` and ``ranges`` (a ``FieldError``, which
        is a ``ValueError``, names the first bad one)."""
        check_fields(self)


def training_vocabulary(dataset: CaptionDataset, min_count: int) -> Vocabulary:
    """The words of the training split seen at least ``min_count`` times (never val or test)."""
    sentences = dataset.sentences("train")
    languages = {s.language for s in sentences} or {"en"}
    language = languages.pop() if len(languages) == 1 else MULTILINGUAL   # then tokens are lang:word
    vocab = Vocabulary.build([s.tokens for s in sentences], min_count=min_count, language=language,
                             zh_mode=dataset.zh_mode)
    vocab.learn_forms([s.raw for s in sentences], [s.tokens for s in sentences])
    return vocab


def training_device(name: str) -> torch.device:
    """The device a config's ``device`` names (``auto``: CUDA when PyTorch sees a GPU)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ScenetalkError("device: cuda, but this PyTorch sees no CUDA GPU (the pinned torch is the CPU build: "
                             "install a CUDA build of the same version, docs/scale.md)")
    return torch.device(name)


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-8, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":  # Karpathy & Fei-Fei §3.3 for the alignment model
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ScenetalkError(f"unknown optimizer {name!r}; use 'rmsprop', 'adam' or 'sgd'")


def scheduled_lr(config: LoopConfig, step: int, total_steps: int) -> float:
    """The learning rate for optimisation step ``step`` (0-based); a pure function of the step,
    so a resumed run follows the same schedule."""
    if config.lr_schedule == "constant":
        return config.lr
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    raise ScenetalkError(f"unknown lr_schedule {config.lr_schedule!r}; use 'constant' or 'cosine'")


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return list(torch.randperm(n, generator=g).split(batch_size))


def _optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors = {f"{pid}.{k}": v for pid, st in sd["state"].items() for k, v in st.items() if torch.is_tensor(v)}
    scalars = {f"{pid}.{k}": v for pid, st in sd["state"].items() for k, v in st.items() if not torch.is_tensor(v)}
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in list(tensors.items()) + list(meta["scalars"].items()):
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


class Trainer:
    """The training loop every model shares: seeded batches, the learning-rate schedule,
    element-wise clipping, periodic validation with model selection, ``last/`` checkpoints
    that resume exactly, progress, history and curves. A subclass sets ``model``,
    ``items_per_epoch`` and implements ``batch_loss``, ``evaluate`` and ``checkpoint_meta``.
    ``on_step`` is called after every optimisation step (tests use it to simulate a crash);
    ``stop_at`` ends the run at that step (``scenetalk train --max-steps``), the learning-rate
    schedule still the whole run's, so ``resume`` continues it."""

    model: torch.nn.Module
    extractor_id: str
    #: the validation scores where lower is better (the others: higher is better)
    lower_is_better: tuple[str, ...] = ("perplexity",)
    #: validation scores drawn in curves.png (name -> label), and the y label of that panel
    curves: dict[str, str] = {}

    def __init__(self, config, out_dir: str | Path, progress: bool, on_step: Callable[[int], None] | None):
        self.config, self.out = config, Path(out_dir)
        self.progress, self.on_step = progress, on_step
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.history: dict[str, list] = {"train": [], "val": []}
        self.best: float | None = None
        self.stop_at: int | None = None
        self.device = training_device(config.device)
        self.world = current_world(self.device.type)
        if self.device.type == "cuda":   # under torchrun, this rank's GPU (LOCAL_RANK)
            self.device = torch.device("cuda", torch.cuda.current_device())

    def make_optimizer(self) -> None:
        cfg = self.config
        self.optimizer = make_optimizer(cfg.optimizer, self.model.parameters(), cfg.lr, cfg.weight_decay)

    @property
    def items_per_epoch(self) -> int:
        raise NotImplementedError

    def batch_loss(self, idx: torch.Tensor) -> tuple[torch.Tensor, int, dict]:
        """Loss of the batch of items ``idx``, the number of tokens it covers, extra numbers to log."""
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        raise NotImplementedError

    def loss_weight(self, idx: torch.Tensor, n: int) -> float:
        """What ``batch_loss(idx)`` is a mean over (here: its ``n`` tokens), so that slices of
        a batch on several ranks weigh as they do in the whole batch."""
        return n

    def distributed_loss(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, dict]:
        """``(loss to back-propagate, the global batch's loss, its tokens, extras)`` for the
        global batch ``idx``. One process: ``batch_loss(idx)``. Several: the loss of this
        rank's slice times its share of the batch's ``loss_weight``, so that the gradients
        summed over the ranks are those of the whole batch's mean loss."""
        if self.world.size == 1:
            loss, n, extra = self.batch_loss(idx)
            return loss, loss.detach(), n, extra
        local = self.world.shard(idx)
        loss, n, extra = self.batch_loss(local)
        weight = float(self.loss_weight(local, n))
        part = loss * (weight / float(self.world.sum(weight)))
        return part, self.world.sum(part.detach()).float(), int(self.world.sum(n)), extra

    def checkpoint_meta(self) -> dict:
        raise NotImplementedError

    def format_scores(self, scores: dict) -> str:
        """Validation scores as one line of the training log."""
        return ", ".join(f"{k} {v:.3f}" for k, v in scores.items() if isinstance(v, float))

    # -- checkpoints -------------------------------------------------------------------
    def meta(self, **extra) -> dict:
        return {**self.checkpoint_meta(), "extractor_id": self.extractor_id, "train_config": asdict(self.config),
                **extra}

    def save_last(self) -> None:
        if not self.world.main:
            return
        opt_tensors, opt_meta = _optimizer_to_tensors(self.optimizer)
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update({f"optim.{k}": v for k, v in opt_tensors.items()})
        tensors["rng"] = torch.get_rng_state()
        save_checkpoint(self.out / "last", tensors, self.meta(
            trainer={"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                     "best": self.best, "optimizer": opt_meta, "history": self.history}))

    def resume(self) -> bool:
        self.model.to(self.device)   # before the optimiser's state is loaded: it goes where its parameter is
        if not (self.out / "last").exists():
            return False
        tensors, meta = load_checkpoint(self.out / "last", expect_extractor_id=self.extractor_id)
        damaged = f"{self.out / 'last'}: damaged run state (config.json lacks the trainer's state); start a new run"
        t = meta.get("trainer")
        if not (isinstance(t, dict) and isinstance(meta.get("train_config"), dict) and "rng" in tensors
                and all(k in t for k in ("step", "epoch", "batch_in_epoch", "best", "history", "optimizer"))):
            raise ScenetalkError(damaged)
        if _run_config(meta["train_config"]) != _run_config(asdict(self.config)):
            raise ScenetalkError(f"{self.out / 'last'}: was trained with another configuration; "
                                 "use a new output folder or the same config to resume")
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        _optimizer_from_tensors(self.optimizer, {k[6:]: v for k, v in tensors.items() if k.startswith("optim.")},
                                meta["trainer"]["optimizer"])
        torch.set_rng_state(tensors["rng"].to(torch.uint8))
        self.step, self.epoch, self.batch_in_epoch = t["step"], t["epoch"], t["batch_in_epoch"]
        self.best, self.history = t["best"], t["history"]
        return True

    # -- the loop ------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        if not self.world.main:  # the other ranks go on and wait for rank 0 at the next batch
            return {}
        with eval_mode(self.model), torch.no_grad(), on_cpu(self.model):
            scores = self.evaluate()
        scores.update(step=self.step, epoch=self.epoch, time=time.time())
        self.history["val"].append(scores)
        if self.progress:
            tqdm.write(f"step {self.step} (epoch {self.epoch}): val {self.format_scores(scores)}")
        key = self.config.select_metric
        value = -scores[key] if key in self.lower_is_better else scores[key]
        if self.best is None or value > self.best:
            self.best = value
            save_checkpoint(self.out / "best", self.model.state_dict(), self.meta(val=scores))
        return scores

    def run(self) -> dict:
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        steps_per_epoch = math.ceil(self.items_per_epoch / cfg.batch_size)
        total = cfg.max_steps or steps_per_epoch * cfg.epochs
        end = min(total, self.stop_at or total)
        bar = progress_bar(total=total, initial=self.step, disable=not (self.progress and self.world.main), unit="step")
        if not self.world.main:  # dropout masks of their own (rank 0's are the saved state's)
            torch.manual_seed(cfg.seed * 100_003 + self.step * 1_009 + self.world.rank)
        self.model.to(self.device)
        self.model.train()
        started, words_done = time.time(), 0
        while self.step < end and self.epoch < cfg.epochs:
            batches = _batches(self.items_per_epoch, cfg.batch_size, cfg.seed, self.epoch)
            for idx in batches[self.batch_in_epoch:]:
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                    part, loss, n, extra = self.distributed_loss(idx)
                if not torch.isfinite(loss):  # one step more and every weight would be NaN
                    bar.close()
                    if self.world.main:
                        atomic_write_text(self.out / "history.json", json.dumps(self.history))
                    best = f"; the best checkpoint so far is {self.out / 'best'}" if self.best is not None else ""
                    raise ScenetalkError(f"training diverged: the loss is {loss.item()} at step {self.step + 1} "
                                         f"(epoch {self.epoch}); lower the learning rate (lr: {cfg.lr}){best}")
                self.optimizer.zero_grad(set_to_none=True)
                for group in self.optimizer.param_groups:
                    group["lr"] = scheduled_lr(cfg, self.step, total)
                part.backward()
                self.world.sum_gradients(self.model.parameters())
                torch.nn.utils.clip_grad_value_(self.model.parameters(), cfg.clip)
                self.optimizer.step()
                loss = loss.item()
                self.step += 1
                self.batch_in_epoch += 1
                words_done += n
                self.history["train"].append({"step": self.step, "loss": loss, **extra})
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{words_done / (time.time() - started):.0f}",
                                epoch=self.epoch, refresh=False)
                if self.step % cfg.eval_every == 0:
                    self.validate()
                if self.step % cfg.checkpoint_every == 0:
                    self.save_last()
                if self.on_step:
                    self.on_step(self.step)
                if self.step >= end:
                    break
            else:
                self.epoch += 1
                self.batch_in_epoch = 0
                if self.step % cfg.eval_every:
                    self.validate()
        bar.close()
        if self.step < total and not any(h["step"] == self.step for h in self.history["val"]):
            self.validate()  # stopped early (stop_at): a best checkpoint of the steps so far
        self.save_last()
        if self.world.main:
            atomic_write_text(self.out / "history.json", json.dumps(self.history))
            plot_curves(self.history, self.out / "curves.png", self.curves)
        return self.history


def _run_config(config: dict) -> dict:
    """What a resumed run must share with the one it continues: the config, the device aside."""
    return {k: v for k, v in config.items() if k != "device"}


@contextmanager
def on_cpu(model: torch.nn.Module):
    """``model`` on the CPU for the block (validation runs the CPU code the shipped models use),
    then back on its device; its parameters stay the same objects, so the optimiser keeps them."""
    device = next(model.parameters()).device
    if device.type == "cpu":
        yield model
        return
    model.to("cpu")
    try:
        yield model
    finally:
        model.to(device)


def plot_curves(history: dict, path: Path, curves: dict[str, str]) -> None:
    """Training loss and validation scores against steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scenetalk.io import atomic_path

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    train = history["train"]
    if train:
        steps = np.array([h["step"] for h in train])
        loss = np.array([h["loss"] for h in train])
        k = max(1, len(loss) // 50)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        axes[0].plot(steps, loss, alpha=0.25, label="train loss (per batch)")
        axes[0].plot(steps[k - 1:], smooth, label=f"train loss (mean of {k})")
    val = history["val"]
    if val:
        vs = [h["step"] for h in val]
        if all("perplexity" in h for h in val):
            axes[0].plot(vs, [math.log(h["perplexity"]) for h in val], "o-", label="val loss")
        for n, (key, label) in enumerate(curves.items()):
            if all(key in h for h in val):
                axes[1].plot(vs, [h[key] for h in val], "os^v"[n % 4] + "-", color=f"C{n + 2}", label=label)
        axes[1].legend()
    axes[0].set(xlabel="step", ylabel="loss", title="training")
    axes[0].legend()
    axes[1].set(xlabel="step", title="validation")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
