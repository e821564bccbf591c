"""One error body everywhere: ``{"error": {"code": ..., "message": ...}}``.

:class:`ServiceError` is what routes raise; :func:`install_error_handlers`
maps it, emovox errors, FastAPI's own 404/405/422 and anything unexpected to
that body. Unexpected exceptions are logged server-side and answered with a
500 that carries no path or trace (it should never happen).
"""

from __future__ import annotations

import logging

from emovox.errors import AudioError, ConfigError, EmovoxError, ModelError

__all__ = ["ServiceError", "error_body", "error_response", "status_of", "install_error_handlers"]

log = logging.getLogger("emovox.service")

#: HTTP status -> default error code.
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ServiceError(Exception):
    """An error answered to the client as JSON.

    Parameters
    ----------
    status : int
        HTTP status.
    code : str
        Machine-readable code (``"payload_too_large"``, ``"busy"``, ...).
    message : str
        One line saying what was wrong and what to do.
    headers : dict, optional
        Extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(self, status: int, code: str, message: str, *, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def status_of(error: EmovoxError) -> tuple[int, str]:
    """HTTP status and code for an emovox error raised while serving a request."""
    if isinstance(error, AudioError):
        return 422, "invalid_audio"
    if isinstance(error, ConfigError):
        return 422, "invalid_parameter"
    if isinstance(error, ModelError):
        return 503, "model_unavailable"
    return 422, "invalid_input"


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    from starlette.responses import JSONResponse

    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _validation_message(errors) -> str:
    """One line from FastAPI's validation error list."""
    parts = []
    for err in list(errors)[:3]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is invalid"


def install_error_handlers(app) -> None:
    """Register the handlers that give every error the one body."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(ServiceError)
    async def _service(request, exc: ServiceError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(EmovoxError)
    async def _emovox(request, exc: EmovoxError):
        status, code = status_of(exc)
        return error_response(status, code, str(exc))

    @app.exception_handler(HTTPException)
    async def _http(request, exc: HTTPException):
        code = _CODES.get(exc.status_code, "error")
        if exc.status_code == 404:
            message = f"no such resource {request.url.path[:200]!r}: see /openapi.json for the API"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path[:200]!r}"
        else:
            message = str(exc.detail) if exc.detail else code.replace("_", " ")
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc: RequestValidationError):
        return error_response(422, "invalid_parameter", _validation_message(exc.errors()))

    @app.exception_handler(Exception)
    async def _unexpected(request, exc: Exception):
        log.exception("unexpected error serving %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "the server failed unexpectedly; the error was logged")
