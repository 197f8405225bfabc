"""The web service (``scenetalk serve``): the façade's capabilities over HTTP, and the web page.

    from scenetalk.service import ServiceSettings, create_app
    app = create_app(ServiceSettings(indexes={"photos": "photos.index"}))   # an ASGI app

Endpoints (OpenAPI at ``/docs``): ``POST /v1/caption``, ``/v1/regions``, ``/v1/align`` and
``/v1/describe`` take a photo uploaded as the multipart field ``image``; ``GET /v1/search``
ranks an index's photos for a sentence; ``GET /v1/indexes`` lists the indexes served, and
``/v1/indexes/{name}/photos[/{id}]`` their photos, by the name the index gives them, never by a
path; ``/healthz`` (alive) and ``/readyz`` (503 until the models are loaded). Each result is
the library's own dataclass in its one JSON form (``results.to_data``), the form the CLI's
``--json`` prints; every other answer is ``{"error": CODE, "detail": LINE}`` (``errors``).

Each endpoint calls one façade method (``api.Scenetalk``) on the model pool
(``scheduling.Scheduler``); captions go through the dynamic batcher. The models and indexes
are loaded once, in a background thread at start, and shared by every request.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from scenetalk.errors import ScenetalkError
from scenetalk.grounding.word_regions import ALIGN_BETA
from scenetalk.limits import MAX_BEAM, MAX_CAPTION_WORDS, MAX_RESULTS, MAX_SENTENCE_CHARS
from scenetalk.results import to_data
from scenetalk.service.errors import CODES, ServiceError, body, from_library
from scenetalk.service.scheduling import CaptionBatcher, Scheduler
from scenetalk.service.settings import MAX_PHOTO_SIDE, ServiceSettings
from scenetalk.service.uploads import BodyLimit, read_photo
from scenetalk.weights import CAPTION_LANGUAGES, installed_caption_languages

log = logging.getLogger("scenetalk.service")
#: the ``lang`` values the endpoints take (``weights.CAPTION_LANGUAGES``)
Language = Literal[tuple(CAPTION_LANGUAGES)]
STATIC = Path(__file__).parent / "static"


class ErrorBody(BaseModel):
    """Every answer that is not a result."""
    error: str
    detail: str


@dataclasses.dataclass
class IndexInfo:
    name: str
    photos: int              # photos in the index
    sentences: bool          # it stores sentences, so /v1/describe can rank them
    photo_files: bool        # it records its photos' folder, so /v1/indexes/{name}/photos/{id} serves them


@dataclasses.dataclass
class PhotoPage:
    index: str
    total: int
    offset: int
    photos: list[str]        # the photos' ids: their names in the index


def _errors(*statuses: int) -> dict:
    return {s: {"model": ErrorBody, "description": CODES[s]} for s in statuses}


COMMON = (422, 503, 504)


class Service:
    """The loaded models and indexes and the scheduler, shared by every request."""

    def __init__(self, settings: ServiceSettings, models=None, on_failure=None):
        self.settings = settings
        self.models = models
        self.on_failure = on_failure  # called with the one line when loading fails
        self.ready = threading.Event()
        self.failed: str | None = None
        self.scheduler = Scheduler(settings.concurrency, settings.queue, settings.request_timeout_s)
        self.batcher = CaptionBatcher(self._caption_many, self.scheduler, settings.batch_wait_s, settings.max_batch)
        self.indexes: list[str] = []  # the names of the indexes served, once they opened
        self._languages: dict = {}    # lang -> the façade captioning in it (``captioner_of``)
        self._languages_lock = threading.Lock()

    def _caption_many(self, images, beam_size: int, n_best: int, lang: str = "en"):
        return self.captioner_of(lang).caption(images, beam_size=beam_size, n_best=n_best)

    def captioner_of(self, lang: str):
        """The façade that captions in ``lang``: the served models for English (the served
        captioner), the shipped captioner of another language, loaded on first use and kept."""
        if lang == "en":
            return self.models
        with self._languages_lock:
            if lang not in self._languages:
                from scenetalk.api import load

                self._languages[lang] = load(lang=lang)
            return self._languages[lang]

    def load(self) -> None:
        """Load every model and index once, and run each model once on a small photo, so the
        first request costs what every other does."""
        from PIL import Image

        from scenetalk.api import load

        try:
            other_languages = []
            if self.models is None:
                self.models = load(self.settings.captioner, self.settings.alignment)
                other_languages = [lang for lang in installed_caption_languages() if lang != "en"]
            for name, folder in self.settings.indexes.items():
                self.models.open_index(folder)  # kept open by the façade; a damaged index fails here
                self.indexes.append(name)
            warm = Image.new("RGB", (64, 64), (128, 128, 128))
            self.models.caption([warm], beam_size=1)
            for lang in other_languages:  # the shipped captioners of the other languages
                self.captioner_of(lang).caption([warm], beam_size=1)
            self.models.regions(warm, top=1, beam_size=1)
            self.models.align(warm, "a photo")
            for folder in list(self.settings.indexes.values())[:1]:  # and the pretrained word vectors that
                self.models.search(folder, "a photo of giraffes", k=1, warn=False)  # place unseen query words
            self.ready.set()
            log.info("scenetalk serve: ready (%d indexes)", len(self.indexes))
        except ScenetalkError as exc:
            self.failed = " ".join(str(exc).split())
            log.error("scenetalk serve: cannot start: %s", self.failed)
        except Exception as exc:  # noqa: BLE001 - said on /readyz and in the log, never a silent hang
            self.failed = f"{type(exc).__name__}: {exc}"
            log.exception("scenetalk serve: loading failed")
        if self.failed and self.on_failure:
            self.on_failure(self.failed)

    def check_ready(self) -> None:
        if not self.ready.is_set():
            detail = f"the server could not load its models: {self.failed}" if self.failed else \
                "the models are still loading; try again in a few seconds"
            raise ServiceError(503, "not_ready", detail, headers={"Retry-After": "5"})

    def searcher(self, name: str | None):
        """The index served as ``name`` (None: the only one) and its ``Searcher``, the one the
        façade keeps open (opened again when the index was rebuilt)."""
        if name is None:
            if len(self.indexes) == 1:
                name = self.indexes[0]
            elif not self.indexes:
                raise ServiceError(404, "unknown_index", "no index is served (start the server with --index INDEX)")
            else:
                raise ServiceError(422, "bad_parameter", f"index: name one of {', '.join(sorted(self.indexes))}")
        if name not in self.indexes:
            known = ", ".join(sorted(self.indexes)) or "none"
            raise ServiceError(404, "unknown_index", f"no index named {name!r} is served (served: {known})")
        try:
            return name, self.models.open_index(self.settings.indexes[name])
        except ScenetalkError as exc:
            raise from_library(exc) from None

    async def _answer(self, work):
        """``work()``'s result, the request admitted and within the deadline; a library error
        is its answer (``errors.from_library``)."""
        self.check_ready()
        with self.scheduler.admitted():
            try:
                return await self.scheduler.within_deadline(work())
            except ScenetalkError as exc:
                raise from_library(exc) from None

    async def call(self, fn, *args, **kwargs):
        """``fn`` on the model pool (``_answer``)."""
        return await self._answer(lambda: self.scheduler.run(fn, *args, **kwargs))

    async def caption(self, photo, beam_size: int, n_best: int, lang: str = "en"):
        """A photo's captions through the dynamic batcher (``_answer``)."""
        return await self._answer(lambda: self.batcher.caption(photo, beam_size, n_best, lang))


