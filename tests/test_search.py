"""Searching photos with the alignment model: the candidate stage never changes the answer
when it says it is exact, and bad input is refused with a clear message."""

import shutil

import pytest
import torch

from scenetalk.checkpoint import save_checkpoint
from scenetalk.data.text import Vocabulary
from scenetalk.errors import ScenetalkError
from scenetalk.models.alignment import AlignmentConfig, AlignmentModel
from scenetalk.samples import sample_photo_paths
from scenetalk.search import SearchIndexError, Searcher, build_index

WORDS = "a the cat dog man woman rocket cup coffee astronaut sits on table in space red white".split()


def random_checkpoint(folder, extractor_id, seed=0):
    torch.manual_seed(seed)
    vocab = Vocabulary.build([WORDS], min_count=1)
    cfg = {"vocab_size": len(vocab), "region_dim": 1280, "embed_dim": 16, "word_dim": 8, "hidden_dim": 16,
           "dropout": 0.0}
    model = AlignmentModel(AlignmentConfig(**cfg))
    save_checkpoint(folder, model.state_dict(), {"kind": "alignment", "model": cfg, "vocabulary": vocab.to_dict(),
                                                 "extractor_id": extractor_id})
    return folder


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    from scenetalk.features.extract import Extractor

    root = tmp_path_factory.mktemp("search")
    photos = root / "photos"
    photos.mkdir()
    for p in sample_photo_paths():
        shutil.copy(p, photos / p.name)
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    ckpt = random_checkpoint(root / "align", Extractor(regions=True).extractor_id)
    images = sorted((p.name, str(p)) for p in photos.iterdir())
    return build_index(images, root / "index", ckpt, progress=False), ckpt, root


def test_search_is_exhaustive_when_it_says_exact(index):
    path, ckpt, _ = index
    searcher = Searcher(path, ckpt)
    assert "broken.jpg" not in searcher.names and len(searcher.names) == 4
    s, _ = searcher.embed_query("a cat sits on the table")
    v = torch.tensor(searcher.vectors[:], dtype=torch.float32)
    brute = torch.einsum("nrh,th->nrt", v, s).max(dim=1).values.sum(dim=1)
    want = [searcher.names[i] for i in brute.argsort(descending=True)[:2]]
    for candidates in (1, 2, 3, 4):
        result = searcher.search("a cat sits on the table", k=2, candidates=candidates)
        if result.exact:
            assert [h.name for h in result.hits] == want
    full = searcher.search("a cat sits on the table", k=2, candidates=4)
    assert full.exact and [h.name for h in full.hits] == want
    assert [h.score for h in full.hits] == pytest.approx(sorted(brute.tolist(), reverse=True)[:2], rel=1e-3)


def test_unknown_and_empty_queries(index):
    path, ckpt, _ = index
    searcher = Searcher(path, ckpt)
    assert searcher.search("a zebra on the table", k=1).unknown_words == ["zebra"]
    with pytest.raises(ScenetalkError, match="none of the words"):
        searcher.search("zebra giraffe")
    with pytest.raises(ScenetalkError, match="empty query"):
        searcher.search("  ?! ")


def test_index_refuses_another_model_and_missing_files(index, tmp_path):
    path, ckpt, root = index
    other = random_checkpoint(tmp_path / "other", "efficientnet-lite0-224-000000000000+x")
    with pytest.raises(ScenetalkError, match="000000000000"):
        Searcher(path, other)
    same_features = random_checkpoint(tmp_path / "same", Searcher(path, ckpt).meta["extractor_id"], seed=1)
    with pytest.raises(SearchIndexError, match="rebuild the index"):
        Searcher(path, same_features)
    with pytest.raises(SearchIndexError, match="not a scenetalk index"):
        Searcher(tmp_path, ckpt)


def test_cli_index_and_search(index, tmp_path, capsys):
    import json

    from scenetalk.cli import main

    _, ckpt, root = index
    assert main(["index", "build", str(root / "photos"), "--out", str(tmp_path / "idx"), "--checkpoint", str(ckpt),
                 "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "indexed 4 images" in captured.out and "broken.jpg" in captured.err
    assert main(["search", str(tmp_path / "idx"), "a red cup on the table", "--top", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["hits"]) == 3 and out["exact"] and out["unknown_words"] == []
    assert main(["search", str(tmp_path / "idx"), "zebra"]) == 2
    assert "none of the words" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "nowhere"), "a dog"]) == 2
    assert "not a scenetalk index" in capsys.readouterr().err


def test_api_search_and_score(index):
    import scenetalk

    path, ckpt, root = index
    m = scenetalk.load(alignment=ckpt)
    photos = sorted((root / "photos").glob("*.png"))
    S = m.score([str(p) for p in photos], ["a cat sits on the table", "a rocket in space"])
    assert S.shape == (len(photos), 2)
    searcher = Searcher(path, ckpt)
    s, _ = searcher.embed_query("a cat sits on the table")
    # the API's score of a photo equals the index's exact score of it
    result = m.search(path, "a cat sits on the table", k=4)
    by_name = {h.name: h.score for h in result.hits}
    for p, score in zip(photos, S[:, 0].tolist()):
        assert by_name[p.name] == pytest.approx(score, rel=1e-2)
    with pytest.raises(ScenetalkError, match="has no words"):
        m.score([str(photos[0])], ["?!"])


def test_shipped_alignment_model_finds_the_sample_photos(tmp_path, capsys):
    """The shipped model, on a fresh install: the index of the bundled photos answers
    sentences about them with the right photo (and the API scores agree)."""
    import json

    import scenetalk
    from scenetalk.api import shipped_alignment
    from scenetalk.checkpoint import load_checkpoint
    from scenetalk.cli import main

    folder = shipped_alignment()
    assert sum(f.stat().st_size for f in folder.iterdir()) <= 30 * 2**20
    assert load_checkpoint(folder)[1]["kind"] == "alignment"
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sample_photo_paths():
        shutil.copy(p, photos / p.name)
    assert main(["index", "build", str(photos), "--out", str(tmp_path / "idx"), "--quiet"]) == 0
    expected = {"a cat lying on a blanket": "chelsea.png", "a man in a white suit": "astronaut.png",
                "a cup of coffee on a table": "coffee.png"}
    capsys.readouterr()
    for query, photo in expected.items():
        assert main(["search", str(tmp_path / "idx"), query, "--top", "1", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["hits"][0]["image"] == photo
    S = scenetalk.load().score([str(photos / n) for n in expected.values()], list(expected))
    assert torch.equal(S.argmax(dim=0), torch.arange(3))


def test_damaged_index_and_bad_options_are_one_line_errors(index, tmp_path, capsys):
    from scenetalk.cli import main
    from scenetalk.search import BOUNDS_FILE

    path, ckpt, _ = index
    broken = tmp_path / "broken"
    shutil.copytree(path, broken)
    (broken / BOUNDS_FILE).write_bytes(b"not numpy")
    with pytest.raises(SearchIndexError, match="damaged index arrays"):
        Searcher(broken, ckpt)
    assert main(["search", str(path), "a cat", "--top", "0"]) == 2
    err = capsys.readouterr().err
    assert "--top" in err and "Traceback" not in err
