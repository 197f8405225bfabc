"""Bad arguments at the façade (issue 13): every public ``Scenetalk`` method and
``scenetalk.load`` refuse wrong types, out-of-range, non-finite, empty and over-long
arguments with a one-line ``ScenetalkError`` naming the argument, before any model is loaded;
the CLI, going through the same checks, exits 2 with one error line and no traceback. Named
pipes given as images are refused by ``stat``, never opened (opening one blocks forever)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import scenetalk
from scenetalk import checks
from scenetalk.cli import main
from scenetalk.errors import ImageError, ScenetalkError
from scenetalk.limits import MAX_BATCH, MAX_BEAM, MAX_CANDIDATES, MAX_RESULTS, MAX_SENTENCE_CHARS, MAX_WORDS
from scenetalk.vision.images import collect_inputs, list_images, load_image

LONG = "dog " * 10_000           # the 10,000-word query
OVER = "dog " * (MAX_WORDS + 1)  # one word over the limit
NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A readable photo, a named pipe called like one, and an index path that does not exist
    (every case below is refused before the index would be opened)."""
    root = tmp_path_factory.mktemp("bad")
    photo = root / "photo.png"
    Image.new("RGB", (8, 8), (200, 30, 30)).save(photo)
    fifo = root / "pipe.jpg"
    os.mkfifo(fifo)
    return {"photo": str(photo), "fifo": str(fifo), "index": str(root / "no-index"), "root": root}


@pytest.fixture(scope="module")
def m():
    return scenetalk.load()  # models load on first use: none of these cases gets that far


@pytest.fixture(autouse=True)
def bounded():
    """A case that blocks (a named pipe opened) fails after 60 s instead of hanging the run."""
    def stop(signum, frame):
        raise TimeoutError("blocked: a bad argument was not refused in bounded time")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# (id, call(m, files), the argument the message must name)
