"""Where inference runs: ONNX Runtime (the default, and all the light install has) or PyTorch.

``SCENETALK_ENGINE=torch`` runs every model in PyTorch, the training engine and the reference
implementation, for comparison; the default, ``onnxruntime``, runs the ONNX graphs a
checkpoint holds beside its weights (``scenetalk export`` writes them; the shipped models
come with theirs). A checkpoint without graphs runs in PyTorch where it is installed.

``OnnxGenerator`` is a caption generator's two graphs behind the step interface of
``captioning.decoding`` (NumPy in, NumPy out), so the same beam search drives either engine;
``OnnxAlignment`` the alignment model's image side and sentence side.

Nothing here imports torch: ``need_torch`` is the one place that says a feature needs the
``train`` extra.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from scenetalk.errors import CheckpointError, ScenetalkError

ENGINES = ("onnxruntime", "torch")
#: what a checkpoint folder holds besides its weights once exported (``scenetalk export``)
ONNX_META = "onnx.json"
#: the pip route to PyTorch, as every message that needs it says it
TRAIN_EXTRA = 'pip install "scenetalk[train]"'


def engine() -> str:
    """The inference engine ``SCENETALK_ENGINE`` asks for (default ``onnxruntime``)."""
    name = os.environ.get("SCENETALK_ENGINE", "onnxruntime") or "onnxruntime"
    if name not in ENGINES:
        raise ScenetalkError(f"SCENETALK_ENGINE={name!r}; expected one of {', '.join(ENGINES)}")
    return name


def torch_installed() -> bool:
    """Whether PyTorch can be imported (``sys.modules["torch"] = None`` blocks it, as the light
    install's tests do in a full install)."""
    if "torch" in sys.modules:
        return sys.modules["torch"] is not None
    return importlib.util.find_spec("torch") is not None


def need_torch(what: str):
    """``torch``, or a ``ScenetalkError`` saying that ``what`` needs the ``train`` extra."""
    if not torch_installed():
        raise ScenetalkError(f"{what} needs PyTorch, which this light install leaves out: {TRAIN_EXTRA}")
    import torch

    return torch


_threads: int | None = None


def set_threads(threads: int) -> None:
    """The threads every model made from now on may use (``scenetalk serve --threads``), in
    either engine."""
    global _threads
    _threads = max(1, int(threads))
    if "torch" in sys.modules or (engine() == "torch" and torch_installed()):
        import torch

        torch.set_num_threads(_threads)


def cpu_threads() -> int:
    """Threads a model may use: ``set_threads``'s, else ``OMP_NUM_THREADS`` when set (as PyTorch
    reads it), else every core."""
    if _threads is not None:
        return _threads
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return max(1, os.cpu_count() or 1)


def session(path: str | os.PathLike, threads: int | None = None, initializers: dict[str, np.ndarray] | None = None):
    """An ONNX Runtime CPU session for the graph at ``path``; ``initializers`` gives the values
    of the graph's external weights (the detector's, read from another file), by name; ONNX
    Runtime reads them in place, so the arrays must outlive the session."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if initializers:
        options.add_external_initializers(list(initializers),
                                          [onnxruntime.OrtValue.ortvalue_from_numpy(a) for a in initializers.values()])
    options.intra_op_num_threads = threads or cpu_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # ONNX Runtime's threads otherwise spin for a while after each run, taking the cores from
    # whatever comes next (beam search after the features): with spinning, captioning one
    # image took about twice as long (BENCHMARKS.md "Captioning speed").
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # An int8 weight (``checkpoint.INT8_SCALE``) is read behind a DequantizeLinear of constants,
    # which ONNX Runtime keeps for its quantized kernels unless QDQ handling is off; off, it folds
    # it into the float32 weight when the graph loads, as it folds a float16 weight's Cast, and
    # a step costs what it did in float16.
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    try:
        return onnxruntime.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own error types for a damaged graph
        raise CheckpointError(f"{path}: damaged ONNX graph ({str(exc).splitlines()[0][:200]}); "
                              "export it again with `scenetalk export`") from None


def read_onnx_meta(folder: str | os.PathLike) -> dict[str, Any] | None:
    """A checkpoint's ``onnx.json`` (which graphs, their inputs and outputs, and the hash of the
    weights they were exported from), or None when it has none."""
    path = Path(folder) / ONNX_META
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: damaged: {exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("graphs"), dict):
        raise CheckpointError(f"{path}: damaged: expected an object with 'graphs'; export it again")
    return meta


class OnnxGenerator:
    """A caption generator exported as two graphs: ``init_state`` (image features -> state)
    and ``step`` (previous words and state -> log-probabilities and the state that changes).
    The parts of the state a step never changes (m-RNN's V_I·I, an attention model's grid)
    are kept here and fed back, not copied out of the graph every step."""

    def __init__(self, folder: str | os.PathLike, meta: dict[str, Any], threads: int | None = None):
        self.folder = Path(folder)
        graphs = meta["graphs"]
        self.image_input = meta.get("image_input", "global")
        self.state_names: list[str] = list(meta["state"])
        self.changing: list[str] = list(meta["changing"])
        self._init = session(self.folder / graphs["init_state"], threads)
        self._step = session(self.folder / graphs["step"], threads)
        # the m-RNN family also ranks sentences by log P(s | I) with the recurrence once per sentence
        self._text = session(self.folder / graphs["text_term"], threads) if "text_term" in graphs else None
        self._pairs = session(self.folder / graphs["pair_log_likelihoods"], threads) if self._text else None

    @property
    def ranks_by_text_term(self) -> bool:
        """Whether it has the m-RNN's likelihood graphs (``pair_log_likelihoods``)."""
        return self._text is not None

    def pair_log_likelihoods(self, images: np.ndarray, ids: np.ndarray, pad_id: int = 0) -> np.ndarray:
        """log P(s_p | I_p) (``captioning.likelihood``): the image-free text term once per distinct
        sentence, then the multimodal and softmax layers of every pair."""
        distinct, which = np.unique(ids, axis=0, return_inverse=True)
        text = self._text.run(None, {"inputs": np.ascontiguousarray(distinct[:, :-1])})[0]
        targets = ids[:, 1:]
        return self._pairs.run(None, {"text": np.ascontiguousarray(text[which.reshape(-1)]),
                                      "image": np.ascontiguousarray(images, dtype=np.float32),
                                      "targets": np.ascontiguousarray(targets),
                                      "mask": (targets != pad_id).astype(np.float32)})[0]

    def init_state(self, image: np.ndarray) -> dict[str, np.ndarray]:
        values = self._init.run(self.state_names, {"image": np.ascontiguousarray(image, dtype=np.float32)})
        return dict(zip(self.state_names, values))

    def step(self, tokens: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        feed = {"tokens": np.ascontiguousarray(tokens, dtype=np.int64)}
        feed.update((name, state[name]) for name in self.state_names)
        log_probs, *changed = self._step.run(["log_probs", *(f"next_{n}" for n in self.changing)], feed)
        new = dict(state)
        new.update(zip(self.changing, changed))
        return log_probs, new


class OnnxAlignment:
    """The alignment model's two sides as graphs: ``regions`` ((B, R, D) CNN features -> the
    region vectors v_i of eq. 1) and ``words`` (word vectors x_t (L, T, word_dim) and the word
    mask -> the words in context s_t of eq. 3-6), or, for a model with a sentence side per
    language, ``words_0``, ``words_1``, ... (one per language, chosen by ``word_language``: the
    language index of every word id). The word table W_w of eq. 2 is read from the
    checkpoint's weights, so a caller can give a word the model never saw a vector of its own."""

    def __init__(self, folder: str | os.PathLike, meta: dict[str, Any], word_table: np.ndarray,
                 threads: int | None = None, score: str = "max", word_language: np.ndarray | None = None):
        self.folder = Path(folder)
        self.word_table = word_table
        #: the image–sentence score the model was trained with: eq. 8 ("max") or eq. 7 ("fragment")
        self.score = score
        self._regions = session(self.folder / meta["graphs"]["regions"], threads)
        sides = int(meta.get("sides", 1))
        names = ["words"] if sides == 1 else [f"words_{k}" for k in range(sides)]
        self._words = [session(self.folder / meta["graphs"][name], threads) for name in names]
        if sides > 1 and word_language is None:
            raise ValueError("a model with a sentence side per language needs its word_language table")
        self.word_language = word_language

    def embed_regions(self, regions: np.ndarray) -> np.ndarray:
        return self._regions.run(None, {"regions": np.ascontiguousarray(regions, dtype=np.float32)})[0]

    def embed_words(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(L, T) word ids, 0-padded -> (L, T, h) words in context and the (L, T) mask."""
        ids = np.asarray(ids, dtype=np.int64)
        mask = ids != 0
        return self.embed_word_vectors(self.word_table[ids], mask, self.sentence_languages(ids)), mask

    def sentence_languages(self, ids: np.ndarray) -> np.ndarray | None:
        """Each sentence's side (``AlignmentModel.sentence_languages``), None with one side."""
        if len(self._words) == 1:
            return None
        ids = np.asarray(ids, dtype=np.int64)
        if ids.shape[1] == 0:
            return np.zeros(len(ids), dtype=np.int64)
        return np.maximum(self.word_language[ids].max(axis=1), 0)

    def embed_word_vectors(self, x: np.ndarray, mask: np.ndarray, languages: np.ndarray | None = None) -> np.ndarray:
        if x.shape[1] == 0:
            return np.zeros((*x.shape[:2], self.embed_dim), dtype=np.float32)
        if len(self._words) == 1:
            return self._run_words(self._words[0], x, mask)
        if languages is None:
            raise ValueError("a model with a sentence side per language needs each sentence's language")
        out = np.zeros((*x.shape[:2], self.embed_dim), dtype=np.float32)
        for k, graph in enumerate(self._words):
            rows = np.flatnonzero(np.asarray(languages) == k)
            if len(rows):
                out[rows] = self._run_words(graph, x[rows], mask[rows])
        return out

    @staticmethod
    def _run_words(graph, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return graph.run(None, {"words": np.ascontiguousarray(x, dtype=np.float32),
                                "mask": np.ascontiguousarray(mask, dtype=np.float32)})[0]

    @property
    def embed_dim(self) -> int:
        return int(self._regions.get_outputs()[0].shape[-1])