async def uploaded_photo(service: Service, image: UploadFile):
    service.check_ready()  # before the upload is decoded
    return read_photo(await image.read(), image.filename or "", service.settings.max_upload_pixels)


def create_app(settings: ServiceSettings | None = None, models=None, load_in_background: bool = True,
               on_load_failure=None) -> FastAPI:
    """The ASGI app. ``models``: a ``scenetalk.load()`` object to serve (default: loaded from
    ``settings``); loading runs in a thread at start-up (``load_in_background``) or, when
    False, before this returns; ``on_load_failure(line)`` is called when it fails (the
    server then answers 503 ``not_ready`` with that line)."""
    from contextlib import asynccontextmanager

    settings = settings or ServiceSettings()
    service = Service(settings, models, on_load_failure)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if load_in_background and not service.ready.is_set():
            threading.Thread(target=service.load, name="scenetalk-load", daemon=True).start()
        yield
        service.scheduler.close()

    from fastapi_offline import FastAPIOffline

    # FastAPI's own /docs page loads Swagger UI from a CDN; this one serves it from its wheel
    app = FastAPIOffline(title="scenetalk", version=_version(), lifespan=lifespan,
                  description="Describe, search and ground photos with sentences. Every result is scenetalk's own "
                              "JSON form (the CLI's --json); every error is {\"error\": CODE, \"detail\": LINE}.")
    app.state.service = service
    if not load_in_background:
        service.load()
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    _add_error_handlers(app)

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["service"], responses=_errors(503))
    def readyz() -> dict:
        """Ready: the models and indexes are loaded (503 until then)."""
        service.check_ready()
        return {"status": "ready", "indexes": sorted(service.indexes)}

    @app.post("/v1/caption", tags=["describe"], responses=_errors(400, 413, *COMMON))
    async def caption(image: Annotated[UploadFile, File(description="the photo")],
                      beam_size: Annotated[int, Form(ge=1, le=MAX_BEAM)] = 7,
                      n_best: Annotated[int, Form(ge=1, le=MAX_BEAM)] = 1,
                      lang: Annotated[Language, Form(description="the captions' language")] = "en"):
        """The photo's ``n_best`` captions, best first, each with its log-probability and beam
        score (``CaptionedImage``; the CLI's ``caption --json``), in ``lang``."""
        from scenetalk.captioning.captioner import CaptionedImage

        if n_best > beam_size:
            raise ServiceError(422, "bad_parameter", f"n_best ({n_best}) must be at most beam_size ({beam_size})")
        photo = await uploaded_photo(service, image)
        captions = await service.caption(photo, beam_size, n_best, lang)
        return to_data(CaptionedImage(image.filename or "", captions))

    @app.post("/v1/regions", tags=["describe"], responses=_errors(400, 413, *COMMON))
    async def regions(image: Annotated[UploadFile, File(description="the photo")],
                      top: Annotated[int, Form(ge=1, le=19)] = 5,
                      beam_size: Annotated[int, Form(ge=1, le=MAX_BEAM)] = 7,
                      max_len: Annotated[int, Form(ge=1, le=MAX_CAPTION_WORDS)] = 16):
        """The photo's ``top`` detections, each with its box (pixels), class, detector score and
        a generated phrase (``RegionDescriptions``; ``regions --json``)."""
        photo = await uploaded_photo(service, image)
        result = await service.call(service.models.regions, photo, top=top, beam_size=beam_size, max_len=max_len)
        return to_data(dataclasses.replace(result, image=image.filename or None))

    @app.post("/v1/align", tags=["ground"], responses=_errors(400, 413, *COMMON))
    async def align(image: Annotated[UploadFile, File(description="the photo")],
                    sentence: Annotated[str, Form(min_length=1, max_length=MAX_SENTENCE_CHARS)],
                    beta: Annotated[float, Form(ge=0, le=1e6)] = ALIGN_BETA):
        """Which region each word of ``sentence`` describes: each word's best region, and the
        chain MRF's segments with smoothing ``beta`` (``WordAlignment``; ``align --json``)."""
        photo = await uploaded_photo(service, image)
        result = await service.call(service.models.align, photo, sentence, beta=beta)
        return to_data(dataclasses.replace(result, image=image.filename or None))

    @app.get("/v1/search", tags=["search"], responses=_errors(400, 404, *COMMON))
    async def search(q: Annotated[str, Query(min_length=1, max_length=MAX_SENTENCE_CHARS, description="a sentence")],
                     k: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 10,
                     index: Annotated[str | None, Query(description="an index's name (default: the one served)")]
                     = None,
                     lang: Annotated[Language | None, Query(description="q's language (default: detected, for an "
                                                                        "index whose model reads several)")] = None):
        """The ``k`` photos of the index that best match ``q`` (``SearchResult``; each hit's
        ``name`` is its id for ``/v1/indexes/{index}/photos/{id}``)."""
        service.check_ready()
        name, _ = service.searcher(index)
        result = await service.call(service.models.search, settings.indexes[name], q, k=k, warn=False, lang=lang)
        return to_data(result)

    @app.post("/v1/describe", tags=["search"], responses=_errors(400, 404, 413, *COMMON))
    async def describe(image: Annotated[UploadFile | None, File(description="a photo (or give photo)")] = None,
                       photo: Annotated[str | None, Form(description="a photo of the index, by id")] = None,
                       index: Annotated[str | None, Form()] = None,
                       k: Annotated[int, Form(ge=1, le=MAX_RESULTS)] = 5,
                       hub_weight: Annotated[float | None, Form(ge=0, le=100, description=(
                           "lower each match score by this × the sentence's fit to photos in general "
                           "(default: the value chosen on val; 0: not)"))] = None):
        """The ``k`` sentences of the index's collection that best match a photo, uploaded or
        one of the index's (``Description``; ``describe --json``)."""
        service.check_ready()
        name, searcher = service.searcher(index)
        if (image is None) == (photo is None):
            raise ServiceError(422, "bad_parameter", "give the photo as exactly one of image (an upload) "
                                                     "or photo (an id of the index)")
        if photo is not None:
            if searcher.row(photo) is None:
                raise ServiceError(404, "unknown_photo", f"index {name!r} has no photo {photo!r}")
            return to_data(await service.call(service.models.describe, settings.indexes[name], photo, k=k,
                                              warn=False, hub_weight=hub_weight))
        picture = await uploaded_photo(service, image)
        result = await service.call(service.models.describe, settings.indexes[name], picture, k=k, warn=False,
                                    hub_weight=hub_weight)
        return to_data(dataclasses.replace(result, image=image.filename or ""))

    @app.get("/v1/indexes", tags=["search"], responses=_errors(503))
    def indexes():
        """The indexes served, with how many photos each holds."""
        service.check_ready()
        return to_data([IndexInfo(n, len(s.names), bool(s.meta.get("sentences")), _photo_folder(s) is not None)
                        for n, s in (service.searcher(n) for n in sorted(service.indexes))])

    @app.get("/v1/indexes/{name}/photos", tags=["search"], responses=_errors(404, 422, 503))
    def photos(name: str, offset: Annotated[int, Query(ge=0)] = 0,
               limit: Annotated[int, Query(ge=1, le=1000)] = 60):
        """The ids of the index's photos, ``limit`` from ``offset``, in the index's order."""
        service.check_ready()
        name, searcher = service.searcher(name)
        return to_data(PhotoPage(name, len(searcher.names), offset, list(searcher.names[offset:offset + limit])))

    @app.get("/v1/indexes/{name}/photos/{photo:path}", tags=["search"], responses={
        200: {"content": {"image/jpeg": {}}, "description": "the photo, as JPEG"}, **_errors(404, 422, 503)},
        response_class=Response)
    def photo_file(name: str, photo: str, size: Annotated[int, Query(ge=16, le=MAX_PHOTO_SIDE)] = 512):
        """One photo of the index, by its id, as a JPEG of at most ``size`` pixels a side."""
        service.check_ready()
        name, searcher = service.searcher(name)
        if searcher.row(photo) is None:
            raise ServiceError(404, "unknown_photo", f"index {name!r} has no photo {photo!r}")
        folder = _photo_folder(searcher)
        if folder is None:
            raise ServiceError(404, "unknown_photo", f"index {name!r} does not record where its photos are")
        return Response(_thumbnail(folder, photo, size), media_type="image/jpeg",
                        headers={"Cache-Control": "max-age=3600"})

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def app_from_environment() -> FastAPI:
    """The app of ``scenetalk serve --workers N`` (N > 1): each worker process makes its own,
    from the settings the command put in ``SETTINGS_VARIABLE`` as JSON, loading the models
    before it takes a connection: the workers share one socket, so a worker still loading
    would otherwise answer some clients 503 while the others are served."""
    import json

    return create_app(ServiceSettings(**json.loads(os.environ[SETTINGS_VARIABLE])), load_in_background=False)


