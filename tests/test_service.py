"""The web service (scenetalk.service): every endpoint, every limit and every error shape.

Most tests serve a fake façade (``FakeModels``: canned results, a settable delay, failures
on cue), so that the scheduling, the limits and the errors are tested exactly and fast; the
slow ones at the end serve the shipped models on the sample photos and check that the API's
JSON is the library's (and so the CLI's ``--json``)."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time

import httpx
import numpy as np
import pytest
from conftest import copy_sample_photos
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from PIL import Image

from scenetalk.captioning.captioner import Caption
from scenetalk.cli import main
from scenetalk.errors import ScenetalkError
from scenetalk.grounding.region_descriptions import RegionDescriptions
from scenetalk.retrieval.search import Description, Hit, SearchResult, SentenceHit
from scenetalk.service import ServiceSettings, create_app
from scenetalk.service.settings import index_names


def png(width: int = 40, height: int = 30, colour=(200, 30, 30), fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, fmt)
    return out.getvalue()


class FakeSearcher:
    def __init__(self, folder):
        self.names = ["a.png", "sub/b.png"]
        self.meta = {"sentences": True, "folder": str(folder) if folder else None}

    def row(self, name):
        return self.names.index(name) if name in self.names else None


class FakeModels:
    """The façade's methods the service calls. A photo 13 pixels wide makes ``caption`` fail
    (a batch holding it must still answer the others); query "boom" is a bug (500)."""

    def __init__(self, folder=None, delay: float = 0.0):
        self.folder, self.delay = folder, delay
        self.caption_calls: list[int] = []
        self.opened = threading.Event()
        self.opened.set()

    def open_index(self, path):
        self.opened.wait(10)
        return FakeSearcher(self.folder)

    def caption(self, images, beam_size=7, n_best=1):
        self.caption_calls.append(len(images))
        time.sleep(self.delay)
        if any(im.size[0] == 13 for im in images):
            raise ScenetalkError("this photo cannot be captioned")
        return [[Caption(f"a photo of {im.size[0]} by {im.size[1]}", -1.5 - k, -0.5, True) for k in range(n_best)]
                for im in images]

    def regions(self, image, top=5, beam_size=7, max_len=16):
        time.sleep(self.delay)
        records = [{"region": 1, "class": "cat", "detector_score": 0.9, "box": [1.0, 2.0, 20.0, 25.0],
                    "phrase": "a cat", "log_prob": -1.0}][:top]
        return RegionDescriptions(None, "fake", "a fake generator", records, photo=image, boxes=np.zeros((1, 4)))

    def align(self, image, sentence, beta=0.2):
        from scenetalk.grounding.word_regions import WordAlignment

        if sentence == "qq":
            raise ScenetalkError(f"sentence: none of the words of {sentence!r} is known")
        return WordAlignment(None, sentence, "fake", beta, 0.2, [], [], [], [], photo=image, unary=None, boxes=None)

    def search(self, index, sentence, k=10, warn=True, lang=None):
        time.sleep(self.delay)
        if sentence == "boom":
            raise RuntimeError("a bug")
        if sentence == "zzz":
            raise ScenetalkError("none of the words of 'zzz' is known to the model")
        return SearchResult(sentence, [Hit("a.png", 1.25), Hit("sub/b.png", 0.5)][:k], [], True, 2,
                            language=lang or "en")

    def describe(self, index, image, k=5, warn=True, hub_weight=None):
        name = image if isinstance(image, str) else "<image>"
        return Description(name, [SentenceHit("a red square", 2.0)][:k], hub_weight=1.0 if hub_weight is None
                           else hub_weight)


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.png").write_bytes(png(300, 200))
    (folder / "sub" / "b.png").write_bytes(png(50, 50, (0, 0, 200)))
    (tmp_path / "secret.png").write_bytes(png())
    return folder


def client_for(models=None, **settings) -> TestClient:
    settings.setdefault("indexes", {"photos": "photos.index"})
    return TestClient(create_app(ServiceSettings(**settings), models=models or FakeModels(), load_in_background=False),
                      raise_server_exceptions=False)  # a bug must be a 500 answer, as a real client sees it


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    data = response.json()
    assert set(data) == {"error", "detail"} and data["error"] == code and data["detail"], data
    assert "\n" not in data["detail"]
    return data


def test_every_result_is_the_librarys_json_form(photo_folder):
    from scenetalk.results import to_data

    models = FakeModels(photo_folder)
    with client_for(models) as c:
        r = c.post("/v1/caption", files={"image": ("x.png", png(40, 30))}, data={"beam_size": 3, "n_best": 2})
        assert r.status_code == 200
        assert r.json() == {"image": "x.png", "captions": [
            {"text": "a photo of 40 by 30", "log_prob": -1.5, "score": -0.5, "complete": True, "words": []},
            {"text": "a photo of 40 by 30", "log_prob": -2.5, "score": -0.5, "complete": True, "words": []}]}
        r = c.post("/v1/regions", files={"image": ("x.png", png())}, data={"top": 1})
        assert r.json()["regions"][0]["phrase"] == "a cat" and r.json()["image"] == "x.png"
        assert r.json() == {**to_data(models.regions(Image.new("RGB", (4, 4)), top=1)), "image": "x.png"}
        r = c.get("/v1/search", params={"q": "a red square", "k": 1})
        assert r.json() == to_data(models.search("i", "a red square", k=1))
        r = c.post("/v1/describe", data={"photo": "sub/b.png", "k": 1})
        assert r.json() == to_data(Description("sub/b.png", [SentenceHit("a red square", 2.0)], hub_weight=1.0))
        r = c.post("/v1/describe", data={"photo": "sub/b.png", "k": 1, "hub_weight": 0})   # passed through
        assert r.json()["hub_weight"] == 0
        assert c.get("/v1/indexes").json() == [{"name": "photos", "photos": 2, "sentences": True, "photo_files": True}]
        assert c.get("/v1/indexes/photos/photos", params={"offset": 1, "limit": 5}).json() == {
            "index": "photos", "total": 2, "offset": 1, "photos": ["sub/b.png"]}


def test_readyz_is_503_until_the_models_are_loaded_and_healthz_always_answers():
    models = FakeModels()
    models.opened.clear()  # loading blocks until this is set
    app = create_app(ServiceSettings(indexes={"photos": "p"}), models=models)
    with TestClient(app) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        not_ready = assert_error(c.get("/readyz"), 503, "not_ready")
        assert "loading" in not_ready["detail"]
        assert_error(c.post("/v1/caption", files={"image": ("x.png", png())}), 503, "not_ready")
        models.opened.set()
        for _ in range(100):
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        assert c.get("/readyz").json() == {"status": "ready", "indexes": ["photos"]}


def test_a_load_failure_is_said_on_readyz_and_to_the_callback():
    class Broken(FakeModels):
        def open_index(self, path):
            raise ScenetalkError(f"{path}: not a scenetalk index (no index.json)")

    said = []
    with TestClient(create_app(ServiceSettings(indexes={"x": "nowhere"}), models=Broken(),
                               on_load_failure=said.append)) as c:
        for _ in range(100):
            if said:
                break
            time.sleep(0.05)
        detail = assert_error(c.get("/readyz"), 503, "not_ready")["detail"]
    assert said == ["nowhere: not a scenetalk index (no index.json)"] and said[0] in detail


def test_uploads_are_sniffed_from_their_bytes_not_their_names():
    with client_for() as c:
        assert c.post("/v1/caption", files={"image": ("photo.jpg", png(20, 10))}).status_code == 200  # a PNG named .jpg
        assert c.post("/v1/caption", files={"image": ("noext", png(20, 10, fmt="JPEG"))}).status_code == 200
        for name, data in (("a.png", b"not an image at all"), ("a.png", b""), ("a.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n"),
                           ("a.png", png()[:40])):
            detail = assert_error(c.post("/v1/caption", files={"image": (name, data)}), 400, "bad_image")["detail"]
            assert name in detail


def test_uploads_over_the_size_cap_are_413_whether_their_length_is_declared_or_not():
    with client_for(max_upload_bytes=50_000) as c:
        big = png() + b"\0" * 60_000
        assert_error(c.post("/v1/caption", files={"image": ("a.png", big)}), 413, "upload_too_large")

        def chunks():  # no Content-Length: sent chunked
            for _ in range(10):
                yield b"x" * 10_000

        r = c.post("/v1/caption", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
        assert_error(r, 413, "upload_too_large")
        assert c.post("/v1/caption", files={"image": ("a.png", png())}).status_code == 200  # still serving


def test_a_decompression_bomb_is_refused_from_its_header():
    bomb = io.BytesIO()
    Image.new("L", (8000, 8000)).save(bomb, "PNG")  # 64 million pixels in about 60 KB
    assert len(bomb.getvalue()) < 200_000
    with client_for() as c:
        detail = assert_error(c.post("/v1/caption", files={"image": ("bomb.png", bomb.getvalue())}), 413,
                              "image_too_large")["detail"]
        assert "64,000,000 pixels" in detail
    with client_for(max_upload_pixels=1000) as c:
        assert_error(c.post("/v1/regions", files={"image": ("a.png", png(40, 30))}), 413, "image_too_large")


def test_captions_and_queries_in_other_languages(monkeypatch):
    import scenetalk.api

    class Chinese(FakeModels):
        def caption(self, images, beam_size=7, n_best=1):
            return [[Caption("一只狗在跑", -1.0, -0.5, True, ["一只", "狗", "在", "跑"])] for _ in images]

    loaded = []
    monkeypatch.setattr(scenetalk.api, "load", lambda lang="en", **_: loaded.append(lang) or Chinese())
    with client_for() as c:
        r = c.post("/v1/caption", files={"image": ("x.png", png())}, data={"lang": "zh"})
        assert r.status_code == 200, r.text
        assert r.json()["captions"][0]["text"] == "一只狗在跑"
        c.post("/v1/caption", files={"image": ("x.png", png())}, data={"lang": "zh"})
        assert loaded == ["zh"]                                     # loaded once, kept
        r = c.post("/v1/caption", files={"image": ("x.png", png(40, 30))})
        assert r.json()["captions"][0]["text"] == "a photo of 40 by 30"   # English: the served captioner
        r = c.get("/v1/search", params={"q": "ein hund", "lang": "de"})
        assert r.status_code == 200 and r.json()["language"] == "de"


@pytest.mark.parametrize("request_args", [
    ("post", "/v1/caption", {"data": {"beam_size": 0}}),
    ("post", "/v1/caption", {"data": {"beam_size": 1000}}),
    ("post", "/v1/caption", {"data": {"beam_size": "seven"}}),
    ("post", "/v1/caption", {"data": {"beam_size": 2, "n_best": 3}}),
    ("post", "/v1/caption", {"data": {"lang": "fr"}}),
    ("get", "/v1/search", {"params": {"q": "a cat", "lang": "klingon"}}),
    ("post", "/v1/regions", {"data": {"top": 20}}),
    ("post", "/v1/align", {"data": {}}),
    ("post", "/v1/align", {"data": {"sentence": "a cat", "beta": -1}}),
    ("get", "/v1/search", {"params": {"q": ""}}),
    ("get", "/v1/search", {"params": {"q": "a cat", "k": 0}}),
    ("get", "/v1/search", {"params": {"q": "a cat", "k": "many"}}),
    ("get", "/v1/search", {"params": {"q": "a" * 5000}}),
    ("get", "/v1/indexes/photos/photos", {"params": {"limit": 0}}),
    ("post", "/v1/describe", {"data": {"photo": "a.png", "k": 0}}),
    ("post", "/v1/describe", {"data": {"photo": "a.png", "hub_weight": -1}}),
])
def test_bad_parameters_are_422_in_the_one_shape(request_args):
    method, path, kwargs = request_args
    if method == "post" and "files" not in kwargs and path != "/v1/describe":
        kwargs["files"] = {"image": ("a.png", png())}
    with client_for() as c:
        data = assert_error(getattr(c, method)(path, **kwargs), 422, "bad_parameter")
        assert len(data["detail"]) < 300


def test_a_missing_image_field_is_422():
    with client_for() as c:
        detail = assert_error(c.post("/v1/caption", data={"beam_size": 3}), 422, "bad_parameter")["detail"]
        assert "image" in detail


def test_library_errors_are_400_with_the_librarys_line():
    with client_for() as c:
        detail = assert_error(c.get("/v1/search", params={"q": "zzz"}), 400, "bad_input")["detail"]
        assert detail == "none of the words of 'zzz' is known to the model"
        assert_error(c.post("/v1/align", files={"image": ("a.png", png())}, data={"sentence": "qq"}), 400, "bad_input")


def test_unknown_indexes_photos_and_routes_are_404():
    with client_for(indexes={"one": "x", "two": "y"}) as c:
        assert_error(c.get("/v1/search", params={"q": "a cat", "index": "three"}), 404, "unknown_index")
        assert_error(c.get("/v1/search", params={"q": "a cat"}), 422, "bad_parameter")  # two served: name one
        assert_error(c.get("/v1/indexes/three/photos"), 404, "unknown_index")
        assert_error(c.get("/nowhere"), 404, "not_found")
        assert_error(c.delete("/v1/search"), 405, "method_not_allowed")
    with client_for(indexes={}) as c:
        assert "--index" in assert_error(c.get("/v1/search", params={"q": "a cat"}), 404, "unknown_index")["detail"]
        assert c.get("/v1/indexes").json() == []


def test_photos_are_served_by_id_only_never_by_path(photo_folder):
    with client_for(FakeModels(photo_folder)) as c:
        r = c.get("/v1/indexes/photos/photos/sub/b.png", params={"size": 32})
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(r.content)).size == (32, 32)
        assert Image.open(io.BytesIO(c.get("/v1/indexes/photos/photos/a.png").content)).size == (300, 200)
        for bad in ("../secret.png", "%2e%2e/secret.png", "sub/../../secret.png", "sub%2F..%2F..%2Fsecret.png",
                    "%2Fetc%2Fpasswd", "missing.png"):
            r = c.get(f"/v1/indexes/photos/photos/{bad}")
            assert r.status_code == 404 and r.json()["error"] in ("unknown_photo", "not_found"), (bad, r.text)
        assert_error(c.post("/v1/describe", data={"photo": "/etc/passwd"}), 404, "unknown_photo")
        assert_error(c.post("/v1/describe", data={"photo": "../secret.png"}), 404, "unknown_photo")


def test_a_photo_name_of_a_hand_edited_index_that_leads_out_of_its_folder_is_refused(photo_folder, tmp_path):
    class Edited(FakeSearcher):
        def __init__(self, folder):
            super().__init__(folder)
            self.names = ["a.png", "sub/../../secret.png", str(tmp_path / "secret.png")]

    class Models(FakeModels):
        def open_index(self, path):
            return Edited(self.folder)

    with client_for(Models(photo_folder)) as c:
        assert c.get("/v1/indexes/photos/photos/a.png").status_code == 200
        for name in Edited(None).names[1:]:
            r = c.get(f"/v1/indexes/photos/photos/{name.replace('/', '%2F')}")
            assert "outside its index's folder" in assert_error(r, 404, "unknown_photo")["detail"]
    with client_for(FakeModels(None)) as c:  # an index that does not record its folder
        assert_error(c.get("/v1/indexes/photos/photos/a.png"), 404, "unknown_photo")


def test_describe_takes_exactly_one_of_an_upload_and_a_photo_id():
    with client_for() as c:
        assert_error(c.post("/v1/describe", data={"k": 2}), 422, "bad_parameter")
        r = c.post("/v1/describe", files={"image": ("x.png", png())}, data={"photo": "a.png"})
        assert_error(r, 422, "bad_parameter")
        r = c.post("/v1/describe", files={"image": ("x.png", png())})
        assert r.status_code == 200 and r.json()["image"] == "x.png"


def test_a_bug_is_a_500_in_the_one_shape_and_the_server_goes_on():
    with client_for() as c:
        data = assert_error(c.get("/v1/search", params={"q": "boom"}), 500, "internal")
        assert "a bug" not in data["detail"]  # internals stay in the server's log
        assert c.get("/v1/search", params={"q": "a cat"}).status_code == 200


def async_client(models, **settings):
    settings.setdefault("indexes", {"photos": "p"})
    app = create_app(ServiceSettings(**settings), models=models, load_in_background=False)
    models.caption_calls.clear()  # the warm-up's
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def test_a_request_past_the_timeout_is_504_and_the_server_goes_on():
    models = FakeModels(delay=0.5)

    async def go():
        async with async_client(models, request_timeout_s=0.1) as c:
            slow = await c.get("/v1/search", params={"q": "a cat"})
            models.delay = 0.0
            await asyncio.sleep(0.5)  # the given-up call finishes in its thread
            return slow, await c.get("/v1/search", params={"q": "a cat"})

    slow, after = asyncio.run(go())
    assert_error(slow, 504, "timeout")
    assert after.status_code == 200


def test_a_full_queue_is_503_with_retry_after():
    models = FakeModels(delay=0.3)

    async def go():
        async with async_client(models, concurrency=1, queue=1) as c:
            return await asyncio.gather(*[c.get("/v1/search", params={"q": "a cat"}) for _ in range(4)])

    answers = asyncio.run(go())
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 200, 503, 503]
    busy = [r for r in answers if r.status_code == 503]
    assert all(assert_error(r, 503, "busy") and int(r.headers["retry-after"]) >= 1 for r in busy)


def test_concurrent_captions_are_batched_and_each_gets_its_own():
    models = FakeModels(delay=0.05)

    async def go():
        async with async_client(models, concurrency=1, batch_wait_s=0.05, max_batch=4) as c:
            return await asyncio.gather(*[c.post("/v1/caption", files={"image": ("p.png", png(20 + i, 10))})
                                          for i in range(8)])

    answers = asyncio.run(go())
    assert [r.json()["captions"][0]["text"] for r in answers] == [f"a photo of {20 + i} by 10" for i in range(8)]
    assert sum(models.caption_calls) == 8 and max(models.caption_calls) == 4 and len(models.caption_calls) <= 3


def test_one_bad_photo_in_a_batch_fails_only_its_own_request():
    models = FakeModels()

    async def go():
        async with async_client(models, batch_wait_s=0.05) as c:
            return await asyncio.gather(*[c.post("/v1/caption", files={"image": ("p.png", png(w, 10))})
                                          for w in (20, 13, 30)])

    ok, bad, ok2 = asyncio.run(go())
    assert ok.json()["captions"][0]["text"] == "a photo of 20 by 10"
    assert ok2.json()["captions"][0]["text"] == "a photo of 30 by 10"
    assert assert_error(bad, 400, "bad_input")["detail"] == "this photo cannot be captioned"
    assert models.caption_calls[0] == 3  # tried together first


def test_different_decoding_settings_are_not_batched_together():
    models = FakeModels()

    async def go():
        async with async_client(models, batch_wait_s=0.05) as c:
            return await asyncio.gather(*[c.post("/v1/caption", files={"image": ("p.png", png())},
                                                 data={"beam_size": 3, "n_best": n}) for n in (1, 2, 1, 2)])

    answers = asyncio.run(go())
    assert [len(r.json()["captions"]) for r in answers] == [1, 2, 1, 2]
    assert sorted(models.caption_calls) == [2, 2]


def test_the_page_and_the_api_docs_are_served_with_nothing_from_elsewhere():
    from scenetalk.service.app import STATIC

    with client_for() as c:
        page = c.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for asset in ("/static/app.js", "/static/style.css"):
            assert c.get(asset).status_code == 200
        docs = c.get("/docs")
        assert docs.status_code == 200 and "https://" not in docs.text and "swagger-ui-bundle.js" in docs.text
        assert c.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
        spec = c.get("/openapi.json").json()
        assert {"/v1/caption", "/v1/regions", "/v1/align", "/v1/search", "/v1/describe", "/v1/indexes",
                "/v1/indexes/{name}/photos/{photo}", "/healthz", "/readyz"} <= set(spec["paths"])
    for f in STATIC.iterdir():  # works offline: no CDN, no fonts or scripts from another host
        text = f.read_text(encoding="utf-8")
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text, f.name


def test_service_settings_and_index_names_refuse_what_cannot_work(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "a").mkdir(parents=True)
    assert index_names([str(tmp_path / "a"), f"other={tmp_path / 'b' / 'a'}"]) == {
        "a": str(tmp_path / "a"), "other": str(tmp_path / "b" / "a")}
    with pytest.raises(ScenetalkError, match="two indexes are named 'a'"):
        index_names([str(tmp_path / "a"), str(tmp_path / "b" / "a")])
    with pytest.raises(ScenetalkError, match="is not a folder"):
        index_names([str(tmp_path / "missing")])
    for bad in ({"concurrency": 0}, {"max_upload_bytes": -1}, {"request_timeout_s": float("nan")},
                {"indexes": {"a/b": "x"}}):
        with pytest.raises(ScenetalkError):
            ServiceSettings(**bad)


def test_serve_refuses_bad_arguments_in_one_line(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for argv, says in ((["--index", str(tmp_path / "none")], "is not a folder"),
                           (["--port", str(port)], "cannot listen on 127.0.0.1"),
                           (["--workers", "0"], "--workers"), (["--concurrency", "0"], "concurrency"),
                           (["--port", "70000"], "--port")):
            assert main(["serve", *argv]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and says in err and "Traceback" not in err, err


# ---- the shipped models ----

@pytest.fixture(scope="module")
def sample_index(tmp_path_factory):
    from scenetalk.retrieval.index import index_folder

    root = tmp_path_factory.mktemp("served")
    photos = copy_sample_photos(root / "photos")
    (root / "sentences.txt").write_text("a cat lying on a blanket\na man in a space suit\na cup of coffee\n")
    index_folder(photos, root / "index", sentence_file=root / "sentences.txt", progress=False)
    return root


@pytest.mark.slow
def test_the_shipped_models_answer_every_endpoint_as_the_cli_does(sample_index, capsys):
    from scenetalk.data.sample_photos import sample_photo_paths

    cat = next(p for p in sample_photo_paths() if p.stem == "chelsea")
    app = create_app(ServiceSettings(indexes={"samples": str(sample_index / "index")}), load_in_background=False)
    with TestClient(app) as c:
        def cli(*argv):
            assert main([*argv, "--json"]) == 0
            return json.loads(capsys.readouterr().out)

        files = {"image": (cat.name, cat.read_bytes())}
        api = c.post("/v1/caption", files=files, data={"beam_size": 3, "n_best": 2}).json()
        assert api == cli("caption", str(cat), "--beam", "3", "--n-best", "2", "--quiet")[0] | {"image": cat.name}
        api = c.post("/v1/regions", files=files, data={"top": 3}).json()
        assert api["regions"] == cli("regions", str(cat), "--top", "3")["regions"]
        api = c.post("/v1/align", files=files, data={"sentence": "a cat lying on a blanket"}).json()
        assert api["segments"] == cli("align", str(cat), "a cat lying on a blanket")["segments"]
        api = c.get("/v1/search", params={"q": "a cat lying on a blanket", "k": 2}).json()
        assert api == cli("search", str(sample_index / "index"), "a cat lying on a blanket", "--top", "2")
        assert api["hits"][0]["name"] == "chelsea.png"
        api = c.post("/v1/describe", data={"photo": "chelsea.png", "k": 1}).json()
        assert api["hits"][0]["sentence"] == "a cat lying on a blanket"
        photo = c.get("/v1/indexes/samples/photos/chelsea.png", params={"size": 64})
        assert max(Image.open(io.BytesIO(photo.content)).size) == 64


@pytest.mark.slow
def test_batched_captions_equal_captions_one_at_a_time():
    from scenetalk.data.sample_photos import sample_photo_paths

    app = create_app(ServiceSettings(batch_wait_s=0.2, max_batch=8), load_in_background=False)
    service = app.state.service
    photos = [p.read_bytes() for p in sample_photo_paths()]

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            together = await asyncio.gather(*[c.post("/v1/caption", files={"image": ("p", b)}) for b in photos])
            alone = [await c.post("/v1/caption", files={"image": ("p", b)}) for b in photos]
            return together, alone

    before = service.batcher.batches
    together, alone = asyncio.run(go())
    assert [r.json() for r in together] == [r.json() for r in alone]
    assert service.batcher.batches - before == 1 + len(photos)  # one batch, then one call each


@pytest.mark.slow
def test_the_facade_answers_the_same_from_several_threads():
    """The model pool calls the façade from several threads at once: the answers must be the
    ones it gives one at a time (OpenCV's detector network once mixed two threads' inputs)."""
    from concurrent.futures import ThreadPoolExecutor

    from scenetalk.api import load
    from scenetalk.data.sample_photos import sample_photo_paths
    from scenetalk.results import to_data
    from scenetalk.vision.images import load_image

    m = load()
    photos = [load_image(p) for p in sample_photo_paths()] * 3
    alone = [to_data(m.align(p, "a man in a red shirt").segments) for p in photos]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda p: to_data(m.align(p, "a man in a red shirt").segments), photos))
    assert together == alone


# ---- fuzzing from the schema (benchmarks/fuzz_api.py runs the shipped models for longer) ----

def _fuzzed_app():
    return create_app(ServiceSettings(indexes={"photos": "p"}), models=FakeModels(), load_in_background=False)


schemathesis = pytest.importorskip("schemathesis")
fuzzed = schemathesis.openapi.from_asgi("/openapi.json", _fuzzed_app())


@fuzzed.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.filterwarnings("ignore")
def test_no_generated_request_gets_a_5xx_or_an_answer_outside_the_schema(case):
    """The checks of benchmarks/fuzz_api.py (a bad upload's 400 is right, so not
    positive_data_acceptance: the schema cannot say "an image")."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])


@pytest.mark.slow
def test_serve_with_two_workers_answers_from_both_processes(tmp_path):
    """``scenetalk serve --workers 2``: uvicorn's processes share the port, each loads the
    models from the settings the command passed on; interrupted, it stops."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    scenetalk = Path(sys.executable).parent / "scenetalk"
    server = subprocess.Popen([str(scenetalk), "serve", "--workers", "2", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        answers = [httpx.post(f"http://127.0.0.1:{port}/v1/caption", files={"image": ("p.png", png(64, 48))},
                              timeout=60) for _ in range(4)]
        assert all(a.status_code == 200 and a.json()["captions"][0]["text"] for a in answers)
    finally:
        server.send_signal(signal.SIGINT)
        out = server.communicate(timeout=60)[0].decode()
    assert out.count("Started server process") == 2, out[-2000:]