API_CASES = [
    # caption
    ("caption-none", lambda m, f: m.caption(None), "images"),
    ("caption-int", lambda m, f: m.caption(5), "images"),
    ("caption-item-none", lambda m, f: m.caption([f["photo"], None]), r"images\[1\]"),
    ("caption-item-empty", lambda m, f: m.caption([""]), r"images\[0\]"),
    ("caption-fifo", lambda m, f: m.caption(f["fifo"]), "pipe.jpg: a named pipe"),
    ("caption-folder", lambda m, f: m.caption([f["root"]]), "is a folder"),
    ("caption-batch-negative", lambda m, f: m.caption(f["photo"], batch_size=-1), "--batch-size"),
    ("caption-batch-zero", lambda m, f: m.caption(f["photo"], batch_size=0), "--batch-size"),
    ("caption-batch-float", lambda m, f: m.caption(f["photo"], batch_size=2.5), "batch_size"),
    ("caption-batch-huge", lambda m, f: m.caption(f["photo"], batch_size=MAX_BATCH + 1), "batch_size"),
    ("caption-beam-huge", lambda m, f: m.caption(f["photo"], beam_size=100_000), "beam_size"),
    ("caption-beam-str", lambda m, f: m.caption(f["photo"], beam_size="3"), "beam_size"),
    ("caption-beam-bool", lambda m, f: m.caption(f["photo"], beam_size=True), "beam_size"),
    ("caption-beam-zero", lambda m, f: m.caption(f["photo"], beam_size=0), "--beam"),
    ("caption-nbest-zero", lambda m, f: m.caption(f["photo"], n_best=0), "--n-best"),
    ("caption-nbest-over-beam", lambda m, f: m.caption(f["photo"], beam_size=3, n_best=4), "--n-best"),
    ("caption-maxlen-zero", lambda m, f: m.caption(f["photo"], max_len=0), "--max-len"),
    ("caption-maxlen-huge", lambda m, f: m.caption(f["photo"], max_len=10**6), "max_len"),
    ("caption-penalty-nan", lambda m, f: m.caption(f["photo"], length_penalty=NAN), "length_penalty"),
    ("caption-penalty-inf", lambda m, f: m.caption(f["photo"], length_penalty=INF), "length_penalty"),
    ("caption-penalty-str", lambda m, f: m.caption(f["photo"], length_penalty="0.5"), "length_penalty"),
    ("caption-minlen-negative", lambda m, f: m.caption(f["photo"], min_len=-1), "min_len"),
    ("caption-unknown-option", lambda m, f: m.caption(f["photo"], beam=3), "'beam'"),
    # caption_files
    ("files-none", lambda m, f: m.caption_files(None), "inputs"),
    ("files-item-none", lambda m, f: m.caption_files([f["photo"], None]), r"inputs\[1\]"),
    ("files-int", lambda m, f: m.caption_files(3), "inputs"),
    ("files-beam-huge", lambda m, f: m.caption_files(f["photo"], beam_size=100_000), "beam_size"),
    ("files-batch-negative", lambda m, f: m.caption_files(f["photo"], batch_size=-1), "--batch-size"),
    ("files-penalty-nan", lambda m, f: m.caption_files(f["photo"], length_penalty=NAN), "length_penalty"),
    ("files-on-problem", lambda m, f: m.caption_files(f["photo"], on_problem="print"), "on_problem"),
    ("files-only-fifo", lambda m, f: m.caption_files(f["fifo"], on_problem=lambda line: None), "nothing to caption"),
    # search
    ("search-none", lambda m, f: m.search(f["index"], None), "sentence"),
    ("search-empty", lambda m, f: m.search(f["index"], "  "), "sentence"),
    ("search-bytes", lambda m, f: m.search(f["index"], b"a dog"), "sentence"),
    ("search-10000-words", lambda m, f: m.search(f["index"], LONG), "sentence"),
    ("search-over-limit", lambda m, f: m.search(f["index"], OVER), "sentence"),
    ("search-long-word", lambda m, f: m.search(f["index"], "x" * (MAX_SENTENCE_CHARS + 1)), "sentence"),
    ("search-k-float", lambda m, f: m.search(f["index"], "a dog", k=2.5), "k "),
    ("search-k-str", lambda m, f: m.search(f["index"], "a dog", k="3"), "k "),
    ("search-k-negative", lambda m, f: m.search(f["index"], "a dog", k=-1), "k "),
    ("search-k-zero", lambda m, f: m.search(f["index"], "a dog", k=0), "k "),
    ("search-k-bool", lambda m, f: m.search(f["index"], "a dog", k=True), "k "),
    ("search-k-huge", lambda m, f: m.search(f["index"], "a dog", k=MAX_RESULTS + 1), "k "),
    ("search-candidates-zero", lambda m, f: m.search(f["index"], "a dog", candidates=0), "candidates"),
    ("search-candidates-huge", lambda m, f: m.search(f["index"], "a dog", candidates=MAX_CANDIDATES + 1),
     "candidates"),
    ("search-rerank-negative", lambda m, f: m.search(f["index"], "a dog", rerank=-1), "rerank"),
    ("search-rerank-float", lambda m, f: m.search(f["index"], "a dog", rerank=1.5), "rerank"),
    ("search-index-none", lambda m, f: m.search(None, "a dog"), "index"),
    # describe
    ("describe-image-none", lambda m, f: m.describe(f["index"], None), "image"),
    ("describe-image-int", lambda m, f: m.describe(f["index"], 3), "image"),
    ("describe-fifo", lambda m, f: m.describe(f["index"], f["fifo"]), "pipe.jpg: a named pipe"),
    ("describe-k-zero", lambda m, f: m.describe(f["index"], f["photo"], k=0), "k "),
    ("describe-k-str", lambda m, f: m.describe(f["index"], f["photo"], k="5"), "k "),
    ("describe-sentences-empty", lambda m, f: m.describe(f["index"], f["photo"], sentences=[]), "sentences"),
    ("describe-sentences-str", lambda m, f: m.describe(f["index"], f["photo"], sentences="a dog"), "sentences"),
    ("describe-sentence-blank", lambda m, f: m.describe(f["index"], f["photo"], sentences=["a dog", ""]),
     r"sentences\[1\]"),
    ("describe-sentence-long", lambda m, f: m.describe(f["index"], f["photo"], sentences=[LONG]),
     r"sentences\[0\]"),
    ("describe-sentence-none", lambda m, f: m.describe(f["index"], f["photo"], sentences=[None]),
     r"sentences\[0\]"),
    # score
    ("score-no-sentences", lambda m, f: m.score([f["photo"]], []), "sentences"),
    ("score-no-images", lambda m, f: m.score([], ["a dog"]), "images"),
    ("score-images-none", lambda m, f: m.score(None, ["a dog"]), "images"),
    ("score-sentences-none", lambda m, f: m.score([f["photo"]], None), "sentences"),
    ("score-sentence-int", lambda m, f: m.score([f["photo"]], [3]), r"sentences\[0\]"),
    ("score-sentence-long", lambda m, f: m.score([f["photo"]], LONG), r"sentences\[0\]"),
    ("score-fifo", lambda m, f: m.score([f["fifo"]], ["a dog"]), "a named pipe"),
    # align
    ("align-sentence-long", lambda m, f: m.align(f["photo"], LONG), "sentence"),
    ("align-sentence-none", lambda m, f: m.align(f["photo"], None), "sentence"),
    ("align-beta-nan", lambda m, f: m.align(f["photo"], "a dog", beta=NAN), "beta"),
    ("align-beta-negative", lambda m, f: m.align(f["photo"], "a dog", beta=-1), "beta"),
    ("align-beta-str", lambda m, f: m.align(f["photo"], "a dog", beta="1"), "beta"),
    ("align-min-score-nan", lambda m, f: m.align(f["photo"], "a dog", min_score=NAN), "min_score"),
    ("align-min-score-inf", lambda m, f: m.align(f["photo"], "a dog", min_score=-INF), "min_score"),
    ("align-image-none", lambda m, f: m.align(None, "a dog"), "image"),
    ("align-fifo", lambda m, f: m.align(f["fifo"], "a dog"), "a named pipe"),
    # regions
    ("regions-top-zero", lambda m, f: m.regions(f["photo"], top=0), "top"),
    ("regions-top-over", lambda m, f: m.regions(f["photo"], top=20), "top"),
    ("regions-top-float", lambda m, f: m.regions(f["photo"], top=2.5), "top"),
    ("regions-beam-huge", lambda m, f: m.regions(f["photo"], beam_size=100_000), "beam_size"),
    ("regions-beam-str", lambda m, f: m.regions(f["photo"], beam_size="7"), "beam_size"),
    ("regions-maxlen-huge", lambda m, f: m.regions(f["photo"], max_len=10**6), "max_len"),
    ("regions-image-none", lambda m, f: m.regions(None), "image"),
    ("regions-fifo", lambda m, f: m.regions(f["fifo"]), "a named pipe"),
    # best_regions
    ("best-snippets-none", lambda m, f: m.best_regions(f["index"], None), "snippets"),
    ("best-snippets-empty", lambda m, f: m.best_regions(f["index"], []), "snippets"),
    ("best-snippet-long", lambda m, f: m.best_regions(f["index"], [OVER]), r"snippets\[0\]"),
    ("best-top-zero", lambda m, f: m.best_regions(f["index"], "a dog", top=0), "top"),
    ("best-per-photo-zero", lambda m, f: m.best_regions(f["index"], "a dog", per_photo=0), "per_photo"),
    ("best-top-float", lambda m, f: m.best_regions(f["index"], "a dog", top=2.5), "top"),
    # open_index and load
    ("open-index-none", lambda m, f: m.open_index(None), "index"),
    ("open-index-checkpoint-int", lambda m, f: m.open_index(f["index"], checkpoint=5), "checkpoint"),
    ("load-captioner-int", lambda m, f: scenetalk.load(captioner=5), "captioner"),
    ("load-alignment-empty", lambda m, f: scenetalk.load(alignment=""), "alignment"),
]