SETTINGS_VARIABLE = "SCENETALK_SERVE_SETTINGS"


def _photo_folder(searcher) -> str | None:
    folder = searcher.meta.get("folder")
    return folder if folder and os.path.isdir(folder) else None


@lru_cache(maxsize=512)
def _thumbnail(folder: str, photo: str, size: int) -> bytes:
    """The JPEG of a photo of an index (its id checked by the caller), read only from inside
    the index's folder: a name of a damaged or hand-edited index.json that climbs out of it
    (``..``, an absolute path) is refused. A symbolic link inside the folder is followed, as
    ``index build`` followed it: the photo is one its owner indexed."""
    from scenetalk.errors import ImageError
    from scenetalk.vision.images import load_image

    root = os.path.abspath(folder)
    path = os.path.normpath(os.path.join(root, photo))
    if os.path.isabs(photo) or os.path.commonpath([root, path]) != root:
        raise ServiceError(404, "unknown_photo", f"photo {photo!r} is outside its index's folder")
    try:
        im = load_image(path)
    except ImageError as exc:
        raise ServiceError(404, "unknown_photo", f"photo {photo!r} cannot be read ({exc})") from None
    im.thumbnail((size, size))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=88)
    return out.getvalue()


def _add_error_handlers(app: FastAPI) -> None:
    def answer(status: int, code: str, detail: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(body(code, detail), status_code=status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if isinstance(exc, ServiceError):
            return answer(exc.status_code, exc.code, exc.detail, exc.headers)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        return answer(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError):
        return answer(422, "bad_parameter", "; ".join(_validation_line(e) for e in exc.errors()[:3]))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        log.exception("scenetalk serve: %s %s failed", request.method, request.url.path)
        return answer(500, "internal", "internal error (the server's log has the details)")


def _validation_line(error: dict) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid"))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scenetalk")
    except PackageNotFoundError:
        return "0"
