"""The one error shape of the web API, ``{"error": CODE, "detail": ONE LINE}``, and its status.

Every answer that is not a result has this shape, whatever went wrong: a bad upload, a bad
parameter (FastAPI's own validation), an unknown index or route, a full queue, a timeout. The
library's ``ScenetalkError`` messages are the details, so the API and the CLI say the same.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException

from scenetalk.errors import ImageError, ScenetalkError


class ServiceError(HTTPException):
    """An answer other than a result: HTTP ``status_code``, a short ``code`` and a one-line
    ``detail``; ``headers`` such as Retry-After. A Starlette ``HTTPException``, so that one
    raised while FastAPI reads a request body (``uploads.BodyLimit``) reaches our handler."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(status, detail, headers)
        self.code = code


def from_library(exc: ScenetalkError) -> ServiceError:
    """The answer for a library error: an image too large is 413, another bad image 400 and
    any other bad input (an empty query, one of no known word, a bad setting) 400."""
    detail = " ".join(str(exc).split())
    if isinstance(exc, ImageError):
        if "too large" in detail:
            return ServiceError(413, "image_too_large", detail)
        return ServiceError(400, "bad_image", detail)
    return ServiceError(400, "bad_input", detail)


def body(code: str, detail: str) -> dict:
    return {"error": code, "detail": detail}


#: The codes an answer may carry, by status: the OpenAPI schema lists them.
CODES = {
    400: "bad_image, bad_input",
    404: "not_found, unknown_index, unknown_photo",
    405: "method_not_allowed",
    413: "upload_too_large, image_too_large",
    422: "bad_parameter",
    500: "internal",
    503: "busy (with Retry-After), not_ready",
    504: "timeout",
}
