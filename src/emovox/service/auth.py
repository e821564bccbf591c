"""Optional API keys: ``--api-key-file`` with one key per line.

A request carries its key as ``Authorization: Bearer KEY`` or ``X-API-Key:
KEY``; a WebSocket (whose browser API cannot set headers) may also pass
``?api_key=KEY``. Keys are compared in constant time; ``api_key`` query
values are redacted from the server's logs. Without a key file the service
is open.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from pathlib import Path

from emovox.errors import ConfigError

__all__ = ["ApiKeys", "load_api_keys", "PUBLIC_PATHS", "RedactKeys", "redact_keys_in_logs"]

#: Paths served without a key: liveness/readiness probes, and the web page
#: with its assets (they hold no data; the page asks for a key itself).
PUBLIC_PATHS = ("/healthz", "/readyz", "/", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)


def load_api_keys(path: str | os.PathLike) -> "ApiKeys":
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


class ApiKeys:
    """A set of accepted keys."""

    def __init__(self, keys) -> None:
        self._keys = [k.encode("utf-8") for k in keys]

    def __len__(self) -> int:
        return len(self._keys)

    def accepts(self, key: str | None) -> bool:
        if not key:
            return False
        given = key.encode("utf-8", "replace")
        ok = False
        for k in self._keys:  # no early exit: time does not depend on which key matched
            ok |= hmac.compare_digest(given, k)
        return ok

    @staticmethod
    def key_of(headers, query_params=None) -> str | None:
        """The key a request or WebSocket handshake carries, if any."""
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


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


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
