"""Damaged files of every kind scenetalk writes (index arrays, the sentence collection's .npz,
index.json, feature store arrays and index.json, the snippet corpus): each is refused with one
line naming the file (exit 2 from the CLI, a ScenetalkError from the API), never a traceback or
NaN scores. Every case is generated here from one small valid index made once per module."""

import json
import shutil
import signal

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

import scenetalk
from scenetalk.checkpoint import save_checkpoint
from scenetalk.cli import main
from scenetalk.data.text import Vocabulary
from scenetalk.errors import ScenetalkError
from scenetalk.features.store import FORMAT, FORMAT_VERSION, FeatureStore
from scenetalk.grounding.snippets import CORPUS_FORMAT, load_corpus
from scenetalk.models.alignment import AlignmentConfig, AlignmentModel
from scenetalk.retrieval.index import write_index
from scenetalk.retrieval.scoring import Aligner

WORDS = "a the cat dog man woman cup coffee sits on table red white".split()
EXTRACTOR = "test-extractor"
N, R, D = 5, 3, 1280
NAMES = [f"photo{i}.jpg" for i in range(N)]
SENTENCES = ["a cat sits on the table", "a red cup of coffee", "the man and the dog"]


@pytest.fixture(autouse=True)
def bounded():
    """A hang fails the case instead of stopping the run."""
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("no answer within 120 s"))
    signal.alarm(120)
    yield
    signal.alarm(0)


def write_store(folder, rng):
    folder.mkdir(parents=True)
    arrays = {"global": rng.random((N, D), dtype=np.float32),
              "regions": rng.random((N, R, D), dtype=np.float32).astype(np.float16),
              "boxes": np.tile(np.array([0.0, 0.0, 1.0, 1.0], dtype=np.float32), (N, R, 1)),
              "box_scores": np.ones((N, R), dtype=np.float32),
              "box_classes": np.zeros((N, R), dtype=np.int16)}
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    index = {"format": FORMAT, "version": FORMAT_VERSION, "extractor_id": EXTRACTOR, "names": NAMES,
             "arrays": {k: {"shape": list(a.shape), "dtype": str(a.dtype)} for k, a in arrays.items()},
             "class_names": {"0": "whole image"}, "bad": []}
    (folder / "index.json").write_text(json.dumps(index))


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    root = tmp_path_factory.mktemp("valid")
    torch.manual_seed(0)
    vocab = Vocabulary.build([WORDS], min_count=1)
    cfg = {"vocab_size": len(vocab), "region_dim": D, "embed_dim": 16, "word_dim": 8, "hidden_dim": 16,
           "dropout": 0.0}
    model = AlignmentModel(AlignmentConfig(**cfg))
    ckpt = save_checkpoint(root / "align", model.state_dict(), {"kind": "alignment", "model": cfg,
                                                                "vocabulary": vocab.to_dict(),
                                                                "extractor_id": EXTRACTOR}) or root / "align"
    index = root / "index"
    write_store(index / "features", np.random.default_rng(0))
    with torch.no_grad():
        v = model.embed_regions(torch.rand(N, R, D))
    write_index(index, v, NAMES, ckpt, EXTRACTOR, sentences=SENTENCES)
    corpus = root / "snippets.json"
    corpus.write_text(json.dumps({"format": CORPUS_FORMAT, "extractor_id": EXTRACTOR, "beta": 0.0, "snippets": [
        {"split": "train", "image": NAMES[0], "sentence": 0, "region": 1, "box": [0, 0, 1, 1], "start": 0,
         "end": 2, "text": "a cat", "score": 1.5}]}))
    return root, ckpt, model, vocab


# -- the generated damage ---------------------------------------------------------------------

