"""Errors → HTTP, in one place. Every error the API returns is ``{"error": {"code", "message"}}``.

    AccessDenied            401 (missing/bad token, with WWW-Authenticate) or 403 (wrong role)
    RecordError             422 invalid-request (a value failed validation; names the field)
    RequestValidationError  422 invalid-request (FastAPI's own validation), with ``details``
    ImageRejected           415 not a supported image (empty, HTML, SVG, ...); 422 truncated or undecodable;
                            413 decompression bomb (the code is ImageRejected.reason)
    NoFaceFound             422 no-face
    NotFound                404 not-found
    PayloadTooLarge         413 too-large
    RateLimited             429 rate-limited, with Retry-After
    DependencyError         503 unavailable (Milvus, S3, broker); SchemaMismatch included
    ModelError              503 model-unavailable
    other ConsentryError    500 with its reason
    anything else           500 internal (logged with its traceback, never sent)
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...core.errors import (
    AccessDenied,
    ConsentryError,
    DependencyError,
    ImageRejected,
    ModelError,
    NoFaceFound,
    NotFound,
    RecordError,
)

log = logging.getLogger("consentry.api")


class PayloadTooLarge(ConsentryError):
    reason = "too-large"


class RateLimited(ConsentryError):
    reason = "rate-limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorOut(BaseModel):
    """The shape of every error response."""

    error: ErrorBody


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   details: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


#: ImageRejected reasons for bytes of a supported format that failed to decode; other reasons mean
#: the bytes are not a supported image at all (empty, HTML, SVG, unknown)
_UNDECODABLE = {"truncated", "undecodable", "too-small"}


def _image_status(exc: ImageRejected) -> int:
    if exc.reason == "decompression-bomb":
        return 413
    return 422 if exc.reason in _UNDECODABLE else 415


def translate(exc: Exception) -> JSONResponse:
    """The HTTP response for one of our exceptions."""
    if isinstance(exc, AccessDenied):
        if exc.status == 401:
            return error_response(401, "unauthorized", str(exc), {"WWW-Authenticate": "Bearer"})
        return error_response(403, "forbidden", str(exc))
    if isinstance(exc, RateLimited):
        return error_response(429, "rate-limited", str(exc), {"Retry-After": str(max(1, math.ceil(exc.retry_after)))})
    if isinstance(exc, PayloadTooLarge):
        return error_response(413, "too-large", str(exc))
    if isinstance(exc, RecordError):
        return error_response(422, "invalid-request", str(exc))
    if isinstance(exc, ImageRejected):
        return error_response(_image_status(exc), exc.reason, f"not a usable image: {exc}")
    if isinstance(exc, NoFaceFound):
        return error_response(422, "no-face", str(exc))
    if isinstance(exc, NotFound):
        return error_response(404, "not-found", str(exc))
    if isinstance(exc, DependencyError):
        log.warning("dependency failed: %s", exc)
        return error_response(503, "unavailable", f"a backing service is unavailable ({exc.reason}); "
                              "try again later", {"Retry-After": "5"})
    if isinstance(exc, ModelError):
        log.error("face model failed: %s", exc)
        return error_response(503, "model-unavailable", "the face model is unavailable")
    if isinstance(exc, ConsentryError):
        log.error("request failed: %s", exc)
        return error_response(500, exc.reason, str(exc))
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal", "internal server error")


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors()[:20]:
        out.append({"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e.get("type")})
    return out


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    async def consentry_error(request: Request, exc: Exception) -> JSONResponse:
        return translate(exc)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = _validation_details(exc)
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"]) or "request"
        return error_response(422, "invalid-request", f"{where}: {first['msg']}", details=details)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
                405: "method-not-allowed", 413: "too-large", 415: "unsupported-media-type",
                429: "rate-limited"}.get(exc.status_code, f"http-{exc.status_code}")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return translate(exc)

    app.add_exception_handler(ConsentryError, consentry_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
