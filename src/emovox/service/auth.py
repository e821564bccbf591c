"""Optional API keys (``--api-key-file``, one key per line) and the browser session.

With keys on, only ``/healthz`` (liveness) is open; every other route,
``/readyz``, ``/metrics``, the schema, the page and its assets included,
answers 401 without a valid key. A request proves it holds a key in one of
three ways:

- ``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` (API clients, probes);
- ``?api_key=KEY`` on the WebSocket ``/v1/stream`` only (clients that cannot
  set handshake headers);
- the ``emovox_session`` cookie (browsers). Opening ``/?api_key=KEY``, or
  posting the sign-in form a browser gets at a 401 on ``/``, answers
  ``303 See Other`` to ``/`` with an ``HttpOnly; SameSite=Strict`` cookie,
  so the key leaves the address bar at once. The cookie carries a token
  derived from the key (HMAC-SHA256), never the key itself: cookies are not
  isolated by port, and a token cannot be replayed as an API key. A request
  that authenticates by cookie must not come from a foreign ``Origin``
  (cross-site WebSocket hijacking and CSRF from a same-site page on another
  port).

Keys and tokens are compared in constant time; ``api_key`` query values are
redacted from the server's logs. Without a key file the service is open.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from emovox.errors import ConfigError

__all__ = [
    "ApiKeys",
    "load_api_keys",
    "PUBLIC_PATHS",
    "SESSION_COOKIE",
    "SESSION_MAX_AGE_S",
    "authorize_http",
    "is_public",
    "session_token",
    "RedactKeys",
    "redact_keys_in_logs",
]

#: Paths served without a key: the liveness probe only (it says nothing but "ok").
PUBLIC_PATHS = ("/healthz",)
#: Name and lifetime of the browser session cookie.
SESSION_COOKIE = "emovox_session"
SESSION_MAX_AGE_S = 7 * 24 * 3600
#: Largest sign-in form body read (bytes).
MAX_FORM_BYTES = 4096

_UNAUTHORIZED_MESSAGE = "a valid API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
_SIGN_IN_PAGE = Path(__file__).parent / "static" / "signin.html"


def load_api_keys(path: str | os.PathLike) -> ApiKeys:
    """Read keys from a file, one per line (blank lines and ``#`` comments skipped).

    Raises
    ------
    ConfigError
        The file is missing, unreadable, holds no key, or a key is shorter
        than 16 characters or contains whitespace.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"API key file {str(p)!r} does not exist: write one key per line") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read API key file {str(p)!r}: {error}") from None
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        key = line.strip()
        if not key or key.startswith("#"):
            continue
        if len(key) < 16 or any(c.isspace() for c in key):
            raise ConfigError(
                f"API key file {str(p)!r} line {number}: a key must be at least 16 characters without "
                "spaces (e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)"
            )
        keys.append(key)
    if not keys:
        raise ConfigError(f"API key file {str(p)!r} holds no key: write one key per line")
    return ApiKeys(keys)


def session_token(key: str) -> str:
    """The session cookie value for ``key``: ``HMAC-SHA256(key, "emovox-session-v1")`` in hex.

    Stable across restarts (a browser stays signed in); removing the key
    from the key file and restarting revokes its sessions.
    """
    return hmac.new(key.encode("utf-8"), b"emovox-session-v1", hashlib.sha256).hexdigest()


def _matches_any(given: str | None, accepted: list[bytes]) -> bool:
    if not given:
        return False
    value = given.encode("utf-8", "replace")
    ok = False
    for candidate in accepted:  # no early exit: time does not depend on which one matched
        ok |= hmac.compare_digest(value, candidate)
    return ok


class ApiKeys:
    """A set of accepted keys and the session tokens derived from them."""

    def __init__(self, keys) -> None:
        keys = list(keys)
        self._keys = [k.encode("utf-8") for k in keys]
        self._tokens = [session_token(k).encode("ascii") for k in keys]

    def __len__(self) -> int:
        return len(self._keys)

    def accepts(self, key: str | None) -> bool:
        """Whether ``key`` is one of the keys (constant time)."""
        return _matches_any(key, self._keys)

    def accepts_session(self, token: str | None) -> bool:
        """Whether ``token`` is the session token of one of the keys (constant time)."""
        return _matches_any(token, self._tokens)

    @staticmethod
    def key_of(headers, query_params=None) -> str | None:
        """The key a request or WebSocket handshake carries in a header (or ``?api_key=``), if any."""
        auth = headers.get("authorization")
        if auth:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
        key = headers.get("x-api-key")
        if key:
            return key.strip()
        if query_params is not None:
            return query_params.get("api_key") or None
        return None

    def authenticates(self, headers, query_params=None) -> bool:
        """Whether a request or WebSocket handshake holds a key or a same-origin session cookie.

        ``query_params`` (``?api_key=``) is consulted only when given: the
        WebSocket passes it, HTTP routes do not.
        """
        if self.accepts(self.key_of(headers, query_params)):
            return True
        return same_origin(headers) and self.accepts_session(session_cookie_of(headers))