def npy_damage(valid_array):
    """(name, how to damage a .npy file) for an array like ``valid_array``."""
    def nan(path):
        a = np.lib.format.open_memmap(path, "r+")
        a.flat[a.size // 2] = np.nan
        a.flush()

    def inf(path):
        a = np.lib.format.open_memmap(path, "r+")
        a.flat[-1] = np.inf
        a.flush()

    def garbled(path):  # the data bytes after the header, all 0xff: NaN in float16 and float32
        data = bytearray(path.read_bytes())
        data[-64:] = b"\xff" * 64
        path.write_bytes(bytes(data))

    return [
        ("zero-byte", lambda p: p.write_bytes(b"")),
        ("truncated", lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])),
        ("header-only", lambda p: p.write_bytes(p.read_bytes()[:128])),
        ("random-bytes", lambda p: p.write_bytes(np.random.default_rng(1).bytes(4096))),
        ("text", lambda p: p.write_text("not an array\n")),
        ("nan", nan),
        ("inf", inf),
        ("garbled-bytes", garbled),
        ("wrong-shape", lambda p: np.save(p, np.zeros((N + 1,) + valid_array.shape[1:], valid_array.dtype))),
        ("wrong-dtype", lambda p: np.save(p, np.zeros(valid_array.shape, np.int32))),
        ("object-array", lambda p: np.save(p, np.array([None, 1], dtype=object), allow_pickle=True)),
    ]


def json_damage(meta, keys):
    """(name, replacement text) for a JSON file holding ``meta``, whose ``keys`` are required."""
    cases = [("not-json", "{not json"), ("zero-byte", ""), ("a-list", "[1, 2]"), ("null", "null"),
             ("deeply-nested", "[" * 100_000 + "]" * 100_000)]
    for key in keys:
        cases.append((f"no-{key}", json.dumps({k: v for k, v in meta.items() if k != key})))
        cases.append((f"{key}-wrong-type", json.dumps({**meta, key: {"x": [1]} if not isinstance(meta[key], dict)
                                                       else [1]})))
    return cases


INDEX_ARRAYS = ("regions_embedded.npy", "bounds.npy", "whole.npy")
INDEX_CASES = [(f, name, damage) for f in INDEX_ARRAYS for name, damage in npy_damage(np.zeros((N, 16), np.float32))]
STORE_ARRAYS = ("global.npy", "regions.npy", "boxes.npy")
STORE_CASES = [(f, name, damage) for f in STORE_ARRAYS for name, damage in npy_damage(np.zeros((N, R), np.float32))
               if name not in ("wrong-shape",)]


def damaged_copy(valid, tmp_path):
    root, ckpt, _, _ = valid
    index = tmp_path / "index"
    shutil.copytree(root / "index", index)
    return index, ckpt


def assert_refused(capsys, argv, *names):
    """Exit 2, one line on stderr naming the file, no traceback, nothing on stdout."""
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and out == ""
    assert any(n in err for n in names), err
    return err


# -- the valid index works, so that each refusal below is the damage's --------------------------

def test_the_valid_index_searches_and_describes(valid, capsys):
    root, ckpt, _, _ = valid
    index = str(root / "index")
    assert main(["search", index, "a cat on the table", "--checkpoint", str(ckpt), "--no-rerank"]) == 0
    assert main(["describe", index, NAMES[0], "--checkpoint", str(ckpt)]) == 0
    assert "nan" not in capsys.readouterr().out
    assert len(FeatureStore.open(root / "index" / "features")) == N
    assert load_corpus(root / "snippets.json")["snippets"][0]["text"] == "a cat"


# -- index arrays -----------------------------------------------------------------------------

@pytest.mark.parametrize("file,name,damage", INDEX_CASES, ids=[f"{f}-{n}" for f, n, _ in INDEX_CASES])
def test_damaged_index_array(valid, tmp_path, capsys, file, name, damage):
    index, ckpt = damaged_copy(valid, tmp_path)
    damage(index / file)
    err = assert_refused(capsys, ["search", str(index), "a cat", "--checkpoint", str(ckpt), "--no-rerank"],
                         str(index))
    assert "damaged" in err and "rebuild" in err
    with pytest.raises(ScenetalkError, match="damaged"):
        scenetalk.load(alignment=ckpt).search(index, "a cat", rerank=0)


# -- the sentence collection (.npz) -------------------------------------------------------------

