"""A training config (YAML file, shipped config name or dict) -> the right trainer -> a run.

A config names the task (``caption``: a generator on whole images; ``regions``: a generator
on the region-snippet corpus of ``scenetalk snippets``; ``alignment``: the image-sentence
alignment model), the dataset, the feature store, the run folder and the ``train:`` section
(the fields of ``TrainConfig`` or ``AlignTrainConfig``). ``train`` checks it all, builds the
trainer, runs it (or resumes it) and returns a ``TrainResult``. Every mistake is one
``ScenetalkError`` line naming the file and key.

    import scenetalk
    result = scenetalk.train("mrnn_lstm_flickr8k", features="features/flickr8k", out="runs/x")
    result.best_val["cider"]
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from scenetalk.checks import path as checked_path
from scenetalk.errors import ScenetalkError
from scenetalk.models.fields import FieldError

TOP_KEYS = {"task", "dataset", "zh_mode", "root", "features", "snippets", "out", "train"}
#: the top-level keys that name a file or folder
PATH_KEYS = ("dataset", "root", "features", "snippets", "out")
TASKS = ("caption", "alignment", "regions")
#: how errors about a config given as a dict name it
DICT_CONFIG = "config"


@dataclass
class TrainResult:
    """One finished training run: its folder, the steps it has taken (all of them, a resumed
    run's earlier ones included), the validation scores of the checkpoint kept in ``best``
    (chosen on the validation split only) and where the run's files are."""
    out: Path
    steps: int
    best_val: dict
    task: str = "caption"
    resumed_from_step: int | None = None   # None: a fresh run
    best: Path | None = None               # the best checkpoint's folder
    history: Path | None = None            # history.json: every training loss and validation score


def shipped_configs() -> dict[str, Path]:
    """The configs shipped with the package, by name (file name without ``.yaml``)."""
    folder = resources.files("scenetalk") / "configs"
    return {p.name[:-5]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def read_config(config: str | os.PathLike | Mapping) -> tuple[Path | str, dict]:
    """``(where, data)`` of a YAML file, a shipped config's name, or a dict (``where`` is then
    ``"config"``): the top-level keys checked, the ``train:`` section not yet."""
    if isinstance(config, Mapping):
        return DICT_CONFIG, check_top_keys(DICT_CONFIG, dict(config))
    path = Path(config)
    if not path.is_file():
        shipped = shipped_configs()
        if str(config) not in shipped:
            raise ScenetalkError(f"{config}: no such config file (shipped configs: {', '.join(sorted(shipped))})")
        path = shipped[str(config)]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ScenetalkError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return path, check_top_keys(path, data)


def check_top_keys(where: Path | str, data) -> dict:
    if not isinstance(data, dict):
        raise ScenetalkError(f"{where}: expected a mapping with keys {sorted(TOP_KEYS)}")
    unknown = {str(k) for k in data} - TOP_KEYS
    if unknown:
        raise ScenetalkError(f"{where}: unknown key {min(unknown)!r} (known: {', '.join(sorted(TOP_KEYS))})")
    for key in PATH_KEYS:
        if data.get(key) is not None:
            data[key] = checked_path(f"{where}: {key}", data[key])
    return data


def train_config(path: Path | str, section: dict, task: str = "caption"):
    """The ``train:`` section as a ``TrainConfig`` (or ``AlignTrainConfig``), every value and
    the model's settings checked (types, ranges, sizes); a mistake names the file and key."""
    from scenetalk.models import generator_config
    from scenetalk.models.alignment import AlignmentConfig, AlignmentModel
    from scenetalk.models.fields import VOCABULARY, check_size, config_from

    if task == "alignment":
        from scenetalk.training.alignment_trainer import AlignTrainConfig as config_class
    elif task in ("caption", "regions"):
        from scenetalk.training.caption_trainer import TrainConfig as config_class
    else:
        raise ScenetalkError(f"{path}: task must be one of {', '.join(TASKS)}, not {task!r}")
    if not isinstance(section, dict):
        raise ScenetalkError(f"{path}: train: expected a mapping of training settings")
    fields = {f.name for f in dataclasses.fields(config_class)}
    unknown = {str(k) for k in section} - fields
    if unknown:
        raise ScenetalkError(f"{path}: train: unknown key {min(unknown)!r} (known: {', '.join(sorted(fields))})")
    try:
        cfg = config_class(**section)
        if cfg.model:
            # vocab_size and the feature size come from the data, later: the smallest ones
            # stand in, so the size checked here is a lower bound of the real one
            smallest = {"vocab_size": int(VOCABULARY.low), "region_dim" if task == "alignment" else "image_dim": 1}
            if task == "alignment":
                model_class, model_config = AlignmentModel, config_from(AlignmentConfig, {**cfg.model, **smallest})
            else:
                model_class, model_config = generator_config({**cfg.model, **smallest})
            check_size(model_class, model_config)
    except FieldError as exc:
        key = exc.key if exc.key.split(".")[0] in fields else f"model.{exc.key}".rstrip(".")
        raise ScenetalkError(f"{path}: train.{key} {exc.problem}") from None
    except (TypeError, ValueError) as exc:
        raise ScenetalkError(f"{path}: train: {exc}") from None
    return cfg


def check_out(out: Path, resume: bool | None) -> None:
    """Refuse a run folder that cannot be one, and (``resume`` True/False) one that holds no
    run to resume or a run a new one would overwrite: before any data is read."""
    if out.exists() and not out.is_dir():
        raise ScenetalkError(f"{out}: is a file; the run folder (--out) must be a folder")
    if resume and not (out / "last").is_dir():
        what = "no such folder" if not out.exists() else "no run in this folder (no last/ checkpoint)"
        raise ScenetalkError(f"{out}: nothing to resume: {what}; drop --resume to start a new run")
    if resume is False and (out / "last").exists():
        raise ScenetalkError(f"{out}: holds a run already; pass --resume to continue it or choose another --out")


def trainer_for(config: str | os.PathLike | Mapping, features: str | os.PathLike | None = None,
                out: str | os.PathLike | None = None, root: str | os.PathLike | None = None,
                progress: bool = True, resume: bool | None = None):
    """The trainer a config asks for, ready to ``run()``: ``features``, ``out`` and ``root``
    override the config's; ``resume`` (True/False) checks the run folder for it first
    (``check_out``). Returns ``(trainer, task)``."""
    from scenetalk.data.registry import load_dataset
    from scenetalk.features.store import FeatureStore

    path, data = read_config(config)
    task = data.get("task", "caption")
    cfg = train_config(path, data.get("train") or {}, task)
    zh_mode = _zh_mode(path, data)
    features = features or data.get("features")
    out = out or data.get("out")
    if not features or not out:
        raise ScenetalkError(f"{path}: needs 'features' and 'out' (or pass --features / --out)")
    features, out = checked_path("features", features), checked_path("out", out)
    root = checked_path("root", root, optional=True)
    check_out(Path(out), resume)
    store = FeatureStore.open(features)
    if task == "regions":
        from scenetalk.grounding.snippets import flat_region_rows, load_corpus, region_dataset

        if not data.get("snippets"):
            raise ScenetalkError(f"{path}: task regions needs 'snippets' (a corpus from `scenetalk snippets`)")
        corpus = load_corpus(data["snippets"])
        if corpus["extractor_id"] != store.extractor_id:
            raise ScenetalkError(f"{data['snippets']}: made from features {corpus['extractor_id']!r}, but {features} "
                                 f"holds {store.extractor_id!r}")
        dataset = region_dataset(corpus)
        feats, row_of = flat_region_rows(store)
    else:
        dataset = load_dataset(data.get("dataset", "flickr8k"), root=root or data.get("root"),
                               zh_mode=zh_mode)
        row_of = store.row_index
    if not dataset.sentences("train"):
        raise ScenetalkError(f"{path}: the dataset has no training sentences (nothing to train on)")
    try:
        return _build_trainer(path, task, cfg, dataset, store, feats if task == "regions" else None, row_of, out,
                              progress)
    except FieldError as exc:  # the model's size, known once the vocabulary and features are
        raise ScenetalkError(f"{path}: {exc.within('train.model')}") from None


def _zh_mode(path: Path | str, data: dict) -> str | None:
    """The config's ``zh_mode`` (how Chinese sentences become tokens), checked."""
    from scenetalk.data.text import ZH_MODES

    mode = data.get("zh_mode")
    if mode is not None and mode not in ZH_MODES:
        raise ScenetalkError(f"{path}: zh_mode must be one of {', '.join(ZH_MODES)}, not {mode!r}")
    return mode


def _build_trainer(path, task, cfg, dataset, store, feats, row_of, out, progress):
    from scenetalk.models import GENERATORS
    from scenetalk.training.caption_trainer import CaptionTrainer

    if task == "alignment":
        from scenetalk.training.alignment_trainer import AlignmentTrainer

        return AlignmentTrainer(cfg, dataset, store.model_rows("regions"), row_of, store.extractor_id,
                                out, progress=progress), task
    if cfg.init_from:
        from scenetalk.checkpoint import read_meta

        start = read_meta(cfg.init_from).get("model")
        model_type = start.get("type") if isinstance(start, dict) else None
    else:
        model_type = cfg.model.get("type")
    if model_type not in GENERATORS:
        raise ScenetalkError(f"{path}: train.model.type must be one of {', '.join(GENERATORS)}")
    if task == "caption":
        feats = store.model_rows(GENERATORS[model_type][0].image_input)
    elif GENERATORS[model_type][0].image_input != "global":
        raise ScenetalkError(f"{path}: task regions takes one feature vector per region; "
                             f"model type {model_type!r} reads a grid")
    return CaptionTrainer(cfg, dataset, feats, row_of, store.extractor_id, out, progress=progress), task


def train(config: str | os.PathLike | Mapping, features: str | os.PathLike | None = None,
          out: str | os.PathLike | None = None, root: str | os.PathLike | None = None, resume: bool = False,
          progress: bool = True, max_steps: int | None = None) -> TrainResult:
    """Train what ``config`` says (a YAML file, a shipped config's name or a dict with the same
    keys) and return the run's ``TrainResult``. ``features``, ``out`` and ``root`` override the
    config's. A run folder that holds a run already is refused unless ``resume``, which
    continues that run from its last checkpoint exactly as if it had never stopped.
    ``max_steps`` stops the run at that step (its schedule stays the whole run's: ``resume``
    continues it). Under ``torchrun`` each process calls this; rank 0's result holds the
    validation scores (the other ranks' ``best_val`` is empty)."""
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise ScenetalkError(f"max_steps must be a whole number of steps ≥ 1, not {max_steps!r}")
    trainer, task = trainer_for(config, features, out, root, progress, resume=resume)
    resumed_from = trainer.step if resume and trainer.resume() else None
    if resumed_from is None and (trainer.out / "last").exists():
        raise ScenetalkError(f"{trainer.out}: holds a run already; pass --resume to continue it or choose another --out")
    trainer.stop_at = max_steps
    history = trainer.run()
    trainer.world.close()
    metric = trainer.config.select_metric
    best = max(history["val"], key=lambda h: -h[metric] if metric in trainer.lower_is_better else h[metric],
               default={})
    return TrainResult(out=trainer.out, steps=trainer.step, best_val=best, task=task,
                       resumed_from_step=resumed_from, best=trainer.out / "best",
                       history=trainer.out / "history.json")
