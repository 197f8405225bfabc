"""Searching photos with the alignment model: the candidate stage (exact bound or FAISS) never
changes the answer when it says it is exact; describing a photo ranks every sentence by its
exact S_kl; bad input is refused with a clear message."""

import os
import shutil

import numpy as np
import pytest
from conftest import copy_sample_photos

torch = pytest.importorskip("torch", reason="needs PyTorch (the train extra)")

from scenetalk.checkpoint import save_checkpoint
from scenetalk.data.text import Vocabulary
from scenetalk.errors import ScenetalkError, SearchIndexError
from scenetalk.models.alignment import AlignmentConfig, AlignmentModel
from scenetalk.retrieval.candidates import bound_candidates, merge_candidates
from scenetalk.retrieval.index import (
    BOUNDS_FILE,
    FAISS_FILE,
    INDEX_FILE,
    VECTORS_FILE,
    WHOLE_FAISS_FILE,
    WHOLE_FILE,
    build_index,
    write_index,
)
from scenetalk.retrieval.search import Searcher

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
    photos = copy_sample_photos(root / "photos")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    ckpt = random_checkpoint(root / "align", Extractor(regions=True).extractor_id)
    images = sorted((p.name, str(p)) for p in photos.iterdir())
    return build_index(images, root / "index", ckpt, progress=False), ckpt, root


@pytest.mark.slow
def test_search_is_exhaustive_when_it_says_exact(index):
    path, ckpt, _ = index
    searcher = Searcher(path, ckpt)
    assert "broken.jpg" not in searcher.names and len(searcher.names) == 4
    brute = brute_force_scores(searcher, "a cat sits on the table")
    want = [searcher.names[i] for i in brute.argsort(descending=True)[:2]]
    proved = 0
    for candidates in (1, 2, 3, 4):
        result = searcher.search("a cat sits on the table", k=2, candidates=candidates)
        names = [h.name for h in result.hits]
        # exact or not: photos of the index, once each, best first, with their exact scores
        assert len(names) == 2 and len(set(names)) == 2 and set(names) <= set(searcher.names)
        assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
        assert [h.score for h in result.hits] == pytest.approx(
            [float(brute[searcher.names.index(n)]) for n in names], rel=1e-3)
        if result.exact:
            proved += 1
            assert names == want
    assert proved >= 1  # candidates=4: every photo scored
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
    # issue #17: a query this (English) model cannot read says why in one line
    with pytest.raises(ScenetalkError, match="written in Cyrillic script; this model reads English"):
        searcher.search("Собака бежит по траве")
    with pytest.raises(ScenetalkError, match="written in Chinese characters; this model reads English"):
        searcher.search("一只狗在草地上奔跑")
    with pytest.raises(ScenetalkError, match=r"lang \(--lang\) 'de': this index's model reads en"):
        searcher.search("ein hund", lang="de")


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


@pytest.mark.slow
def test_index_extracts_the_features_its_checkpoint_was_trained_on(index, tmp_path, capsys):
    from scenetalk.cli import main
    from scenetalk.features.extract import Extractor
    from scenetalk.features.store import FeatureStore
    from scenetalk.vision.backbones import create_backbone

    _, _, root = index
    photos = [(p.name, str(p)) for p in sorted((root / "photos").iterdir())][:2]
    lite2 = Extractor(create_backbone("efficientnet-lite2"), regions=True).extractor_id
    built = build_index(photos, tmp_path / "lite2", random_checkpoint(tmp_path / "a2", lite2), progress=False)
    store = FeatureStore.open(built / "features")
    assert store.extractor_id == lite2 and "grid" not in store.index["arrays"]  # search never reads a grid
    # An id no installed backbone gives is refused before any photo is read.
    unknown = random_checkpoint(tmp_path / "a3", "resnet-152-0123456789ab+x")
    with pytest.raises(ScenetalkError, match="resnet-152-0123456789ab"):
        build_index(photos, tmp_path / "never", unknown, progress=False)
    assert not (tmp_path / "never").exists()
    # Rebuilding an index folder with another model's features needs --overwrite.
    lite0 = random_checkpoint(tmp_path / "a0", Extractor(regions=True).extractor_id)
    folder = str(root / "photos")
    assert main(["index", "build", folder, "--out", str(built), "--checkpoint", str(lite0), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["index", "build", folder, "--out", str(built), "--checkpoint", str(lite0), "--quiet",
                 "--overwrite"]) == 0
    assert Searcher(built, lite0).meta["extractor_id"] == Extractor(regions=True).extractor_id


@pytest.mark.slow
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
    assert set(out["hits"][0]) == {"name", "score", "log_likelihood", "alignment_score"}  # SearchResult's JSON
    # by default the shipped captioner re-ranks (it reads these features); the output says so, in words
    assert out["reranked"] == 100 and "not re-ranked" not in out["scores"] and "log-likelihood" in out["scores"]
    assert main(["search", str(tmp_path / "idx"), "a red cup on the table", "--top", "3", "--no-rerank"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("scores: match score") and lines[0].endswith("not re-ranked") and len(lines) == 4
    assert [line.split()[0] for line in lines[1:]] == ["1.", "2.", "3."]
    assert main(["search", str(tmp_path / "idx"), "zebra"]) == 2
    assert "none of the words" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "nowhere"), "a dog"]) == 2
    assert "not a scenetalk index" in capsys.readouterr().err


def random_captioner(folder, extractor_id, seed=0):
    from scenetalk.models.mrnn import MRNN, MRNNConfig

    torch.manual_seed(seed)
    vocab = Vocabulary.build([WORDS], min_count=1)
    cfg = MRNNConfig(len(vocab), image_dim=1280, embed1_dim=8, embed2_dim=8, multimodal_dim=16, dropout=0.0)
    save_checkpoint(folder, MRNN(cfg).state_dict(), {"kind": "caption_generator", "model": cfg.to_dict(),
                                                      "vocabulary": vocab.to_dict(), "extractor_id": extractor_id})
    return folder


def test_describe_reranks_by_m_rnns_sentence_score_with_the_prior_of_the_captioners_photos(index, tmp_path):
    """Issue #18: describe's best K sentences by S_kl are ordered by S_kl + λ·(log P(s | I) −
    log P(s)) / words, log P(s) averaged over the captioner's prior images, as the PyTorch
    evaluation code computes them (retrieval.generative_ranking); the index stores the priors
    when it is built, and they equal those computed when the sentences are given instead."""
    import math

    from safetensors.numpy import save_file

    from scenetalk.checkpoint import (
        PRIOR_IMAGES,
        checkpoint_id,
        load_generator,
        load_generator_steps,
        read_prior_images,
    )
    from scenetalk.features.store import FeatureStore
    from scenetalk.retrieval.generative_ranking import log_prior, sentence_log_likelihoods
    from scenetalk.retrieval.index import sentence_priors
    from scenetalk.retrieval.sentence_ranking import log_priors
    from scenetalk.weights import shipped_reranker

    path, ckpt, _ = index
    searcher = Searcher(path, ckpt)
    captioner = random_captioner(tmp_path / "cap", searcher.meta["extractor_id"].split("+")[0])
    prior_images = np.random.default_rng(0).standard_normal((7, 1280)).astype(np.float16)
    save_file({"global": prior_images}, str(captioner / PRIOR_IMAGES))
    name = searcher.names[0]
    without = random_captioner(tmp_path / "without", searcher.meta["extractor_id"].split("+")[0])
    with pytest.raises(ScenetalkError, match="no prior images"):
        searcher.describe(name, k=3, sentences=SENTENCES, rerank=3, captioner=without)
    # by default (rerank=None) the reason is given instead, and the ranking is S_kl's
    assert "no prior images" in searcher.describe(name, k=3, sentences=SENTENCES, rerank=None,
                                                  captioner=without).not_reranked
    plain = searcher.describe(name, k=len(SENTENCES), sentences=SENTENCES)
    top4 = [h.sentence for h in plain.hits[:4]]
    model, vocab, _ = load_generator(captioner)
    store = FeatureStore.open(path / "features")
    image = torch.tensor(np.asarray(store.array("global")[store.rows([name])], dtype=np.float32))
    ids = torch.from_numpy(vocab.encode_batch([s.split() for s in top4])[0])
    log_p = sentence_log_likelihoods(model, image, ids, precision="fp32")[0]
    prior = log_prior(sentence_log_likelihoods(model, torch.from_numpy(prior_images.astype(np.float32)), ids,
                                               precision="fp32"))
    words = (ids[:, 1:] != 0).sum(1)
    want = {s: float(r) for s, r in zip(top4, (log_p - prior) / words)}
    result = searcher.describe(name, k=3, sentences=SENTENCES, rerank=4, rerank_weight=2.0, captioner=captioner)
    assert result.reranked == 4 and "log-likelihood" in result.scores
    assert {h.sentence for h in result.hits} <= set(top4)      # only the best 4 by S_kl are re-ranked
    for h in result.hits:
        assert h.log_ratio == pytest.approx(want[h.sentence], abs=1e-4)
        assert h.score == pytest.approx(h.alignment_score + 2.0 * h.log_ratio, rel=1e-5)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert not any(math.isnan(h.score) for h in result.hits)
    # rerank=None (the default through the façade) re-ranks the best 100, not the best k: with a
    # huge λ the top sentence is the one of best log ratio among all six, wherever S_kl put it
    all_ids = torch.from_numpy(vocab.encode_batch([s.split() for s in SENTENCES])[0])
    all_ratio = ((sentence_log_likelihoods(model, image, all_ids, precision="fp32")[0]
                  - log_prior(sentence_log_likelihoods(model, torch.from_numpy(prior_images.astype(np.float32)),
                                                       all_ids, precision="fp32")))
                 / (all_ids[:, 1:] != 0).sum(1))
    default = searcher.describe(name, k=1, sentences=SENTENCES, rerank=None, rerank_weight=1e6, captioner=captioner)
    assert default.reranked == 100 and default.hits[0].sentence == SENTENCES[int(all_ratio.argmax())]
    assert "the best 6 sentences by match score" in default.scores     # all six were candidates, not k = 1
    # the priors an index stores when it is built with these sentences: the shipped captioner's
    stored, captioners = sentence_priors(SENTENCES, searcher.vocab, path / "features")   # the shipped captioner's
    assert captioners == {"en": checkpoint_id(shipped_reranker("en"))}
    assert stored.shape == (len(SENTENCES),) and np.isfinite(stored).all()
    shipped_model, shipped_vocab, _ = load_generator_steps(shipped_reranker("en"))
    from_images = log_priors(shipped_model, shipped_vocab, read_prior_images(shipped_reranker("en")), SENTENCES)
    assert np.allclose(stored, from_images, atol=1e-5)