def npz_rewrite(change):
    def damage(path):
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        change(arrays)
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    return damage


def _nan_value(a):
    a["value"] = a["value"].copy()
    a["value"][0] = np.nan


NPZ_CASES = [
    ("zero-byte", lambda p: p.write_bytes(b"")),
    ("truncated", lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])),
    ("truncated-end", lambda p: p.write_bytes(p.read_bytes()[:-10])),
    ("random-bytes", lambda p: p.write_bytes(np.random.default_rng(2).bytes(2048))),
    ("missing-key", npz_rewrite(lambda a: a.pop("value"))),
    ("wrong-dtype", npz_rewrite(lambda a: a.update(value=a["value"].astype(np.int64)))),
    ("nan-values", npz_rewrite(_nan_value)),
    ("counts-disagree", npz_rewrite(lambda a: a.update(words_per_sentence=a["words_per_sentence"] + 1))),
    ("negative-counts", npz_rewrite(lambda a: a.update(nonzeros_per_word=-a["nonzeros_per_word"]))),
    ("not-utf8", npz_rewrite(lambda a: a.update(text=np.full_like(a["text"], 0xff)))),
    ("text-bytes-disagree", npz_rewrite(lambda a: a.update(text_bytes=a["text_bytes"] * 2))),
    ("dims-too-large", npz_rewrite(lambda a: a.update(dim=a["dim"] + 1000))),
]


@pytest.mark.parametrize("name,damage", NPZ_CASES, ids=[n for n, _ in NPZ_CASES])
def test_damaged_sentence_collection(valid, tmp_path, capsys, name, damage):
    index, ckpt = damaged_copy(valid, tmp_path)
    damage(index / "sentences.npz")
    err = assert_refused(capsys, ["describe", str(index), NAMES[0], "--checkpoint", str(ckpt)], "sentences.npz")
    assert "damaged" in err and "rebuild" in err
    with pytest.raises(ScenetalkError, match="damaged"):
        scenetalk.load(alignment=ckpt).describe(index, NAMES[0])


# -- index.json ---------------------------------------------------------------------------------

def index_meta_cases(valid):
    meta = json.loads((valid[0] / "index" / "index.json").read_text())
    cases = json_damage(meta, ("format", "names", "extractor_id", "checkpoint_id"))
    cases += [("names-not-strings", json.dumps({**meta, "names": list(range(N))})),
              ("names-too-many", json.dumps({**meta, "names": meta["names"] + ["extra.jpg"]})),
              ("format-1", json.dumps({**meta, "format": 1})),
              ("format-true", json.dumps({**meta, "format": True})),
              ("sentences-not-object", json.dumps({**meta, "sentences": "yes"})),
              ("candidate-index-not-object", json.dumps({**meta, "candidate_index": 3}))]
    return cases


INDEX_META_CASE_NAMES = 5 + 2 * 4 + 6


@pytest.mark.parametrize("case", range(INDEX_META_CASE_NAMES))
def test_damaged_index_json(valid, tmp_path, capsys, case):
    name, text = index_meta_cases(valid)[case]
    index, ckpt = damaged_copy(valid, tmp_path)
    (index / "index.json").write_text(text)
    err = assert_refused(capsys, ["search", str(index), "a cat", "--checkpoint", str(ckpt), "--no-rerank"],
                         str(index))
    assert "rebuild" in err, name
    with pytest.raises(ScenetalkError):
        scenetalk.load(alignment=ckpt).search(index, "a cat", rerank=0)


def test_index_json_not_utf8(valid, tmp_path, capsys):
    index, ckpt = damaged_copy(valid, tmp_path)
    (index / "index.json").write_bytes(b"\xff\xfe{\x00")
    assert "damaged" in assert_refused(capsys, ["search", str(index), "a cat", "--checkpoint", str(ckpt)],
                                       "index.json")