@pytest.mark.parametrize("call, argument", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_refuses_a_bad_argument_naming_it(m, files, call, argument):
    with pytest.raises(ScenetalkError, match=argument) as err:
        call(m, files)
    assert "\n" not in str(err.value)
    assert m._captioner is None and m._aligner is None and not m._region_generators  # refused before loading


def test_the_corpus_is_large_enough():
    assert len(API_CASES) >= 50 and len(CLI_CASES) >= 15


# (id, argv with {photo}/{fifo}/{index}, text the error line must hold)
CLI_CASES = [
    ("caption-beam-huge", ["caption", "{photo}", "--beam", "100000"], "--beam"),
    ("caption-batch-negative", ["caption", "{photo}", "--batch-size", "-1"], "--batch-size"),
    ("caption-batch-zero", ["caption", "{photo}", "--batch-size", "0"], "--batch-size"),
    ("caption-penalty-nan", ["caption", "{photo}", "--length-penalty", "nan"], "--length-penalty"),
    ("caption-maxlen-huge", ["caption", "{photo}", "--max-len", "1000000"], "--max-len"),
    ("caption-nbest-zero", ["caption", "{photo}", "--n-best", "0"], "--n-best"),
    ("search-10000-words", ["search", "{index}", LONG], "10,000 words"),
    ("search-empty", ["search", "{index}", ""], "empty"),
    ("search-top-huge", ["search", "{index}", "a dog", "--top", "100000"], "--top"),
    ("search-candidates-huge", ["search", "{index}", "a dog", "--candidates", "1000000000"], "--candidates"),
    ("describe-fifo", ["describe", "{index}", "{fifo}"], "named pipe"),
    ("describe-top-huge", ["describe", "{index}", "{photo}", "--top", "100000"], "--top"),
    ("align-10000-words", ["align", "{photo}", LONG], "sentence"),
    ("align-beta-nan", ["align", "{photo}", "a dog", "--beta", "nan"], "--beta"),
    ("align-min-score-nan", ["align", "{photo}", "a dog", "--min-score", "nan"], "--min-score"),
    ("align-fifo", ["align", "{fifo}", "a dog"], "named pipe"),
    ("regions-beam-huge", ["regions", "{photo}", "--beam", "100000"], "--beam"),
    ("regions-fifo", ["regions", "{fifo}"], "named pipe"),
    ("sheet-long-snippet", ["sheet", "{index}", OVER, "--out", "{root}/sheet.png"], "snippets"),
    ("evaluate-penalty-nan", ["evaluate", "{index}", "--features", "{index}", "--length-penalty", "nan"],
     "--length-penalty"),
    ("evaluate-beam-zero", ["evaluate", "{index}", "--features", "{index}", "--beam", "0"], "--beam"),
    ("evaluate-folds-zero", ["evaluate", "{index}", "--features", "{index}", "--folds", "0"], "--folds"),
    ("evaluate-maxlen-zero", ["evaluate", "{index}", "--features", "{index}", "--max-len", "0"], "--max-len"),
    ("snippets-beta-nan", ["snippets", "{index}", "--features", "{index}", "--beta", "nan", "--out",
                           "{root}/corpus.json"], "--beta"),
    ("report-beta-nan", ["report", "--features", "{index}", "--beta", "nan", "--out", "{root}/report"], "--beta"),
    ("learn-word-steps-zero", ["learn-word", "zorblat", "--images", "{root}", "--captions", "{index}", "--out",
                               "{root}/learned", "--steps", "0"], "--steps"),
    ("learn-word-out-a-file", ["learn-word", "zorblat", "--images", "{root}", "--captions", "{index}", "--out",
                               "{photo}"], "is a file"),
    ("learn-word-no-images", ["learn-word", "zorblat", "--images", "{index}", "--captions", "{index}", "--out",
                              "{root}/learned"], "no such folder"),
    ("learn-word-no-captions", ["learn-word", "zorblat", "--images", "{root}", "--captions", "{index}", "--out",
                                "{root}/learned"], "no-index"),
]


@pytest.mark.parametrize("argv, says", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_exits_2_with_one_error_line(files, capsys, argv, says):
    from scenetalk import runtime
    from scenetalk.cli import TRAIN_COMMANDS

    if argv[0] in TRAIN_COMMANDS and not runtime.torch_installed():
        says = "needs PyTorch"        # the light install says that first (tests/test_light_install.py)
    assert main([a.format(**files) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith(f"scenetalk {argv[0]}: error: ") and says in line and len(line) < 300


def test_cli_caption_of_a_named_pipe_says_so_and_stops(files, capsys):
    assert main(["caption", files["fifo"], "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.splitlines() == [f"scenetalk caption: {files['fifo']}: a named pipe (FIFO), not an image file",
                                "scenetalk caption: error: nothing to caption"]


def test_cli_caption_of_a_named_pipe_finishes_in_a_subprocess(files):
    # the real program, as a user starts it: no test-side alarm can stop a blocked open() there
    done = subprocess.run([sys.executable, "-m", "scenetalk.cli", "caption", files["fifo"], "--quiet"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "named pipe" in done.stderr and "Traceback" not in done.stderr


def test_load_image_refuses_a_named_pipe_by_stat(files):
    with pytest.raises(ImageError, match=r"pipe.jpg: a named pipe \(FIFO\), not an image file"):
        load_image(files["fifo"])
    assert load_image(files["photo"]).size == (8, 8)


def test_folders_listing_leaves_out_named_pipes(files, tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "ok.png")
    (tmp_path / "sub").mkdir()
    os.mkfifo(tmp_path / "sub" / "deep.png")
    assert list_images(tmp_path) == ["ok.png"]
    assert list_images(tmp_path, recursive=True) == ["ok.png"]
    paths, problems = collect_inputs([tmp_path, tmp_path / "pipe.png"])
    assert paths == [str(tmp_path / "ok.png")]
    assert problems == [f"{tmp_path / 'pipe.png'}: a named pipe (FIFO), not an image file"]


def test_valid_arguments_pass_the_checks_unchanged():
    assert checks.whole_number("k", 3, 1, 10) == 3
    assert checks.finite_number("beta", 0, low=0.0) == 0.0
    assert checks.sentence("q", "a dog runs") == "a dog runs"
    assert checks.sentences("s", "a dog", single=True) == ["a dog"]
    assert checks.sentences("s", ("a", "b")) == ["a", "b"]
    assert checks.sentence("q", "dog " * MAX_WORDS) == "dog " * MAX_WORDS  # the limit itself is allowed
    assert checks.whole_number("beam", MAX_BEAM, 1, MAX_BEAM) == MAX_BEAM


# Property tests: any value of these kinds passes and is in range, or is a ScenetalkError.
ANY = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                st.text(max_size=50), st.binary(max_size=10), st.lists(st.integers(), max_size=3))
BOUND = st.one_of(st.none(), st.integers(-1000, 1000))


@settings(max_examples=300, deadline=None)
@given(value=ANY, low=BOUND, high=BOUND)
def test_whole_number_accepts_only_whole_numbers_in_range(value, low, high):
    try:
        got = checks.whole_number("k", value, low, high)
    except ScenetalkError as exc:
        assert str(exc).startswith("k must be a whole number") and "\n" not in str(exc)
        return
    assert type(got) is int and got == value and not isinstance(value, bool)
    assert (low is None or got >= low) and (high is None or got <= high)


@settings(max_examples=300, deadline=None)
@given(value=ANY, low=st.one_of(st.none(), st.floats(-1e6, 1e6)), high=st.one_of(st.none(), st.floats(-1e6, 1e6)))
def test_finite_number_accepts_only_finite_numbers_in_range(value, low, high):
    try:
        got = checks.finite_number("beta", value, low, high)
    except ScenetalkError as exc:
        assert str(exc).startswith("beta must be a finite number") and "\n" not in str(exc)
        return
    assert type(got) is float and math.isfinite(got) and not isinstance(value, (bool, str))
    assert (low is None or got >= low) and (high is None or got <= high)


WORDS = st.lists(st.sampled_from(["dog", "a", " ", "\n", "\t", "é", "狗", ""]), max_size=MAX_WORDS + 20).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(ANY, WORDS))
def test_sentence_accepts_only_bounded_nonempty_str(text):
    try:
        got = checks.sentence("query", text)
    except ScenetalkError as exc:
        assert str(exc).startswith("query") and "\n" not in str(exc)
        return
    assert got is text and text.strip() and len(text.split()) <= MAX_WORDS and len(text) <= MAX_SENTENCE_CHARS


@settings(max_examples=200, deadline=None)
@given(texts=st.one_of(ANY, st.lists(st.one_of(WORDS, st.none(), st.integers()), max_size=4)))
def test_sentences_accepts_only_nonempty_lists_of_sentences(texts):
    try:
        got = checks.sentences("sentences", texts)
    except ScenetalkError as exc:
        assert str(exc).startswith("sentences") and "\n" not in str(exc)
        return
    assert got == list(texts) and got and all(isinstance(t, str) and t.strip() for t in got)


# -- property tests over the façade's own methods: any value of a numeric or text argument is
# either accepted (and the call then fails on the missing photo or index, as it should) or
# refused with a ScenetalkError; never another exception, and no model is loaded.
@settings(max_examples=150, deadline=None)
@given(beam=ANY, n_best=ANY, max_len=ANY, penalty=ANY, batch=ANY)
def test_caption_arguments_of_any_value_end_in_a_scenetalk_error(tmp_path_factory, beam, n_best, max_len, penalty,
                                                                  batch):
    m = scenetalk.load()
    with pytest.raises(ScenetalkError):
        m.caption(str(tmp_path_factory.getbasetemp() / "missing.jpg"), beam_size=beam, n_best=n_best,
                  max_len=max_len, length_penalty=penalty, batch_size=batch)
    assert m._captioner is None


@settings(max_examples=150, deadline=None)
@given(query=st.one_of(ANY, WORDS), k=ANY, candidates=ANY, rerank=ANY)
def test_search_arguments_of_any_value_end_in_a_scenetalk_error(tmp_path_factory, query, k, candidates, rerank):
    m = scenetalk.load()
    with pytest.raises(ScenetalkError):
        m.search(str(tmp_path_factory.getbasetemp() / "no-index"), query, k=k, candidates=candidates, rerank=rerank)
    assert not m._searchers


@settings(max_examples=150, deadline=None)
@given(sentence=st.one_of(ANY, WORDS), beta=ANY, min_score=ANY)
def test_align_arguments_of_any_value_end_in_a_scenetalk_error(tmp_path_factory, sentence, beta, min_score):
    m = scenetalk.load()
    with pytest.raises(ScenetalkError):
        m.align(str(tmp_path_factory.getbasetemp() / "missing.jpg"), sentence, beta=beta, min_score=min_score)
    assert m._aligner is None