def session_cookie_of(headers) -> str | None:
    """The ``emovox_session`` value of the ``Cookie`` header, if present."""
    for part in (headers.get("cookie") or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == SESSION_COOKIE:
            return value.strip().strip('"') or None
    return None


def same_origin(headers) -> bool:
    """False when an ``Origin`` header names another host than the request's ``Host`` (absent: True)."""
    origin = headers.get("origin")
    if origin is None:
        return True
    try:
        return urlsplit(origin).netloc.lower() == (headers.get("host") or "").lower()
    except ValueError:
        return False


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS


# ---------------------------------------------------------------------- HTTP
def _wants_html(request) -> bool:
    """A browser navigating (it sends ``Accept: text/html``), not an API client."""
    return request.method in ("GET", "HEAD", "POST") and "text/html" in request.headers.get("accept", "")


def _unauthorized(request, *, wrong_key: bool = False):
    """401: the sign-in page for a browser opening ``/``, the JSON error body otherwise."""
    from starlette.responses import HTMLResponse

    from emovox.service.errors import error_response

    headers = {"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"}
    if request.url.path == "/" and _wants_html(request):
        note = "That key is not valid." if wrong_key else ""
        page = _SIGN_IN_PAGE.read_text(encoding="utf-8").replace("{{note}}", note)
        return HTMLResponse(
            page,
            status_code=401,
            headers={
                # same-origin, not no-referrer: under no-referrer the form's POST carries "Origin: null"
                **headers,
                "Referrer-Policy": "same-origin",
                "X-Frame-Options": "DENY",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                "form-action 'self'; frame-ancestors 'none'",
            },
        )
    return error_response(401, "unauthorized", _UNAUTHORIZED_MESSAGE, headers)


def _signed_in(request, key: str):
    """303 to ``/`` setting the session cookie of ``key``."""
    from starlette.responses import RedirectResponse

    response = RedirectResponse(
        "/", status_code=303, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )
    response.set_cookie(
        SESSION_COOKIE,
        session_token(key),
        max_age=SESSION_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def _form_key(request) -> str | None:
    """``api_key`` of a small urlencoded sign-in form body (None when absent, too big or malformed)."""
    if not request.headers.get("content-type", "").lower().startswith("application/x-www-form-urlencoded"):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        values = parse_qs(body.decode("utf-8"), max_num_fields=8).get("api_key")
    except (UnicodeDecodeError, ValueError):
        return None
    return values[0].strip() if values else None


async def authorize_http(request, api_keys: ApiKeys):
    """The response refusing (or signing in) an HTTP request, or ``None`` to serve it.

    ``GET /?api_key=KEY`` and ``POST /`` with form field ``api_key`` set the
    session cookie and redirect to ``/``; a wrong key there is a 401.
    Everything else needs a header key or the session cookie.
    """
    path = request.url.path
    if is_public(path):
        return None
    if path == "/" and request.method in ("GET", "HEAD") and "api_key" in request.query_params:
        key = request.query_params.get("api_key", "").strip()
        return _signed_in(request, key) if api_keys.accepts(key) else _unauthorized(request, wrong_key=True)
    if path == "/" and request.method == "POST":
        key = await _form_key(request) if same_origin(request.headers) else None
        if key is not None and api_keys.accepts(key):  # accepts() refuses None anyway
            return _signed_in(request, key)
        return _unauthorized(request, wrong_key=True)
    if api_keys.authenticates(request.headers):
        return None
    return _unauthorized(request)


# ---------------------------------------------------------------------- logs
class RedactKeys(logging.Filter):
    """Hide ``api_key=...`` query values in log records (uvicorn logs WebSocket paths with their query)."""

    _PATTERN = re.compile(r"(api_key=)[^&\s\"']*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._PATTERN.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str) and "api_key=" in record.msg.lower():
            record.msg = self._PATTERN.sub(r"\1***", record.msg)
        return True


def redact_keys_in_logs(logger_names=("uvicorn.error", "uvicorn.access")) -> None:
    """Install :class:`RedactKeys` on uvicorn's loggers (call after uvicorn configured logging)."""
    for name in logger_names:
        logging.getLogger(name).addFilter(RedactKeys())