def test_an_index_of_a_newer_format_says_upgrade(valid, tmp_path, capsys):
    index, ckpt = damaged_copy(valid, tmp_path)
    meta = json.loads((index / "index.json").read_text())
    (index / "index.json").write_text(json.dumps({**meta, "format": 99}))
    err = assert_refused(capsys, ["search", str(index), "a cat", "--checkpoint", str(ckpt)], str(index))
    assert "newer scenetalk" in err and "upgrade" in err and "earlier" not in err


# -- the feature store --------------------------------------------------------------------------

def store_meta_cases(valid):
    meta = json.loads((valid[0] / "index" / "features" / "index.json").read_text())
    cases = json_damage(meta, ("extractor_id", "names", "arrays"))
    cases += [("version-99", json.dumps({**meta, "version": 99})),
              ("names-repeated", json.dumps({**meta, "names": [NAMES[0]] * N})),
              ("names-not-strings", json.dumps({**meta, "names": list(range(N))})),
              ("shape-disagrees", json.dumps({**meta, "arrays": {**meta["arrays"], "global": {
                  "shape": [N, 7], "dtype": "float32"}}})),
              ("rows-disagree", json.dumps({**meta, "names": NAMES[:-1]})),
              ("spec-without-shape", json.dumps({**meta, "arrays": {**meta["arrays"], "global": {"dtype": "float32"}}})),
              ("spec-bad-dtype", json.dumps({**meta, "arrays": {**meta["arrays"], "global": {
                  "shape": [N, D], "dtype": "float99"}}})),
              ("bad-names-unknown", json.dumps({**meta, "bad": ["elsewhere.jpg"]})),
              ("class-names-not-ids", json.dumps({**meta, "class_names": {"cat": "cat"}}))]
    return cases


STORE_META_CASE_NAMES = 5 + 2 * 3 + 9


@pytest.mark.parametrize("case", range(STORE_META_CASE_NAMES))
def test_damaged_feature_store_index(valid, tmp_path, capsys, case):
    name, text = store_meta_cases(valid)[case]
    index, ckpt = damaged_copy(valid, tmp_path)
    (index / "features" / "index.json").write_text(text)
    with pytest.raises(ScenetalkError) as raised:
        FeatureStore.open(index / "features")
    assert str(index / "features") in str(raised.value) and "\n" not in str(raised.value), name
    assert_refused(capsys, ["sheet", str(index), "a cat", "--out", str(tmp_path / "s.png"),
                            "--checkpoint", str(ckpt)], "features")


@pytest.mark.parametrize("file,name,damage", STORE_CASES, ids=[f"{f}-{n}" for f, n, _ in STORE_CASES])
def test_damaged_feature_store_array(valid, tmp_path, capsys, file, name, damage):
    index, ckpt = damaged_copy(valid, tmp_path)
    damage(index / "features" / file)
    with pytest.raises(ScenetalkError) as raised:
        FeatureStore.open(index / "features")
    assert file in str(raised.value) and "\n" not in str(raised.value)
    assert "damaged" in str(raised.value)
    assert_refused(capsys, ["sheet", str(index), "a cat", "--out", str(tmp_path / "s.png"),
                            "--checkpoint", str(ckpt)], file)


# -- the snippet corpus -------------------------------------------------------------------------

def corpus_cases(valid):
    corpus = json.loads((valid[0] / "snippets.json").read_text())
    snippet = corpus["snippets"][0]
    cases = [("not-json", "{"), ("zero-byte", ""), ("a-list", "[]"), ("wrong-format", json.dumps(
        {**corpus, "format": "other"})), ("no-extractor-id", json.dumps({k: v for k, v in corpus.items()
                                                                          if k != "extractor_id"})),
             ("no-snippets", json.dumps({k: v for k, v in corpus.items() if k != "snippets"})),
             ("snippets-not-list", json.dumps({**corpus, "snippets": {}})),
             ("snippet-not-object", json.dumps({**corpus, "snippets": ["a cat"]})),
             ("score-nan", json.dumps({**corpus, "snippets": [{**snippet, "score": float("nan")}]})),
             ("box-short", json.dumps({**corpus, "snippets": [{**snippet, "box": [0, 1]}]})),
             ("end-before-start", json.dumps({**corpus, "snippets": [{**snippet, "start": 3, "end": 1}]})),
             ("empty-text", json.dumps({**corpus, "snippets": [{**snippet, "text": " "}]}))]
    for key in ("split", "image", "region", "text", "score"):
        cases.append((f"snippet-no-{key}", json.dumps({**corpus, "snippets": [
            {k: v for k, v in snippet.items() if k != key}]})))
        cases.append((f"snippet-{key}-wrong-type", json.dumps({**corpus, "snippets": [{**snippet, key: [1]}]})))
    return cases