def test_rerank_orders_the_best_by_s_kl_by_s_kl_plus_weighted_likelihood(index, tmp_path, capsys):
    import json

    import scenetalk
    from scenetalk.checkpoint import load_generator
    from scenetalk.cli import main
    from scenetalk.features.store import FeatureStore
    from scenetalk.retrieval.generative_ranking import sentence_log_likelihoods

    path, ckpt, _ = index
    searcher = Searcher(path, ckpt)
    global_id = searcher.meta["extractor_id"].split("+")[0]
    captioner = random_captioner(tmp_path / "cap", global_id)
    query = "a cat sits on the table"
    plain = searcher.search(query, k=4)
    top3 = {h.name for h in plain.hits[:3]}
    # The likelihoods are the captioner's, of the query given each photo's global features.
    model, vocab, _ = load_generator(captioner)
    store = FeatureStore.open(path / "features")
    feats = torch.tensor(np.asarray(store.array("global")[store.rows(searcher.names)], dtype=np.float32))
    ids, _ = vocab.encode_batch([query.split()])
    ids = torch.from_numpy(ids)
    want_lp = dict(zip(searcher.names, sentence_log_likelihoods(model, feats, ids)[:, 0].tolist()))
    for weight in (0.0, 0.5, 1e6):
        result = searcher.search(query, k=3, rerank=3, rerank_weight=weight, captioner=captioner)
        assert {h.name for h in result.hits} == top3  # only the best 3 by S_kl are re-ranked
        for h in result.hits:
            assert h.log_likelihood == pytest.approx(want_lp[h.name], abs=0.1)  # bfloat16 products
            assert h.score == pytest.approx(h.alignment_score + weight * h.log_likelihood, rel=1e-5)
        assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert [h.name for h in result.hits] == sorted(top3, key=want_lp.get, reverse=True)  # λ = 1e6: likelihood only
    # k larger than K: the best max(k, K) by S_kl are re-ranked; the API passes its captioner.
    m = scenetalk.load(captioner=captioner, alignment=ckpt)
    assert len(m.search(path, query, k=4, rerank=2).hits) == 4
    # CLI: --rerank [K] and --captioner; the JSON says how it ranked.
    assert main(["search", str(path), query, "--checkpoint", str(ckpt), "--rerank", "2", "--captioner",
                 str(captioner), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reranked"] == 2 and len(out["hits"]) == 4
    assert all(h["log_likelihood"] is not None and h["alignment_score"] is not None for h in out["hits"])
    assert main(["search", str(path), query, "--checkpoint", str(ckpt), "--rerank", "0"]) == 2
    assert "--rerank must be a whole number" in capsys.readouterr().err
    # A captioner of other image features is refused in one line, naming both.
    other = random_captioner(tmp_path / "cap2", "efficientnet-lite2-260-000000000000")
    assert main(["search", str(path), query, "--checkpoint", str(ckpt), "--rerank", "--captioner", str(other)]) == 2
    err = capsys.readouterr().err
    assert "efficientnet-lite2-260-000000000000" in err and global_id in err and len(err.strip().splitlines()) == 1
    # Not asked for (the default), re-ranking that cannot run is skipped with a note; --no-rerank is quiet.
    assert main(["search", str(path), query, "--checkpoint", str(ckpt), "--captioner", str(other), "--json"]) == 0
    captured = capsys.readouterr()
    assert "not re-ranked" in captured.err and json.loads(captured.out)["reranked"] == 0
    assert json.loads(captured.out)["not_reranked"]
    assert main(["search", str(path), query, "--checkpoint", str(ckpt), "--no-rerank", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and json.loads(captured.out)["reranked"] == 0
    with pytest.warns(UserWarning, match="not re-ranked"):
        hits = scenetalk.load(captioner=other, alignment=ckpt).search(path, query, k=2).hits
    assert [h.name for h in hits] == [h.name for h in plain.hits[:2]]


@pytest.mark.slow
def test_api_search_and_score(index):
    import scenetalk

    path, ckpt, root = index
    m = scenetalk.load(alignment=ckpt)
    photos = sorted((root / "photos").glob("*.png"))
    S = m.score([str(p) for p in photos], ["a cat sits on the table", "a rocket in space"])
    assert S.shape == (len(photos), 2)
    searcher = Searcher(path, ckpt)
    s, _, _ = searcher.embed_query("a cat sits on the table")
    # the API's score of a photo equals the index's exact score of it
    plain = m.search(path, "a cat sits on the table", k=4, rerank=0)
    # by default the shipped captioner (it reads this index's features) re-ranks, S_kl kept beside
    reranked = m.search(path, "a cat sits on the table", k=4)
    assert all(h.log_likelihood is not None for h in reranked.hits)
    for result, value in ((plain, "score"), (reranked, "alignment_score")):
        by_name = {h.name: getattr(h, value) for h in result.hits}
        for p, score in zip(photos, S[:, 0].tolist()):
            assert by_name[p.name] == pytest.approx(score, rel=1e-2)
    with pytest.raises(ScenetalkError, match="has no words"):
        m.score([str(photos[0])], ["?!"])


@pytest.mark.slow
def test_shipped_alignment_model_finds_the_sample_photos(tmp_path, capsys):
    """The shipped model, on a fresh install: the index of the bundled photos answers
    sentences about them with the right photo (and the API scores agree)."""
    import json

    import scenetalk
    from scenetalk.checkpoint import load_checkpoint
    from scenetalk.cli import main
    from scenetalk.weights import shipped_alignment

    folder = shipped_alignment()
    assert sum(f.stat().st_size for f in folder.iterdir()) <= 30 * 2**20
    assert load_checkpoint(folder)[1]["kind"] == "alignment"
    photos = copy_sample_photos(tmp_path / "photos")
    assert main(["index", "build", str(photos), "--out", str(tmp_path / "idx"), "--quiet"]) == 0
    expected = {"a cat lying on a blanket": "chelsea.png", "a man in a white suit": "astronaut.png",
                "a cup of coffee on a table": "coffee.png"}
    capsys.readouterr()
    for query, photo in expected.items():
        assert main(["search", str(tmp_path / "idx"), query, "--top", "1", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["hits"][0]["name"] == photo
    S = scenetalk.load().score([str(photos / n) for n in expected.values()], list(expected))
    assert S.argmax(axis=0).tolist() == [0, 1, 2]


def test_damaged_index_and_bad_options_are_one_line_errors(index, tmp_path, capsys):
    import json

    from scenetalk.cli import main

    path, ckpt, _ = index
    for f in (BOUNDS_FILE, WHOLE_FILE):
        broken = tmp_path / f"broken-{f}"
        shutil.copytree(path, broken)
        (broken / f).write_bytes(b"not numpy")
        with pytest.raises(SearchIndexError, match="damaged index arrays"):
            Searcher(broken, ckpt)
        (broken / f).unlink()
        with pytest.raises(SearchIndexError, match=f"missing {f}; rebuild"):
            Searcher(broken, ckpt)
    # an index of an earlier version (no whole-image vectors) is refused, naming its folder
    old = tmp_path / "old"
    shutil.copytree(path, old)
    meta = json.loads((old / INDEX_FILE).read_text())
    del meta["format"]
    (old / INDEX_FILE).write_text(json.dumps(meta))
    with pytest.raises(SearchIndexError, match="earlier version") as exc:
        Searcher(old, ckpt)
    assert str(old) in str(exc.value) and "rebuild" in str(exc.value) and "\n" not in str(exc.value)
    assert main(["search", str(old), "a cat"]) == 2
    err = capsys.readouterr().err
    assert "earlier version" in err and len(err.splitlines()) == 1
    assert main(["search", str(path), "a cat", "--top", "0"]) == 2
    err = capsys.readouterr().err
    assert "--top" in err and "Traceback" not in err


def brute_force_scores(searcher, sentence, v=None):
    """S_kl of ``sentence`` against every photo of the index (or against ``v``), by definition."""
    s, _, _ = searcher.embed_query(sentence)
    v = np.asarray(searcher.vectors[:] if v is None else v, dtype=np.float32)
    return torch.from_numpy(np.einsum("nrh,th->nrt", v, s).max(axis=1).sum(axis=1))


def test_faiss_candidate_stage_agrees_with_brute_force_and_never_claims_too_much(tmp_path):
    n, extractor_id = 400, "efficientnet-lite0-224-000000000000+x"
    ckpt = random_checkpoint(tmp_path / "align", extractor_id)
    torch.manual_seed(1)
    v, names = torch.randn(n, 20, 16), [f"p{i:03d}.jpg" for i in range(n)]
    brute = Searcher(write_index(tmp_path / "brute", v, names, ckpt, extractor_id, faiss_min=n + 1), ckpt)
    fast = Searcher(write_index(tmp_path / "faiss", v, names, ckpt, extractor_id, faiss_min=n), ckpt)
    assert brute.candidate_index is None and fast.candidate_index is not None
    for query in ("a cat sits on the table", "a red rocket in space", "the man", "coffee"):
        exact = brute_force_scores(brute, query)
        want = [names[i] for i in exact.argsort(descending=True)[:5]]
        # n - 1 candidates: FAISS scans every list and leaves out one photo, so the answer is
        # the exhaustive one, but the approximate stage cannot prove it
        wide = fast.search(query, k=5, candidates=n - 1)
        assert [h.name for h in wide.hits] == want and not wide.exact
        full = fast.search(query, k=5, candidates=n)
        assert [h.name for h in full.hits] == want and full.exact
        assert [h.score for h in full.hits] == [h.score for h in brute.search(query, k=5, candidates=n).hits]
        narrow = fast.search(query, k=5, candidates=20)
        assert not narrow.exact and narrow.candidates <= 20
        for h in narrow.hits:
            assert h.score == pytest.approx(float(exact[names.index(h.name)]), rel=1e-5)
        proved = brute.search(query, k=5, candidates=20)
        if proved.exact:
            assert [h.name for h in proved.hits] == want
        else:  # not proved: still the exact scores of real photos, best first
            assert len({h.name for h in proved.hits}) == 5 and proved.candidates == 20
            assert [h.score for h in proved.hits] == sorted((h.score for h in proved.hits), reverse=True)
            assert [h.score for h in proved.hits] == pytest.approx(
                [float(exact[names.index(h.name)]) for h in proved.hits], rel=1e-5)
    # a smaller rebuild drops the FAISS indexes; a damaged or missing one is a one-line error
    write_index(tmp_path / "faiss", v, names, ckpt, extractor_id, faiss_min=n + 1)
    assert not (tmp_path / "faiss" / FAISS_FILE).exists() and not (tmp_path / "faiss" / WHOLE_FAISS_FILE).exists()
    assert Searcher(tmp_path / "faiss", ckpt).candidate_index is None
    for f in (FAISS_FILE, WHOLE_FAISS_FILE):
        write_index(tmp_path / "faiss", v, names, ckpt, extractor_id, faiss_min=n)
        (tmp_path / "faiss" / f).write_bytes(b"not faiss")
        with pytest.raises(SearchIndexError, match=f"{f}: damaged; rebuild"):
            Searcher(tmp_path / "faiss", ckpt)
        (tmp_path / "faiss" / f).unlink()
        with pytest.raises(SearchIndexError, match=f"missing {f}; rebuild"):
            Searcher(tmp_path / "faiss", ckpt)


def test_merge_candidates_takes_half_by_bound_then_by_whole_image_then_fills():
    def merge(by_bound, by_whole, c):
        rows = merge_candidates(np.array(by_bound, dtype=np.int64), np.array(by_whole, dtype=np.int64), c)
        assert rows.dtype == np.int64
        return rows.tolist()

    bound, whole = [5, 3, 9, 1, 7], [3, 8, 2, 5, 6]
    assert merge(bound, whole, 4) == [2, 3, 5, 8]        # 5, 3 by bound; 8, 2 by whole image (3 taken)
    assert merge(bound, whole, 5) == [2, 3, 5, 8, 9]     # ceil(5/2) = 3 by bound: 5, 3, 9
    assert merge(bound, whole, 1) == [5]
    assert merge(bound, [3, 5], 4) == [1, 3, 5, 9]       # the whole-image ranking runs out: fill by bound
    assert merge([5], whole, 4) == [2, 3, 5, 8]          # a short bound ranking (FAISS): fill by whole image
    assert merge([5, 3], [3, 5], 4) == [3, 5]            # both short: fewer than c
    assert merge(bound, whole, 10) == [1, 2, 3, 5, 6, 7, 8, 9]


def test_brute_force_candidates_never_claim_exact_wrongly(tmp_path):
    """The exactness proof with the union of both rankings, against brute-force scores: many
    queries, several C; photos of varied scale, so that some answers are proved and some not."""
    n, extractor_id = 300, "efficientnet-lite0-224-000000000000+x"
    ckpt = random_checkpoint(tmp_path / "align", extractor_id)
    g = torch.Generator().manual_seed(2)
    v = torch.randn(n, 20, 16, generator=g) * torch.randn(n, 1, 1, generator=g).exp()
    names = [f"p{i:03d}.jpg" for i in range(n)]
    searcher = Searcher(write_index(tmp_path / "idx", v, names, ckpt, extractor_id), ckpt)
    rng = np.random.default_rng(0)
    proved = tried = by_whole = 0
    for _ in range(40):
        query = " ".join(rng.choice(WORDS, size=rng.integers(1, 6)))
        exact = brute_force_scores(searcher, query)
        q = searcher.embed_query(query)[0].sum(axis=0)
        ub = torch.from_numpy(searcher.parts[0].bounds @ q)
        for c in (5, 10, 30, 100, 299):
            rows, left_out = bound_candidates(searcher.parts[0].bounds, searcher.parts[0].whole, q, c)
            assert len(rows) == c and len(set(rows.tolist())) == c
            by_whole += not np.isin(rows, ub.topk(c).indices.numpy()).all()
            others = np.setdiff1d(np.arange(n), rows)
            assert left_out == float(ub[others].max())   # the best upper bound of ALL photos left out
            assert (exact[others] <= ub[others] + 1e-4).all()
            result = searcher.search(query, k=5, candidates=c)
            tried += 1
            assert [h.score for h in result.hits] == pytest.approx(
                [float(exact[names.index(h.name)]) for h in result.hits], rel=1e-4)
            assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
            if result.exact:
                proved += 1
                assert [h.name for h in result.hits] == [names[i] for i in exact.argsort(descending=True)[:5]]
    assert 0 < proved < tried and by_whole > tried // 2   # the whole-image ranking adds candidates


def test_streamed_index_is_the_tensor_index(index, tmp_path):
    """write_index from blocks writes the same bytes as from one tensor; build_index (which
    streams the feature store's regions) the same as write_index from the whole tensor; and
    blocks that do not add up to the photos named are refused, leaving the index as it was."""
    from scenetalk.checkpoint import load_alignment
    from scenetalk.features.store import FeatureStore
    from scenetalk.retrieval.index import FEATURES_DIR

    n, extractor_id = 30, "efficientnet-lite0-224-000000000000+x"
    ckpt = random_checkpoint(tmp_path / "align", extractor_id)
    v, names = torch.randn(n, 20, 16, generator=torch.Generator().manual_seed(3)), [f"p{i:02d}.jpg" for i in range(n)]
    files = (VECTORS_FILE, BOUNDS_FILE, WHOLE_FILE)

    def same_arrays(a, b):
        return all((a / f).read_bytes() == (b / f).read_bytes() for f in files)

    one = write_index(tmp_path / "tensor", v, names, ckpt, extractor_id, faiss_min=n)
    blocks = write_index(tmp_path / "blocks", iter(v.split(7)), names, ckpt, extractor_id, faiss_min=n)
    assert same_arrays(one, blocks)
    assert np.array_equal(np.load(one / WHOLE_FILE), v[:, 0].half().float().numpy())
    a, b = Searcher(one, ckpt), Searcher(blocks, ckpt)
    assert a.search("a red cup", k=3, candidates=10) == b.search("a red cup", k=3, candidates=10)
    before = {f: (one / f).read_bytes() for f in files}
    for bad, message in ((v[:29].split(7), "hold 29 photos, but 30"), ((*v.split(7), v[:1]), "more than the 30")):
        with pytest.raises(ValueError, match=message):
            write_index(one, iter(bad), names, ckpt, extractor_id, faiss_min=n)
    assert {f: (one / f).read_bytes() for f in files} == before
    assert not [p.name for p in one.iterdir() if p.name.endswith(".tmp")]

    path, ckpt, _ = index
    meta = Searcher(path, ckpt).meta
    store = FeatureStore.open(path / FEATURES_DIR)
    model, _, _ = load_alignment(ckpt)
    with torch.no_grad():
        whole = model.embed_regions(torch.from_numpy(store.regions[store.rows(meta["names"])].astype(np.float32)))
    assert same_arrays(path, write_index(tmp_path / "whole", whole, meta["names"], ckpt, meta["extractor_id"]))


SENTENCES = ["a cat sits on the table", "a red rocket in space", "a man in a white suit", "coffee in a red cup",
             "the dog", "a woman sits on a cup"]


def test_describe_ranks_every_sentence_by_its_exact_score(index, tmp_path):
    import scenetalk

    path, ckpt, root = index
    searcher = Searcher(path, ckpt)
    v = torch.tensor(searcher.vectors[:], dtype=torch.float32)
    stored = Searcher(write_index(tmp_path / "idx", v, searcher.names, ckpt, searcher.meta["extractor_id"],
                                  sentences=SENTENCES), ckpt)
    brute = torch.stack([brute_force_scores(searcher, s) for s in SENTENCES], dim=1)  # (photos, sentences)
    for row, name in enumerate(searcher.names):
        want = brute[row].argsort(descending=True).tolist()
        for result in (stored.describe(name, k=len(SENTENCES)), searcher.describe(name, k=6, sentences=SENTENCES)):
            assert result.image == name
            assert [h.sentence for h in result.hits] == [SENTENCES[i] for i in want]
            assert [h.score for h in result.hits] == pytest.approx(brute[row, want].tolist(), rel=1e-5)
    # an image file goes through the index's feature extractor: the same photo, the same scores
    # (up to the index's float16 storage); and the API agrees with the searcher
    m = scenetalk.load(alignment=ckpt)
    from_file = m.describe(tmp_path / "idx", root / "photos" / "coffee.png", k=3, rerank=0)
    from_index = {h.sentence: h.score for h in stored.describe("coffee.png", k=6).hits}
    assert len(from_file.hits) == 3
    for h in from_file.hits:
        assert h.score == pytest.approx(from_index[h.sentence], rel=1e-2)
    # an index without sentences: the captioner's best captions of the photo, ranked by S_kl, and it says so
    generated = searcher.describe("coffee.png", k=3)
    assert generated.sentences == "generated" and generated.reranked == 0 and len(generated.hits) == 3
    texts = [h.sentence for h in generated.hits]
    assert len(set(texts)) == 3 and all(len(t.split()) >= 2 for t in texts)
    again = searcher.describe("coffee.png", k=3, sentences=texts)
    assert [h.score for h in generated.hits] == pytest.approx([h.score for h in again.hits], rel=1e-5)
    (tmp_path / "idx" / "sentences.npz").write_bytes(b"not numpy")
    with pytest.raises(SearchIndexError, match="damaged sentence collection"):
        stored.describe("coffee.png")
    with pytest.raises(ScenetalkError, match="neither a photo of the index"):
        searcher.describe("zebra.jpg", sentences=SENTENCES)


@pytest.mark.slow
def test_cli_describe_and_its_bad_inputs(index, tmp_path, capsys):
    import json

    from scenetalk.cli import main

    path, ckpt, root = index
    collection = tmp_path / "sentences.txt"
    collection.write_text("a cat sits on the table\n\n   \na red rocket in space\ncoffee in a red cup\n")
    idx = str(tmp_path / "idx")
    assert main(["index", "build", str(root / "photos"), "--out", idx, "--checkpoint", str(ckpt), "--quiet",
                 "--sentences", str(collection)]) == 0
    captured = capsys.readouterr()
    assert "skipped 2 blank line(s)" in captured.err and "with 3 sentences" in captured.out
    # rebuilding the index with the same model keeps its sentences
    assert main(["index", "build", str(root / "photos"), "--out", idx, "--checkpoint", str(ckpt), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["describe", idx, "coffee.png", "--top", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["image"] == "coffee.png" and out["sentences"] == "index" and len(out["hits"]) == 2
    assert [set(h) for h in out["hits"]] == [{"sentence", "score", "log_ratio", "alignment_score", "hubness"}] * 2
    assert out["hub_weight"] == 0 and all(h["hubness"] is None for h in out["hits"])   # this model has no bank
    # by default the shipped captioner re-ranks (it reads these features, and the index holds the
    # sentences' prior, computed when it was built); the output says so, in words
    assert out["reranked"] == 100 and "log-likelihood" in out["scores"] and out["not_reranked"] is None
    assert main(["describe", idx, "coffee.png", "--top", "3", "--no-rerank", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["reranked"] == 0 and plain["scores"].endswith("not re-ranked")
    match = {h["sentence"]: h["score"] for h in plain["hits"]}        # all 3 sentences' S_kl
    for h in out["hits"]:   # fused = S_kl + λ · per-word log ratio, best first
        assert h["alignment_score"] == pytest.approx(match[h["sentence"]], abs=1e-3)   # JSON keeps 4 decimals
        assert h["score"] == pytest.approx(h["alignment_score"] + 5.0 * h["log_ratio"], abs=1e-3)
    assert [h["score"] for h in out["hits"]] == sorted((h["score"] for h in out["hits"]), reverse=True)
    assert main(["describe", str(path), "coffee.png", "--top", "2"]) == 0     # an index without sentences
    captured = capsys.readouterr()
    assert "ranked the captioner's 20 best captions" in captured.err and len(captured.out.splitlines()) == 3
    other = tmp_path / "other.txt"
    other.write_text("a man in a white suit\ncoffee in a red cup\n")
    assert main(["describe", idx, str(root / "photos" / "rocket.jpg"), "--sentences", str(other)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("scores: match score + 5 ×") and len(lines) == 3
    assert {line.split(None, 2)[2] for line in lines[1:]} == set(other.read_text().split("\n")[:2])
    bad = {"missing.txt": None, "empty.txt": b"\n  \n", "latin1.txt": b"a cat\na caf\xe9 table\n",
           "nowords.txt": b"a cat\n?!\n"}
    expect = {"missing.txt": "file not found", "empty.txt": "no sentences in this file",
              "latin1.txt": "line 2", "nowords.txt": "line 2: '?!' has no words"}
    for name, data in bad.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        assert main(["describe", idx, "coffee.png", "--sentences", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert name in err and expect[name] in err and "Traceback" not in err and len(err.splitlines()) == 1
    for argv, message in (([idx, "zebra.jpg"], "neither a photo of the index"),
                          ([idx, "coffee.png", "--top", "0"], "--top"),
                          ([str(tmp_path / "nowhere"), "coffee.png"], "not a scenetalk index")):
        assert main(["describe", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_api_keeps_an_index_open_until_it_is_rebuilt(tmp_path, monkeypatch):
    """The façade opens an index once and answers from it, as a freshly opened one would; an
    index rebuilt in place is opened again (its new photos and sentences, never the old)."""
    import scenetalk
    import scenetalk.retrieval.search as search_module

    n, extractor_id, query = 30, "efficientnet-lite0-224-000000000000+x", "a cat sits on the table"
    ckpt = random_checkpoint(tmp_path / "align", extractor_id)
    g = torch.Generator().manual_seed(4)
    path = write_index(tmp_path / "idx", torch.randn(n, 20, 16, generator=g), [f"p{i:02d}.jpg" for i in range(n)],
                       ckpt, extractor_id, sentences=SENTENCES)
    opened = []

    class CountingSearcher(Searcher):
        def __init__(self, *args, **kwargs):
            opened.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(search_module, "Searcher", CountingSearcher)
    m = scenetalk.load(alignment=ckpt)
    first = m.search(path, query, k=5, rerank=0)
    assert m.search(str(path), query, k=5, rerank=0) == first     # a str or a Path: the same index
    described = m.describe(path, "p00.jpg", k=3, rerank=0)
    assert m.describe(path, "p00.jpg", k=3, rerank=0) == described and {h.sentence for h in described.hits} <= set(SENTENCES)
    assert len(opened) == 1 and m.open_index(tmp_path / "idx" / ".." / "idx") is m.open_index(path)
    assert first == Searcher(path, ckpt).search(query, k=5)          # what a freshly opened index answers
    assert first.reranked == 0 and first.scores.startswith("match score") and first.scores.endswith("not re-ranked")
    # rebuilt in place with other photos and sentences: opened again, the new answers
    write_index(path, torch.randn(n, 20, 16, generator=g), [f"q{i:02d}.jpg" for i in range(n)], ckpt, extractor_id,
                sentences=SENTENCES[:2])
    again = m.search(path, query, k=5, rerank=0)
    assert len(opened) == 2 and again == Searcher(path, ckpt).search(query, k=5)
    assert all(h.name.startswith("q") for h in again.hits)
    assert {h.sentence for h in m.describe(path, "q00.jpg", k=5, rerank=0).hits} == set(SENTENCES[:2])
    assert len(opened) == 2
    # another alignment model is another Searcher (and refused here: the index was not built with it)
    with pytest.raises(SearchIndexError, match="rebuild the index"):
        m.open_index(path, random_checkpoint(tmp_path / "other", extractor_id, seed=1))
    shutil.rmtree(path)
    with pytest.raises(SearchIndexError, match="not a scenetalk index"):
        m.search(path, query)


def test_api_loads_the_reranking_captioner_once(index, tmp_path, monkeypatch):
    import scenetalk
    import scenetalk.captioning.captioner as captioner_module

    path, ckpt, _ = index
    global_id = Searcher(path, ckpt).meta["extractor_id"].split("+")[0]
    good = random_captioner(tmp_path / "cap", global_id)
    other = random_captioner(tmp_path / "cap2", "efficientnet-lite2-260-000000000000")
    loads, real = [], captioner_module.load_generator_for

    def counting(checkpoint, *args, **kwargs):
        loads.append(checkpoint)
        return real(checkpoint, *args, **kwargs)

    monkeypatch.setattr(captioner_module, "load_generator_for", counting)
    query = "a cat sits on the table"
    m = scenetalk.load(captioner=good, alignment=ckpt)
    first = m.search(path, query, k=3, rerank=2)
    assert m.search(path, query, k=3, rerank=2) == first and len(loads) == 1
    assert first.reranked == 2 and "re-ranked: the best 3 photos" in first.scores
    assert all(h.log_likelihood is not None for h in first.hits)
    # a captioner that cannot re-rank this index is loaded once, and refused every time
    m = scenetalk.load(captioner=other, alignment=ckpt)
    for _ in range(2):
        with pytest.warns(UserWarning, match="not re-ranked"):
            result = m.search(path, query, k=2)
        assert result.reranked == 0 and result.not_reranked and result.scores.endswith("not re-ranked")
        with pytest.raises(ScenetalkError, match="efficientnet-lite2-260-000000000000"):
            m.search(path, query, rerank=2)
    assert len(loads) == 2


def test_best_regions_are_the_best_scoring_regions_of_the_index(index):
    import scenetalk
    from scenetalk.features.store import FeatureStore

    path, ckpt, _ = index
    m = scenetalk.load(alignment=ckpt)
    searcher = m.open_index(path)
    store = FeatureStore.open(path / "features")
    v = torch.tensor(searcher.vectors[:], dtype=torch.float32)
    result = m.best_regions(path, ["a red cup", "the cat zebra"], top=3)
    assert result.photos == 4 and result.folder is None and [s.snippet for s in result.snippets] == [
        "a red cup", "the cat zebra"]
    assert [s.unknown_words for s in result.snippets] == [[], ["zebra"]]
    for found in result.snippets:
        scores = v @ torch.from_numpy(searcher.embed_query(found.snippet)[0].sum(axis=0))   # Σ_t v_iᵀ s_t
        # by default each photo's best region but the whole photo, best first
        want = sorted(((float(scores[i, 1:].max()), searcher.names[i], int(scores[i, 1:].argmax()) + 1)
                       for i in range(len(searcher.names))), reverse=True)[:3]
        assert [(r.image, r.region) for r in found.regions] == [(name, region) for _, name, region in want]
        assert [r.score for r in found.regions] == pytest.approx([score for score, _, _ in want], rel=1e-4)
        for r in found.regions:
            row = store.row(r.image)
            assert r.box == pytest.approx(store.boxes[row, r.region].tolist())
            assert r.class_name == store.class_name(store.box_classes[row, r.region])
    scores = v @ torch.from_numpy(searcher.embed_query("the cat")[0].sum(axis=0))
    many = m.best_regions(path, "the cat", top=8, per_photo=20, include_whole=True).snippets[0].regions
    assert [r.score for r in many] == pytest.approx(scores.flatten().sort(descending=True).values[:8].tolist(),
                                                    rel=1e-4)
    with pytest.raises(ScenetalkError, match="none of the words"):
        m.best_regions(path, ["the cat", "zebra"])
    with pytest.raises(ScenetalkError, match="at least 1"):
        m.best_regions(path, "the cat", top=0)


@pytest.mark.slow
def test_cli_sheet_finds_the_photos_in_the_folder_the_index_records(index, tmp_path, capsys):
    import json

    import scenetalk
    from scenetalk.cli import main
    from scenetalk.errors import DataError
    from scenetalk.retrieval.index import index_folder

    _, ckpt, root = index
    idx, png = tmp_path / "idx", tmp_path / "sheet.png"
    assert main(["index", "build", str(root / "photos"), "--out", str(idx), "--checkpoint", str(ckpt), "--quiet"]) == 0
    capsys.readouterr()
    assert json.loads((idx / INDEX_FILE).read_text())["folder"] == str((root / "photos").resolve())
    assert main(["sheet", str(idx), "a red cup", "the cat zebra", "--top", "2", "--out", str(png), "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert png.is_file() and set(out) == {"index", "out", "snippets"} and "zebra" in captured.err
    api = scenetalk.load(alignment=ckpt).best_regions(idx, ["a red cup", "the cat zebra"], top=2)
    for s, want in zip(out["snippets"], api.snippets):
        assert s["snippet"] == want.snippet
        assert [set(r) for r in s["regions"]] == [{"image", "region", "class", "box", "score"}] * 2
        assert [(r["image"], r["region"], r["class"]) for r in s["regions"]] == [
            (r.image, r.region, r.class_name) for r in want.regions]
        assert [r["score"] for r in s["regions"]] == pytest.approx([r.score for r in want.regions], abs=1e-4)
    assert main(["sheet", str(idx), "a red cup", "--top", "2", "--out", str(png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "a red cup" and len(lines) == 4 and lines[-1] == f"sheet: {png}"
    assert main(["sheet", str(idx), "a red cup", "--images", str(tmp_path / "nowhere"), "--out", str(png)]) == 2
    assert "not a folder" in capsys.readouterr().err
    # the library call behind `index build`: its summary; a folder without images is refused
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScenetalkError, match="no images in this folder"):
        index_folder(tmp_path / "empty", tmp_path / "never", ckpt, progress=False)
    (tmp_path / "blank.txt").write_text("\n")
    with pytest.raises(DataError, match="no sentences"):
        index_folder(root / "photos", tmp_path / "never", ckpt, sentence_file=tmp_path / "blank.txt", progress=False)
    assert not (tmp_path / "never").exists()


def test_unseen_query_words_are_placed_through_word_vectors(index):
    """A word the model never saw but pretrained word vectors know ("kitten", next to "cat" in
    conftest's FakeWordVectors) is placed and searched for, not dropped; one nothing knows is."""
    from scenetalk.results import to_data
    from scenetalk.retrieval.unseen_words import UnseenWords

    path, ckpt, _ = index
    searcher = Searcher(path, ckpt)
    result = searcher.search("a kitten on the table", k=4)
    assert result.unknown_words == [] and [p.word for p in result.placed_words] == ["kitten"]
    assert result.placed_words[0].near[0] == "cat"
    assert to_data(result)["placed_words"] == [{"word": "kitten", "near": result.placed_words[0].near,
                                                "similarity": result.placed_words[0].similarity}]
    # with "nearest", k=1, the kitten is the cat's own vector: the same hits and scores as "a cat ..."
    searcher._unseen = UnseenWords(searcher.model.word_table, searcher.vocab, method="nearest", k=1)
    kitten, cat = searcher.search("a kitten on the table", k=4), searcher.search("a cat on the table", k=4)
    assert [h.name for h in kitten.hits] == [h.name for h in cat.hits]
    assert [h.score for h in kitten.hits] == pytest.approx([h.score for h in cat.hits], rel=1e-5)
    # a word no source knows is left out, as before
    assert searcher.search("a zebra kitten", k=1).unknown_words == ["zebra"]
    with pytest.raises(ScenetalkError, match="none of the words"):
        searcher.search("zebra giraffe")


def test_the_ridge_map_puts_a_synonym_next_to_its_word():
    from scenetalk.retrieval.unseen_words import UnseenWords

    torch.manual_seed(0)
    vocab = Vocabulary.build([WORDS], min_count=1)
    embedding = torch.randn(len(vocab), 8)
    placer = UnseenWords(embedding.numpy(), vocab, method="map", ridge=1e-4)
    [mug, qq] = placer.place(["mug", "qqxv"])
    assert mug.placed and mug.near[0] == "cup" and not qq.placed and qq.vector is None
    known = [vocab.stoi[w] for w in placer.known]
    sims = torch.nn.functional.cosine_similarity(embedding[known], torch.from_numpy(mug.vector)[None])
    assert placer.known[int(sims.argmax())] == "cup"


def test_a_large_index_is_read_from_its_memory_map_with_the_same_answers(index, monkeypatch):
    import scenetalk.retrieval.search as search_module

    path, ckpt, _ = index
    small = Searcher(path, ckpt)
    assert small.parts[0].vectors32 is not None                        # a small index: float32 in memory
    monkeypatch.setattr(search_module, "IN_MEMORY_VALUES", 0)
    large = Searcher(path, ckpt)
    assert large.parts[0].vectors32 is None                            # read from the memory map
    for query in ("a cat sits on the table", "a red rocket in space"):
        a, b = small.search(query, k=4, rerank=0), large.search(query, k=4, rerank=0)
        assert [h.name for h in a.hits] == [h.name for h in b.hits]
        assert [h.score for h in a.hits] == pytest.approx([h.score for h in b.hits], rel=1e-6)
        assert ([(r.image, r.region) for r in small.best_regions(query, top=3).regions]
                == [(r.image, r.region) for r in large.best_regions(query, top=3).regions])


MULTI_WORDS = {"en": "a dog runs on grass the man".split(), "zh": ["一只", "狗", "在", "草地", "上", "奔跑"],
               "de": ["ein", "hund", "rennt", "über", "eine", "wiese"]}


@pytest.mark.slow
@pytest.mark.parametrize("brnn", ["shared", "per_language"])
def test_one_index_answers_queries_in_three_languages(tmp_path, brnn):
    """Issue #17: an index built once with a model of three languages (here random weights) reads
    an English, a Chinese and a German query each in its language (detected, or --lang), with a
    per-language BRNN through that language's side; Chinese queries are re-ranked by the shipped
    Chinese captioner, German ones are not (the shipped German captioner reads a grid, which an
    index does not hold) and say why; describe ranks sentences of several languages."""

    from scenetalk.cli import main
    from scenetalk.data.text import tagged
    from scenetalk.features.extract import Extractor
    from scenetalk.retrieval.similarity import alignment_scores

    torch.manual_seed(0)
    vocab = Vocabulary.build([tagged(lang, words) for lang, words in MULTI_WORDS.items()], min_count=1,
                             language="multi")
    cfg = {"vocab_size": len(vocab), "region_dim": 1280, "embed_dim": 16, "word_dim": 8, "hidden_dim": 16,
           "dropout": 0.0, "brnn": brnn, "languages": 3}
    model = AlignmentModel(AlignmentConfig(**cfg))
    if brnn == "per_language":
        model.word_language.copy_(torch.from_numpy(vocab.word_languages()))
    ckpt = save_checkpoint(tmp_path / "align", model.state_dict(), {
        "kind": "alignment", "model": cfg, "vocabulary": vocab.to_dict(),
        "extractor_id": Extractor(regions=True).extractor_id})
    photos = copy_sample_photos(tmp_path / "photos")
    assert main(["index", "build", str(photos), "--out", str(tmp_path / "idx"), "--checkpoint", str(ckpt),
                 "--quiet"]) == 0
    searcher = Searcher(tmp_path / "idx", ckpt)
    for query, lang in (("a dog runs on the grass", "en"), ("一只狗在草地上奔跑", "zh"),
                        ("ein Hund rennt über eine Wiese", "de")):
        result = searcher.search(query, k=2, rerank=None)
        assert result.language == lang and result.unknown_words == []
        if lang == "de":
            assert result.reranked == 0 and "German captioner reads a grid of cells" in result.not_reranked
        else:
            assert result.reranked == 100 and result.not_reranked is None
        # the scores are the model's S_kl of the query read in its language (its own side)
        ids = np.array([vocab.encode(vocab.tokenize(query, lang))])
        with torch.no_grad():
            s, mask = model.embed_words(torch.from_numpy(ids))
        vectors = np.asarray(searcher.vectors, dtype=np.float32)
        want = alignment_scores(vectors, s.numpy(), mask.numpy(), "max")[:, 0]
        for hit in result.hits:   # not re-ranked: the score is S_kl itself
            got = hit.score if hit.alignment_score is None else hit.alignment_score
            assert got == pytest.approx(float(want[searcher.names.index(hit.name)]), rel=1e-3)
    with pytest.raises(ScenetalkError, match="reads de, en, zh"):
        searcher.search("a dog", lang="fr")
    with pytest.raises(ScenetalkError, match="Cyrillic"):
        searcher.search("собака бежит")
    description = searcher.describe(searcher.names[0], k=3,
                                       sentences=["a dog runs", "一只狗在奔跑", "ein Hund rennt", "the man"])
    assert len(description.hits) == 3
    assert main(["search", str(tmp_path / "idx"), "一只狗在草地上奔跑", "--top", "2", "--json"]) == 0


def test_index_add_indexes_only_the_new_photos_and_search_covers_every_part(index, tmp_path, capsys):
    """``index add`` writes the new photos as a part of the index; searching, describing and
    region retrieval over the parts give what an index built of all the photos at once gives."""
    import json

    from scenetalk.cli import main
    from scenetalk.retrieval.index import PARTS_DIR, add_to_index, index_folder

    _, ckpt, root = index
    photos = copy_sample_photos(tmp_path / "photos")
    everything = index_folder(photos, tmp_path / "all", ckpt, progress=False).out
    names = sorted(p.name for p in photos.iterdir())
    later = tmp_path / "later"
    later.mkdir()
    for name in names[2:]:
        (photos / name).rename(later / name)
    idx = index_folder(photos, tmp_path / "idx", ckpt, progress=False).out
    (photos / "new").mkdir()
    (later / names[2]).rename(photos / names[2])
    (later / names[3]).rename(photos / "new" / names[3])
    (photos / "new" / "broken.jpg").write_bytes(b"not a jpeg")
    # a sub-folder of the index's folder: the names stay relative to the index's folder
    summary = add_to_index(idx, photos / "new", ckpt, progress=False)
    assert (summary.added, summary.already, summary.photos, summary.part) == (1, 0, 3, f"{PARTS_DIR}/0001")
    assert summary.skipped == [f"new{os.sep}broken.jpg"]
    assert main(["index", "add", str(idx), "--checkpoint", str(ckpt), "--quiet"]) == 0   # the index's folder
    out = capsys.readouterr().out
    assert f"added 1 images of {photos} to {idx} as {PARTS_DIR}/0002 (2 were in it already); it holds 4" in out
    assert main(["index", "add", str(idx), "--recursive", "--quiet"]) == 0      # the model the index records
    assert "nothing to add" in capsys.readouterr().out
    assert json.loads((idx / INDEX_FILE).read_text())["parts"] == [f"{PARTS_DIR}/0001", f"{PARTS_DIR}/0002"]
    parts, whole = Searcher(idx, ckpt), Searcher(everything, ckpt)
    assert sorted(parts.names) == sorted(n if n != names[3] else f"new{os.sep}{n}" for n in whole.names)
    assert len(parts.parts) == 3 and [len(p.names) for p in parts.parts] == [2, 1, 1]
    same = {n: n if n != names[3] else f"new{os.sep}{n}" for n in whole.names}
    for query in ("a red cup on the table", "the cat sits", "an astronaut in space"):
        for c in (1, 2, 1000):
            got, want = parts.search(query, k=3, candidates=c), whole.search(query, k=3, candidates=1000)
            assert [(h.name, round(h.score, 4)) for h in got.hits] == [(same[h.name], round(h.score, 4))
                                                                      for h in want.hits]
            assert got.exact and got.candidates == 4   # each part scores k of its photos at least: all here
        got, want = parts.best_regions(query, top=3), whole.best_regions(query, top=3)
        assert [(r.image, r.region, r.class_name, r.box) for r in got.regions] == [
            (same[r.image], r.region, r.class_name, r.box) for r in want.regions]
    for name in whole.names:
        np.testing.assert_array_equal(parts.global_features(same[name]), whole.global_features(name))
        np.testing.assert_array_equal(parts.image_vectors(same[name])[1], whole.image_vectors(name)[1])
    sentences = ["a red cup on the table", "a cat sits", "an astronaut in space"]
    assert ([h.sentence for h in parts.describe(same[names[3]], k=3, sentences=sentences).hits]
            == [h.sentence for h in whole.describe(names[3], k=3, sentences=sentences).hits])
    # re-ranked by the captioner, which reads each photo's global features from its part
    cap = random_captioner(tmp_path / "cap", whole.meta["extractor_id"])
    got = parts.search("a red cup on the table", k=3, rerank=3, captioner=cap)
    want = whole.search("a red cup on the table", k=3, rerank=3, captioner=cap)
    assert [(h.name, round(h.log_likelihood, 4)) for h in got.hits] == [
        (same[h.name], round(h.log_likelihood, 4)) for h in want.hits]
    # refused, in one line each, before any photo is read: a folder outside the index's, another model
    assert main(["index", "add", str(idx), str(later), "--checkpoint", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "not inside the folder the index" in err and len(err.splitlines()) == 1
    other = random_checkpoint(tmp_path / "other", whole.meta["extractor_id"], seed=1)
    assert main(["index", "add", str(idx), "--checkpoint", str(other)]) == 2
    err = capsys.readouterr().err
    assert "--checkpoint" in err and "built with alignment model" in err and len(err.splitlines()) == 1
    assert main(["index", "add", str(tmp_path / "nowhere")]) == 2
    assert "not a scenetalk index" in capsys.readouterr().err
    # a rebuild holds every photo itself: the parts go
    index_folder(photos, idx, ckpt, recursive=True, progress=False, overwrite=True)
    assert not (idx / PARTS_DIR).exists() and len(Searcher(idx, ckpt).parts) == 1


def test_an_interrupted_index_add_leaves_the_index_as_it_was_and_resumes(index, tmp_path, monkeypatch):
    import scenetalk.retrieval.index as index_module
    from scenetalk.retrieval.index import PARTS_DIR, add_to_index, index_folder

    _, ckpt, _ = index
    photos = copy_sample_photos(tmp_path / "photos")
    last = sorted(photos.iterdir())[-1]
    last.rename(tmp_path / last.name)
    idx = index_folder(photos, tmp_path / "idx", ckpt, progress=False).out
    before = (idx / INDEX_FILE).read_bytes()
    (tmp_path / last.name).rename(last)
    written = index_module.atomic_write_text

    def crash(path, text):
        if path == idx / INDEX_FILE:
            raise KeyboardInterrupt  # stopped after the part was written, before it was listed
        written(path, text)

    monkeypatch.setattr(index_module, "atomic_write_text", crash)
    with pytest.raises(KeyboardInterrupt):
        add_to_index(idx, checkpoint=ckpt, progress=False)
    assert (idx / INDEX_FILE).read_bytes() == before and (idx / PARTS_DIR / "0001").is_dir()
    assert len(Searcher(idx, ckpt).names) == len(list(photos.iterdir())) - 1
    monkeypatch.setattr(index_module, "atomic_write_text", written)
    summary = add_to_index(idx, checkpoint=ckpt, progress=False)
    assert (summary.added, summary.part) == (1, f"{PARTS_DIR}/0001")
    assert last.name in Searcher(idx, ckpt).names
    # a part that went missing, or a photo listed in two parts, is a one-line error
    import json
    import shutil

    meta = json.loads((idx / INDEX_FILE).read_text())
    shutil.copytree(idx / PARTS_DIR / "0001", idx / PARTS_DIR / "0002")
    (idx / INDEX_FILE).write_text(json.dumps({**meta, "parts": meta["parts"] + [f"{PARTS_DIR}/0002"]}))
    with pytest.raises(SearchIndexError, match="a photo is in two parts"):
        Searcher(idx, ckpt)
    shutil.rmtree(idx / PARTS_DIR / "0002")
    with pytest.raises(SearchIndexError, match="a part of the index is missing"):
        Searcher(idx, ckpt)
    (idx / INDEX_FILE).write_text(json.dumps({**meta, "parts": ["../elsewhere"]}))
    with pytest.raises(SearchIndexError, match="'parts' is not a list of folders"):
        Searcher(idx, ckpt)


def test_product_quantised_candidate_lists_find_what_brute_force_finds(tmp_path, capsys):
    """``faiss_codes="PQm"``: the FAISS indexes store m bytes a photo; search re-scores the
    candidates exactly, and with every photo a candidate answers as brute force does."""
    import faiss

    from scenetalk.cli import main
    from scenetalk.retrieval.candidates import PQ_MIN_PHOTOS, check_faiss_codes

    n, extractor_id = PQ_MIN_PHOTOS, "efficientnet-lite0-224-000000000000+x"
    ckpt = random_checkpoint(tmp_path / "align", extractor_id)
    torch.manual_seed(2)
    v, names = torch.randn(n, 2, 16), [f"p{i:05d}.jpg" for i in range(n)]
    pq = Searcher(write_index(tmp_path / "pq", v, names, ckpt, extractor_id, faiss_min=n, faiss_codes="PQ4"), ckpt)
    assert pq.meta["candidate_index"]["faiss"].endswith(",PQ4") and pq.parts[0].scan == 128
    assert isinstance(pq.candidate_index, faiss.IndexIVFPQ)
    assert pq.candidate_index.code_size == 4   # bytes a photo
    for query in ("a cat sits on the table", "a red rocket in space"):
        exact = brute_force_scores(pq, query)
        full = pq.search(query, k=5, candidates=n)
        assert full.exact and [h.name for h in full.hits] == [names[i] for i in exact.argsort(descending=True)[:5]]
        narrow = pq.search(query, k=5, candidates=200)
        assert not narrow.exact
        assert [h.score for h in narrow.hits] == pytest.approx([float(exact[names.index(h.name)])
                                                                for h in narrow.hits], rel=1e-5)
    for bad in ("PQ3", "PQ0", "IVF", "SQ8", "PQ"):
        with pytest.raises(ScenetalkError, match="--faiss-codes"):
            check_faiss_codes(bad, 16)
    with pytest.raises(ScenetalkError, match="at least 9,984 photos"):
        write_index(tmp_path / "small", v[:500], names[:500], ckpt, extractor_id, faiss_min=10, faiss_codes="PQ4")
    assert main(["index", "build", str(tmp_path), "--out", str(tmp_path / "x"), "--faiss-codes", "PQ7"]) == 2
    err = capsys.readouterr().err
    assert "--faiss-codes" in err and "PQ100" in err and len(err.splitlines()) == 1 and not (tmp_path / "x").exists()


def test_parts_searched_together_never_claim_exact_wrongly(tmp_path):
    """Three parts (the bounds of two, FAISS in one) against one index of the same photos: the
    same answer when every photo is scored, and whenever the parts' proof says exact."""
    import json

    from scenetalk.retrieval.index import PARTS_DIR

    extractor_id = "efficientnet-lite0-224-000000000000+x"
    ckpt = random_checkpoint(tmp_path / "align", extractor_id)
    torch.manual_seed(3)
    sizes = (300, 120, 400)
    # regions near their photo's first one: the bounds are tight enough to prove some answers
    v = torch.randn(sum(sizes), 1, 16) * torch.rand(sum(sizes), 1, 1) * 3 + 0.05 * torch.randn(sum(sizes), 20, 16)
    names = [f"p{i:03d}.jpg" for i in range(sum(sizes))]
    whole = Searcher(write_index(tmp_path / "whole", v, names, ckpt, extractor_id), ckpt)
    idx, start, parts = tmp_path / "idx", 0, []
    for i, size in enumerate(sizes):
        out = idx if i == 0 else idx / PARTS_DIR / f"{i:04d}"
        write_index(out, v[start:start + size], names[start:start + size], ckpt, extractor_id,
                    faiss_min=400 if i == 2 else 10_000)
        start += size
        parts += [f"{PARTS_DIR}/{i:04d}"] if i else []
    meta = json.loads((idx / INDEX_FILE).read_text())
    (idx / INDEX_FILE).write_text(json.dumps({**meta, "parts": parts}))
    searcher = Searcher(idx, ckpt)
    assert searcher.names == names and [p.candidate_index is not None for p in searcher.parts] == [False, False, True]
    rng, proved = np.random.default_rng(0), 0
    for _ in range(30):
        query = " ".join(rng.choice(WORDS, size=rng.integers(1, 6)))
        want = whole.search(query, k=5, candidates=len(names))
        full = searcher.search(query, k=5, candidates=len(names))
        assert full.exact and [h.name for h in full.hits] == [h.name for h in want.hits]
        assert [h.score for h in full.hits] == pytest.approx([h.score for h in want.hits], rel=1e-5)
        for c in (10, 60):
            got = searcher.search(query, k=5, candidates=c)
            # each part scores its share of the candidates, k at least; the FAISS part proves nothing
            assert got.candidates <= sum(max(5, -(-c * size // len(names))) for size in sizes) and not got.exact
        # without the FAISS part: two parts of exact bounds, proved exact or not
        two = Searcher(idx, ckpt)
        two.parts = two.parts[:2]
        for c in (10, 60, 200):
            got = two.search(query, k=5, candidates=c)
            exact = brute_force_scores(whole, query, whole.vectors[:420])  # as stored: float16
            if got.exact:
                proved += 1
                assert [h.name for h in got.hits] == [names[i] for i in exact.argsort(descending=True)[:5]]
            assert [h.score for h in got.hits] == pytest.approx([float(exact[names.index(h.name)]) for h in got.hits],
                                                                rel=1e-5)
    assert proved > 0


def test_the_facade_builds_and_grows_an_index(index, tmp_path):
    """``scenetalk.index_folder`` and ``scenetalk.add_to_index``: what the commands call."""
    import scenetalk

    _, ckpt, _ = index
    photos = copy_sample_photos(tmp_path / "photos")
    last = sorted(photos.iterdir())[-1]
    last.rename(tmp_path / last.name)
    built = scenetalk.index_folder(photos, tmp_path / "idx", checkpoint=ckpt, progress=False)
    (tmp_path / last.name).rename(last)
    grown = scenetalk.add_to_index(built.out, checkpoint=ckpt, progress=False)
    assert (grown.added, grown.photos) == (1, built.photos + 1)
    assert last.name in scenetalk.load(alignment=ckpt).open_index(built.out).names


def test_describe_lowers_each_sentence_by_its_hubness(tmp_path):
    """retrieval.hubness: a sentence's hubness is its mean S_kl over the k bank photos it fits
    best (checked by brute force); the index stores it when it is built, describe subtracts
    α times it from S_kl, stored or computed for given sentences alike, and says so."""
    import json

    import scenetalk
    from scenetalk.checkpoint import load_alignment_engine
    from scenetalk.cli import main
    from scenetalk.retrieval.hubness import HUB_PHOTOS, read_hub_photos, sentence_hubness, write_hub_photos
    from scenetalk.retrieval.index import SentenceCollection, embed_sentences

    n, extractor_id = 12, "efficientnet-lite0-224-000000000000+x"
    ckpt = random_checkpoint(tmp_path / "align", extractor_id)
    rng = np.random.default_rng(0)
    bank = rng.random((7, 5, 1280), dtype=np.float32)
    write_hub_photos(ckpt, bank)
    assert np.abs(read_hub_photos(ckpt) - bank).max() <= 1 / 254 + 1e-6     # int8, a scale a photo
    model, vocab, _ = load_alignment_engine(ckpt)
    v_bank = model.embed_regions(read_hub_photos(ckpt))
    hub = sentence_hubness(model, read_hub_photos(ckpt), embed_sentences(model, vocab, SENTENCES), neighbours=3)
    s_all, m_all = next(embed_sentences(model, vocab, SENTENCES, batch_size=len(SENTENCES)))
    for l in range(len(SENTENCES)):
        words = s_all[l][m_all[l]]                                           # (T, h)
        per_photo = [sum(max(float(v_bank[i, r] @ w) for r in range(v_bank.shape[1])) for w in words)
                     for i in range(len(v_bank))]
        assert hub[l] == pytest.approx(np.mean(sorted(per_photo)[-3:]), rel=1e-4, abs=1e-4)

    g = torch.Generator().manual_seed(5)
    path = write_index(tmp_path / "idx", torch.randn(n, 20, 16, generator=g), [f"p{i:02d}.jpg" for i in range(n)],
                       ckpt, extractor_id, sentences=SENTENCES)
    meta = json.loads((path / "index.json").read_text())
    assert meta["sentences"]["hubness"]["neighbours"] == 25
    stored = SentenceCollection.load(path / "sentences.npz", 16).hubness
    assert stored == pytest.approx(sentence_hubness(model, read_hub_photos(ckpt), embed_sentences(model, vocab, SENTENCES)),
                                   abs=1e-5)
    m = scenetalk.load(alignment=ckpt)
    plain = m.describe(path, "p03.jpg", k=len(SENTENCES), rerank=0, hub_weight=0)
    match = {h.sentence: h.score for h in plain.hits}
    assert plain.hub_weight == 0 and all(h.hubness is None for h in plain.hits)
    for weight in (1.0, 2.5):
        got = m.describe(path, "p03.jpg", k=len(SENTENCES), rerank=0, hub_weight=weight)
        given = m.describe(path, "p03.jpg", k=len(SENTENCES), rerank=0, hub_weight=weight, sentences=SENTENCES)
        want = sorted(SENTENCES, key=lambda t: -(match[t] - weight * stored[SENTENCES.index(t)]))
        assert [h.sentence for h in got.hits] == want == [h.sentence for h in given.hits]
        for h in got.hits:
            assert h.alignment_score == pytest.approx(match[h.sentence], abs=1e-4)
            assert h.hubness == pytest.approx(stored[SENTENCES.index(h.sentence)], abs=1e-5)
            assert h.score == pytest.approx(h.alignment_score - weight * h.hubness, abs=1e-4)
        assert got.hub_weight == weight and "fits photos in general" in got.scores
    assert m.describe(path, "p03.jpg", rerank=0).hub_weight == 1.0                 # the default α
    # a bank changed since the index was built: its stored hubness is not used
    write_hub_photos(ckpt, bank[:4])
    m = scenetalk.load(alignment=ckpt)
    assert m.describe(path, "p03.jpg", rerank=0).hub_weight == 0
    # bad input: one line, nothing written
    with pytest.raises(ScenetalkError, match="hub_weight"):
        m.describe(path, "p03.jpg", hub_weight=-1)
    assert main(["describe", str(path), "p03.jpg", "--checkpoint", str(ckpt), "--hub-weight", "nan"]) == 2
    (ckpt / HUB_PHOTOS).write_bytes(b"not safetensors")
    m = scenetalk.load(alignment=ckpt)
    with pytest.raises(ScenetalkError, match="hub_photos.safetensors: damaged"):
        m.describe(path, "p03.jpg", sentences=SENTENCES, rerank=0)


def test_index_attach_searches_an_index_built_elsewhere_as_part_of_this_one(index, tmp_path, capsys, monkeypatch):
    """``index attach``: an index built on another machine (its photos elsewhere there) becomes
    a part of this one with its names rebased on this index's folder; search, describe and
    region retrieval then answer as an index built of all the photos at once; the attached
    index is not changed; what cannot be attached is a one-line error and changes nothing."""
    import json
    import shutil

    import scenetalk.retrieval.index as index_module
    from scenetalk.cli import main
    from scenetalk.retrieval.index import PARTS_DIR, attach_index, index_folder

    _, ckpt, _ = index
    root = copy_sample_photos(tmp_path / "photos")
    names = sorted(p.name for p in root.iterdir())
    (root / "b").mkdir()
    for name in names[2:]:
        (root / name).rename(root / "b" / name)
    everything = index_folder(root, tmp_path / "all", ckpt, recursive=True, progress=False).out
    # "machine B" has the photos of b/ in a folder of its own, and indexes them there
    elsewhere = tmp_path / "machine-b" / "pictures"
    shutil.copytree(root / "b", elsewhere)
    other = index_folder(elsewhere, tmp_path / "machine-b" / "b.index", ckpt, progress=False).out
    before = {p.relative_to(other): p.read_bytes() for p in other.rglob("*") if p.is_file()}
    idx = index_folder(root, tmp_path / "idx", ckpt, progress=False).out             # "machine A": a, not b
    assert main(["index", "attach", str(idx), str(other), "--folder", str(root / "b"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"attached {other} to {idx} as {PARTS_DIR}/0001: {len(names) - 2} images (its photos as b/...)" in out
    assert {p.relative_to(other): p.read_bytes() for p in other.rglob("*") if p.is_file()} == before
    parts, whole = Searcher(idx, ckpt), Searcher(everything, ckpt)
    assert sorted(parts.names) == sorted(whole.names) and len(parts.parts) == 2
    for query in ("a red cup on the table", "the cat sits", "an astronaut in space"):
        got, want = parts.search(query, k=3, candidates=2), whole.search(query, k=3, candidates=1000)
        assert [(h.name, round(h.score, 4)) for h in got.hits] == [(h.name, round(h.score, 4)) for h in want.hits]
        got, want = parts.best_regions(query, top=3), whole.best_regions(query, top=3)
        assert [(r.image, r.region, r.box) for r in got.regions] == [(r.image, r.region, r.box) for r in want.regions]
    for name in whole.names:
        np.testing.assert_array_equal(parts.global_features(name), whole.global_features(name))
    sentences = ["a red cup on the table", "a cat sits", "an astronaut in space"]
    b_photo = f"b{os.sep}{names[3]}"
    assert ([h.sentence for h in parts.describe(b_photo, k=3, sentences=sentences).hits]
            == [h.sentence for h in whole.describe(b_photo, k=3, sentences=sentences).hits])
    # refused in one line, the index left as it was: the same photos again, another model, photos
    # outside the index's folder, not an index
    meta_before = (idx / INDEX_FILE).read_bytes()
    other_model = random_checkpoint(tmp_path / "other-model", whole.meta["extractor_id"], seed=1)
    stranger = index_folder(elsewhere, tmp_path / "stranger.index", other_model, progress=False).out
    for argv, message in (([str(idx), str(other), "--folder", str(root / "b")], "is in"),
                          ([str(idx), str(stranger), "--folder", str(root / "b")], "built with alignment model"),
                          ([str(idx), str(other)], "not inside the folder the index"),
                          ([str(idx), str(tmp_path / "nowhere")], "not a scenetalk index"),
                          ([str(idx), str(idx)], "itself")):
        assert main(["index", "attach", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.splitlines()) == 1, (argv, err)
    assert (idx / INDEX_FILE).read_bytes() == meta_before
    # interrupted before it is listed: the index is as it was, and attaching again completes it
    fresh = index_folder(root, tmp_path / "idx2", ckpt, progress=False).out
    fresh_meta = (fresh / INDEX_FILE).read_bytes()
    written = index_module.atomic_write_text

    def crash(path, text):
        if path == fresh / INDEX_FILE:
            raise KeyboardInterrupt
        written(path, text)

    monkeypatch.setattr(index_module, "atomic_write_text", crash)
    with pytest.raises(KeyboardInterrupt):
        attach_index(fresh, other, root / "b", progress=False)
    assert (fresh / INDEX_FILE).read_bytes() == fresh_meta and len(Searcher(fresh, ckpt).names) == 2
    monkeypatch.setattr(index_module, "atomic_write_text", written)
    summary = attach_index(fresh, other, root / "b", progress=False)
    assert summary.part == f"{PARTS_DIR}/0001" and sorted(Searcher(fresh, ckpt).names) == sorted(whole.names)
    assert json.loads((fresh / INDEX_FILE).read_text())["parts"] == [f"{PARTS_DIR}/0001"]
