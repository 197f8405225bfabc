"""``scenetalk export``: every generator type and the alignment model as ONNX graphs that give
PyTorch's numbers (within ``training.export.TOLERANCE``), and the engine choice around them."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="exporting needs PyTorch (the train extra)")

from scenetalk import runtime  # noqa: E402
from scenetalk.captioning.decoding import beam_search  # noqa: E402
from scenetalk.checkpoint import (  # noqa: E402
    load_alignment,
    load_alignment_engine,
    load_generator,
    load_generator_steps,
    save_checkpoint,
)
from scenetalk.data.text import Vocabulary  # noqa: E402
from scenetalk.errors import CheckpointError, ScenetalkError  # noqa: E402
from scenetalk.models import GENERATORS, build_alignment, build_generator  # noqa: E402
from scenetalk.models.generator import TorchSteps  # noqa: E402
from scenetalk.training.export import TOLERANCE, export_checkpoint  # noqa: E402

WORDS = "a the dog cat man runs on grass in water red ball".split()
#: a tiny model of every generator type; a new type fails ``test_every_generator_type_is_covered``
#: until it is added here, so every model type is exported and run in ONNX Runtime
TINY = {
    "multimodal_rnn": [{"word_dim": 8, "hidden_dim": 12}, {"word_dim": 8, "hidden_dim": 12, "cell": "lstm"}],
    "mrnn": [{"embed1_dim": 6, "embed2_dim": 10, "multimodal_dim": 12},
             {"embed1_dim": 6, "embed2_dim": 10, "multimodal_dim": 12, "recurrent": "lstm", "recurrent_dim": 14},
             {"embed1_dim": 6, "embed2_dim": 10, "multimodal_dim": 12, "output": "transposed"}],
    "attention_lstm": [{"feature_dim": 8, "word_dim": 8, "hidden_dim": 12, "attention_dim": 6}],
    "updown": [{"feature_dim": 8, "word_dim": 8, "hidden_dim": 12, "attention_dim": 6}],
    "updown_grid": [{"feature_dim": 8, "word_dim": 8, "hidden_dim": 12, "attention_dim": 6}],
}
D = 16


def vocab():
    return Vocabulary.build([WORDS], min_count=1)


#: how each precision reads back from ``ExportResult.weights``
PRECISIONS = {"float32": "float32", "float16": "float16", "int8": "float16/int8"}


def saved(folder, tensors, meta, precision):
    """``save_checkpoint`` in ``precision`` ("float32", "float16", "int8": every matrix of 16
    values or more in int8 here, as the shipped models' large ones are)."""
    import scenetalk.checkpoint as checkpoint_module

    if precision != "int8":
        return save_checkpoint(folder, tensors, meta, half=precision == "float16")
    saved_min, checkpoint_module.INT8_MIN_SIZE = checkpoint_module.INT8_MIN_SIZE, 16
    try:
        return save_checkpoint(folder, tensors, meta, int8=True)
    finally:
        checkpoint_module.INT8_MIN_SIZE = saved_min


def generator_checkpoint(folder, kind, fields, half=False, seed=0, precision=None):
    torch.manual_seed(seed)
    v = vocab()
    config = {"type": kind, "vocab_size": len(v), "image_dim": D, "dropout": 0.3, **fields}
    model = build_generator(config)
    meta = {"kind": "caption_generator", "model": config, "vocabulary": v.to_dict(), "extractor_id": "test-x"}
    if model.image_input != "global":
        meta["grid_cells"] = 9
    return saved(folder, model.state_dict(), meta, precision or ("float16" if half else "float32"))


def image_for(steps, n, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, 9, D) if steps.image_input != "global" else (n, D)
    return rng.standard_normal(shape).astype(np.float32)


def test_int8_weights_are_a_scale_a_row_within_half_a_step(tmp_path):
    """checkpoint.INT8_SCALE: each row of a matrix is q · scale with |q| <= 127 and scale =
    max |row| / 127, so every value is within half a step of the original; the rest is float16,
    and the file is about half of float16's."""
    from safetensors.numpy import load_file

    from scenetalk.checkpoint import INT8_SCALE, load_checkpoint

    torch.manual_seed(0)
    weights = {"big.weight": torch.randn(300, 64) * torch.logspace(-3, 1, 300)[:, None], "big.bias": torch.randn(300)}
    meta = {"kind": "caption_generator"}
    small = save_checkpoint(tmp_path / "fp16", weights, meta, half=True)
    folder = save_checkpoint(tmp_path / "int8", weights, meta, int8=True)
    stored = load_file(str(folder / "model.safetensors"))
    q, scale = stored["big.weight"], stored["big.weight" + INT8_SCALE]
    assert q.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == (300,) and stored["big.bias"].dtype == np.float16
    assert np.abs(q).max() == 127 and np.allclose(scale, weights["big.weight"].abs().amax(1).numpy() / 127)
    back, _ = load_checkpoint(folder)
    assert set(back) == set(weights) and back["big.weight"].dtype == torch.float32
    step = torch.from_numpy(scale)[:, None]
    assert ((back["big.weight"] - weights["big.weight"]).abs() <= step / 2 + 1e-7).all()
    size = (folder / "model.safetensors").stat().st_size
    assert size < 0.55 * (small / "model.safetensors").stat().st_size


def test_every_generator_type_is_covered():
    assert set(TINY) == set(GENERATORS)


CASES = [(kind, i) for kind in TINY for i in range(len(TINY[kind]))]


@pytest.mark.parametrize("kind,i", CASES, ids=[f"{k}-{i}" for k, i in CASES])
@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_exported_generator_decodes_as_pytorch_does(tmp_path, monkeypatch, kind, i, precision):
    folder = generator_checkpoint(tmp_path / "ckpt", kind, TINY[kind][i], precision=precision)
    result = export_checkpoint(folder)
    assert result.max_difference <= TOLERANCE and result.weights == PRECISIONS[precision]
    assert result.bytes < 200_000    # the graphs read the weights from model.safetensors: no copies
    onnx_meta = json.loads((folder / runtime.ONNX_META).read_text())
    assert onnx_meta["kind"] == "caption_generator" and set(onnx_meta["graphs"].values()) <= {
        p.name for p in folder.iterdir()}
    graphs, v, _ = load_generator_steps(folder)
    assert isinstance(graphs, runtime.OnnxGenerator)
    monkeypatch.setenv("SCENETALK_ENGINE", "torch")
    reference, _, _ = load_generator_steps(folder)
    assert isinstance(reference, TorchSteps)
    image = image_for(graphs, 6)
    found = [beam_search(m, m.init_state(image), 6, v.start_id, v.end_id, beam_size=3, n_best=2, max_len=8)
             for m in (graphs, reference)]
    assert [[h.tokens for h in hs] for hs in found[0]] == [[h.tokens for h in hs] for hs in found[1]]
    assert [h.log_prob for hs in found[0] for h in hs] == pytest.approx(
        [h.log_prob for hs in found[1] for h in hs], abs=1e-4)


def alignment_checkpoint(folder, half=False, score="max", precision=None):
    torch.manual_seed(0)
    v = vocab()
    config = {"vocab_size": len(v), "region_dim": D, "embed_dim": 10, "word_dim": 6, "hidden_dim": 12,
              "dropout": 0.2, "score": score}
    model = build_alignment(config)
    return saved(folder, model.state_dict(), {"kind": "alignment", "model": config, "vocabulary": v.to_dict(),
                                              "extractor_id": "test-x"}, precision or ("float16" if half else "float32"))


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_exported_alignment_model_embeds_as_pytorch_does(tmp_path, monkeypatch, precision):
    from scenetalk.retrieval.similarity import alignment_scores

    folder = alignment_checkpoint(tmp_path / "align", precision=precision)
    result = export_checkpoint(folder)
    assert result.max_difference <= TOLERANCE and set(result.graphs) == {"regions", "words"}
    assert result.weights == PRECISIONS[precision]
    graphs, v, _ = load_alignment_engine(folder)
    assert isinstance(graphs, runtime.OnnxAlignment)
    model, _, _ = load_alignment(folder)
    rng = np.random.default_rng(0)
    regions = rng.standard_normal((3, 20, D)).astype(np.float32)
    for length in (1, 4, 33):   # any sentence length: the graph loops over the words
        ids = rng.integers(4, len(v), size=(5, length))
        ids[2, length // 2 + 1:] = 0
        s, mask = graphs.embed_words(ids)
        with torch.no_grad():
            s_ref, mask_ref = model.embed_words(torch.from_numpy(ids))
        assert np.array_equal(mask, mask_ref.numpy())
        assert np.abs(s - s_ref.numpy()).max() <= TOLERANCE
        with torch.no_grad():
            v_ref = model.embed_regions(torch.from_numpy(regions))
        from scenetalk.models.alignment import image_sentence_scores

        want = image_sentence_scores(v_ref, s_ref, mask_ref).numpy()
        got = alignment_scores(graphs.embed_regions(regions), s, mask, graphs.score)
        assert np.allclose(got, want, atol=1e-4)


def test_a_sentence_side_per_language_exports_one_graph_per_language(tmp_path):
    """brnn: per_language (issue #17): words_0.onnx, words_1.onnx, ..., each sentence through its
    language's graph in ONNX Runtime as in PyTorch, the word languages read from the weights."""
    torch.manual_seed(0)
    v = Vocabulary.build([[f"en:{w}" for w in WORDS[:6]], [f"de:{w}" for w in WORDS[6:]]], min_count=1,
                         language="multi")
    config = {"vocab_size": len(v), "region_dim": D, "embed_dim": 10, "word_dim": 6, "hidden_dim": 12,
              "dropout": 0.0, "brnn": "per_language", "languages": 2}
    model = build_alignment(config)
    model.word_language.copy_(torch.from_numpy(v.word_languages()))
    folder = save_checkpoint(tmp_path / "align", model.state_dict(), {
        "kind": "alignment", "model": config, "vocabulary": v.to_dict(), "extractor_id": "test-x"}, half=True)
    result = export_checkpoint(folder)
    assert result.max_difference <= TOLERANCE and set(result.graphs) == {"regions", "words_0", "words_1"}
    graphs, _, _ = load_alignment_engine(folder)
    model, _, _ = load_alignment(folder)
    ids = np.array([v.encode(["en:dog", "en:runs", "en:cat"]), v.encode(["de:in", "de:water", "de:red"])])
    assert graphs.sentence_languages(ids).tolist() == [v.languages.index("en"), v.languages.index("de")]
    s, _ = graphs.embed_words(ids)
    with torch.no_grad():
        s_ref, _ = model.embed_words(torch.from_numpy(ids))
    assert np.abs(s - s_ref.numpy()).max() <= TOLERANCE


def test_graphs_of_other_weights_are_not_used(tmp_path, monkeypatch):
    folder = generator_checkpoint(tmp_path / "ckpt", "mrnn", TINY["mrnn"][0])
    export_checkpoint(folder)
    model, _, meta = load_generator(folder)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    save_checkpoint(tmp_path / "retrained", model.state_dict(), meta)
    for f in ("init_state.onnx", "step.onnx", runtime.ONNX_META):   # stale graphs beside new weights
        (tmp_path / "retrained" / f).write_bytes((folder / f).read_bytes())
    steps, _, _ = load_generator_steps(tmp_path / "retrained")
    assert isinstance(steps, TorchSteps)                           # PyTorch, from the weights themselves
    monkeypatch.setattr(runtime, "torch_installed", lambda: False)  # the light install
    with pytest.raises(CheckpointError, match="exported from other weights.*scenetalk export"):
        load_generator_steps(tmp_path / "retrained")


def test_a_checkpoint_without_graphs_names_the_export_in_the_light_install(tmp_path, monkeypatch):
    folder = alignment_checkpoint(tmp_path / "align")
    monkeypatch.setattr(runtime, "torch_installed", lambda: False)
    with pytest.raises(CheckpointError, match="has no ONNX graphs.*scenetalk export") as exc:
        load_alignment_engine(folder)
    assert "\n" not in str(exc.value) and 'pip install "scenetalk[train]"' in str(exc.value)


def test_export_command(tmp_path, capsys):
    from scenetalk.cli import main

    folder = generator_checkpoint(tmp_path / "ckpt", "multimodal_rnn", TINY["multimodal_rnn"][0])
    assert main(["export", str(folder), "--out", str(tmp_path / "out"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "caption_generator" and result["max_difference"] <= TOLERANCE
    assert (tmp_path / "out" / "model.safetensors").is_file() and (tmp_path / "out" / "step.onnx").is_file()
    assert not (folder / "step.onnx").exists()                    # --out leaves the source as it was
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no work folder left behind
    for bad in (["export"], ["export", str(tmp_path / "nope")], ["export", str(folder), "--size", "96"],
                ["export", str(folder), "--backbone", "efficientnet-lite0"],
                ["export", "--backbone", "efficientnet-lite0", "--size", "0", "--out", str(tmp_path / "b")],
                ["export", "--backbone", "resnet-50", "--out", str(tmp_path / "b")]):
        assert main(bad) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_the_shipped_models_ship_their_graphs():
    # the light install runs these: their graphs must be the ones of their weights
    from scenetalk.checkpoint import exported_graphs
    from scenetalk.weights import SHIPPED, shipped

    for name in SHIPPED:
        folder = shipped(name)
        kind = json.loads((folder / "config.json").read_text())["kind"]
        assert exported_graphs(folder, kind) is not None, f"{folder}: run `scenetalk export {folder}`"


def test_light_install_refuses_the_training_commands(monkeypatch, capsys):
    from scenetalk.cli import main

    monkeypatch.setattr(runtime, "torch_installed", lambda: False)
    for command in (["train", "x"], ["export", "x"], ["snippets", "x", "--features", "f", "--out", "o"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "needs PyTorch" in err and "scenetalk[train]" in err and len(err.splitlines()) == 1


def test_need_torch_says_which_extra(monkeypatch):
    monkeypatch.setattr(runtime, "torch_installed", lambda: False)
    with pytest.raises(ScenetalkError, match=r'export needs PyTorch.*pip install "scenetalk\[train\]"'):
        runtime.need_torch("export")


@pytest.mark.parametrize("i", range(len(TINY["mrnn"])), ids=["relu", "lstm", "transposed"])
def test_the_mrnn_likelihood_graphs_equal_stepping_through_the_sentence(tmp_path, i):
    # ranking by log P(s | I) computes the m-RNN's recurrence once per sentence (the text term);
    # it must give what feeding the sentence word by word through the step gives
    from scenetalk.captioning.likelihood import step_log_likelihoods

    folder = generator_checkpoint(tmp_path / "ckpt", "mrnn", TINY["mrnn"][i])
    export_checkpoint(folder)
    graphs, v, _ = load_generator_steps(folder)
    assert graphs.ranks_by_text_term
    images = image_for(graphs, 4)
    ids = np.array([[v.start_id, 5, 6, 7, v.end_id, 0, 0], [v.start_id, 8, v.end_id, 0, 0, 0, 0],
                    [v.start_id, 5, 6, 7, v.end_id, 0, 0], [v.start_id, 9, 10, 11, 12, 13, v.end_id]])
    by_steps = np.zeros(4)
    state = graphs.init_state(images)
    for t in range(ids.shape[1] - 1):
        lp, state = graphs.step(ids[:, t], state)
        by_steps += np.where(ids[:, t + 1] != 0, lp[np.arange(4), ids[:, t + 1]], 0.0)
    assert np.allclose(step_log_likelihoods(graphs, images, ids), by_steps, atol=1e-4)
    reference, _, _ = load_generator(folder)
    assert np.allclose(TorchSteps(reference).pair_log_likelihoods(images, ids), by_steps, atol=1e-4)
    one = step_log_likelihoods(graphs, images, ids[:1])          # one sentence against every photo
    assert np.allclose(one, [step_log_likelihoods(graphs, images[k:k + 1], ids[:1])[0] for k in range(4)], atol=1e-4)