CORPUS_CASE_NAMES = 12 + 2 * 5


@pytest.mark.parametrize("case", range(CORPUS_CASE_NAMES))
def test_damaged_snippet_corpus(valid, tmp_path, case):
    name, text = corpus_cases(valid)[case]
    path = tmp_path / "snippets.json"
    path.write_text(text)
    with pytest.raises(ScenetalkError) as raised:
        load_corpus(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value), name


# -- paths and arguments that name no file we can write -----------------------------------------

def test_index_build_out_is_a_file(valid, tmp_path, capsys):
    _, ckpt, _, _ = valid
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (32, 32)).save(photos / "a.png")
    out = tmp_path / "out"
    out.write_text("a file")
    for target in (out, out / "inside"):
        err = assert_refused(capsys, ["index", "build", str(photos), "--out", str(target), "--checkpoint", str(ckpt),
                                      "--quiet"], str(target))
        assert "not a folder" in err
    assert out.read_text() == "a file"


@pytest.mark.parametrize("size", ["0", "-4", "100000"])
def test_features_region_size_out_of_range(tmp_path, capsys, size):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (32, 32)).save(photos / "a.png")
    assert "--region-size" in assert_refused(capsys, ["features", "folder", "--images", str(photos), "--out",
                                                      str(tmp_path / "store"), "--regions", "--region-size", size,
                                                      "--quiet"], "--region-size")
    assert not (tmp_path / "store").exists()


# -- sentences of unknown words: search, describe and score alike -------------------------------

def test_describe_refuses_a_sentence_of_unknown_words(valid, tmp_path, capsys):
    root, ckpt, _, _ = valid
    m = scenetalk.load(alignment=ckpt)
    with pytest.raises(ScenetalkError, match="none of the words of 'zebra giraffe'"):
        m.describe(root / "index", NAMES[0], sentences=["a cat sits on the table", "zebra giraffe"])
    result = m.describe(root / "index", NAMES[0], sentences=["a cat sits on the table", "a zebra on the table"],
                        rerank=0)
    assert result.unknown_words == {"a zebra on the table": ["zebra"]}
    lines = tmp_path / "lines.txt"
    lines.write_text("a cat sits on the table\nzebra giraffe\n")
    err = assert_refused(capsys, ["describe", str(root / "index"), NAMES[0], "--sentences", str(lines),
                                  "--checkpoint", str(ckpt)], str(lines))
    assert "zebra giraffe" in err


class _Regions:
    def features(self, images):
        return {"regions": np.random.default_rng(3).random((len(images), R, D), dtype=np.float32)}


def test_score_refuses_a_sentence_of_unknown_words(valid):
    _, _, model, vocab = valid
    aligner = object.__new__(Aligner)  # the valid model, with stand-in region features
    from scenetalk.checkpoint import as_alignment

    aligner.model, aligner.vocab, aligner.extractor = as_alignment(model), vocab, _Regions()
    aligner.meta = {"model": {"score": "max"}}
    photo = Image.new("RGB", (32, 32))
    with pytest.raises(ScenetalkError, match="none of the words of 'zebra giraffe'"):
        aligner.score([photo], ["a cat", "zebra giraffe"])
    with pytest.warns(UserWarning, match="zebra"):
        scores = aligner.score([photo], ["a cat", "a zebra"])
    assert scores.shape == (1, 2) and np.isfinite(scores).all()
    assert aligner.unknown_words(["a cat", "a zebra"]) == [[], ["zebra"]]
