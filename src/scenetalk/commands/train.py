"""``scenetalk train CONFIG.yaml``: train a caption generator (on whole images, or on regions and
the snippets aligned to them) or the alignment model, on cached features."""

from __future__ import annotations

import argparse
import dataclasses
import json
from importlib import resources
from pathlib import Path

import yaml

from scenetalk.errors import ScenetalkError

TOP_KEYS = {"task", "dataset", "root", "features", "snippets", "out", "train"}
TASKS = ("caption", "alignment", "regions")


def shipped_configs() -> dict[str, Path]:
    folder = resources.files("scenetalk") / "configs"
    return {p.name[:-5]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def read_config(path_or_name: str) -> tuple[Path, dict]:
    path = Path(path_or_name)
    if not path.is_file():
        shipped = shipped_configs()
        if path_or_name not in shipped:
            raise ScenetalkError(f"{path_or_name}: no such config file (shipped configs: {', '.join(sorted(shipped))})")
        path = shipped[path_or_name]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ScenetalkError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ScenetalkError(f"{path}: expected a mapping with keys {sorted(TOP_KEYS)}")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise ScenetalkError(f"{path}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(TOP_KEYS))})")
    return path, data


def train_config(path: Path, section: dict, task: str = "caption"):
    """The ``train:`` section as a ``TrainConfig`` (or ``AlignTrainConfig``); an unknown key
    names the file and key."""
    if task == "alignment":
        from scenetalk.training.alignment_trainer import AlignTrainConfig as config_class
    elif task in ("caption", "regions"):
        from scenetalk.training.caption_trainer import TrainConfig as config_class
    else:
        raise ScenetalkError(f"{path}: task must be one of {', '.join(TASKS)}, not {task!r}")
    fields = {f.name for f in dataclasses.fields(config_class)}
    unknown = set(section) - fields
    if unknown:
        raise ScenetalkError(f"{path}: train: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(fields))})")
    try:
        return config_class(**section)
    except (TypeError, ValueError) as exc:
        raise ScenetalkError(f"{path}: train: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from scenetalk.data.registry import load_dataset
    from scenetalk.features.store import FeatureStore
    from scenetalk.models import GENERATORS
    from scenetalk.training.caption_trainer import CaptionTrainer

    path, data = read_config(args.config)
    task = data.get("task", "caption")
    cfg = train_config(path, data.get("train") or {}, task)
    features = args.features or data.get("features")
    out = args.out or data.get("out")
    if not features or not out:
        raise ScenetalkError(f"{path}: needs 'features' and 'out' (or pass --features / --out)")
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
        dataset = load_dataset(data.get("dataset", "flickr8k"), root=args.root or data.get("root"))
        row_of = store.row_index
    if task == "alignment":
        from scenetalk.training.alignment_trainer import AlignmentTrainer

        trainer = AlignmentTrainer(cfg, dataset, store.model_input("regions"), row_of, store.extractor_id,
                                   out, progress=not args.quiet)
    else:
        if cfg.init_from:
            from scenetalk.checkpoint import read_meta

            model_type = read_meta(cfg.init_from).get("model", {}).get("type")
        else:
            model_type = cfg.model.get("type")
        if model_type not in GENERATORS:
            raise ScenetalkError(f"{path}: train.model.type must be one of {', '.join(GENERATORS)}")
        if task == "caption":
            feats = store.model_input(GENERATORS[model_type][0].image_input)
        elif GENERATORS[model_type][0].image_input != "global":
            raise ScenetalkError(f"{path}: task regions takes one feature vector per region; "
                                 f"model type {model_type!r} reads a grid")
        trainer = CaptionTrainer(cfg, dataset, feats, row_of, store.extractor_id, out,
                                 progress=not args.quiet)
    if args.resume and trainer.resume():
        print(f"resuming {out} at step {trainer.step}")
    elif (Path(out) / "last").exists() and not args.resume:
        raise ScenetalkError(f"{out}: holds a run already; pass --resume to continue it or choose another --out")
    history = trainer.run()
    metric = cfg.select_metric
    best = max(history["val"], key=lambda h: -h[metric] if metric in trainer.lower_is_better else h[metric])
    print(json.dumps({"out": str(out), "steps": trainer.step, "best_val": best}, indent=1))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a caption generator or an alignment model from a YAML config",
                       description="Train a caption generator (task: caption), a region generator on a snippet "
                                   "corpus (task: regions) or the alignment model (task: alignment) on cached "
                                   "image features. CONFIG is a YAML file or the "
                                   "name of a shipped config.")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("--features", help="feature store folder (overrides the config)")
    p.add_argument("--out", help="run folder (overrides the config)")
    p.add_argument("--root", help="data root (overrides the config)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
