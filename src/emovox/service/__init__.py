"""The emovox service: REST predictions, a WebSocket stream and a web page (``emovox serve``).

Needs the ``service`` extra (``pip install 'emovox[service]'``): FastAPI,
uvicorn, python-multipart and prometheus-client. Importing this package
imports none of them; :func:`create_app` does.
"""

from __future__ import annotations

__all__ = ["create_app", "Limits", "StreamDefaults"]


def __getattr__(name: str):
    if name == "create_app" or name == "StreamDefaults":
        from emovox.service import app

        return getattr(app, name)
    if name == "Limits":
        from emovox.service.limits import Limits

        return Limits
    raise AttributeError(name)
