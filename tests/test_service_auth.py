"""API keys on a real uvicorn server: only ``/healthz`` is open; headers, the browser cookie, refusals.

Every route of the app (read from the app itself, so a new route is covered
automatically), the static assets, the schema, an unknown path and the
WebSocket answer 401 JSON (the WebSocket: an ``unauthorized`` error frame and
close 1008) without a valid key. Header keys work for API clients; opening
``/?api_key=KEY`` or posting the sign-in form sets an HttpOnly,
SameSite=Strict session cookie (a token derived from the key, never the key)
and redirects to ``/``; the page, its assets, fetches and the WebSocket then
work by that cookie, but not from a foreign ``Origin``.
"""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
websockets = pytest.importorskip("websockets")

KEY = "k3y-for-tests-0123456789"
OTHER_KEY = "another-key-abcdefghijkl"
WRONG_KEY = "wrong-key-0000000000000"


@pytest.fixture(scope="module")
def predictor():
    from emovox.inference import load_model

    return load_model(num_threads=1)


@pytest.fixture(scope="module")
def app(predictor):
    from emovox.service.app import create_app
    from emovox.service.auth import ApiKeys

    return create_app(predictor, api_keys=ApiKeys([KEY, OTHER_KEY]))


@pytest.fixture(scope="module")
def url(app):
    from emovox.service.testing import serve_in_thread

    with serve_in_thread(app) as base:
        yield base


@pytest.fixture(scope="module")
def token():
    from emovox.service.auth import session_token

    return session_token(KEY)


def _wav(seconds: float = 0.5) -> bytes:
    """A 220 Hz tone: a real upload the service answers quickly (label ``no_speech``)."""
    import soundfile as sf

    buf = io.BytesIO()
    y = 0.1 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * 16000)) / 16000)
    sf.write(buf, y.astype(np.float32), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _is_unauthorized_json(r) -> bool:
    return (
        r.status_code == 401
        and r.headers["content-type"].startswith("application/json")
        and r.json()["error"]["code"] == "unauthorized"
        and r.headers["www-authenticate"] == "Bearer"
    )


def _http_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every HTTP route the app declares, plus assets, the schema and an unknown path."""
    from starlette.routing import Mount, Route

    found = set()
    for route in app.routes:
        if isinstance(route, Route) and route.methods:
            found |= {(m, route.path) for m in route.methods}
        elif isinstance(route, Mount):
            found |= {
                ("GET", route.path + "/app.js"),
                ("GET", route.path + "/style.css"),
                ("GET", route.path + "/signin.html"),
                ("GET", route.path + "/no-such-file"),
            }
    found |= {("GET", "/favicon.ico"), ("GET", "/no/such/route"), ("POST", "/"), ("DELETE", "/v1/model")}
    return sorted(found)


async def _ws(url: str, query: str = "", headers: dict | None = None) -> tuple[dict, int | None]:
    """The first server message and the close code of a stream that starts and ends at once."""
    ws_url = url.replace("http://", "ws://") + "/v1/stream" + query
    async with websockets.connect(ws_url, additional_headers=headers or {}) as ws:
        try:  # an unauthorized client is refused before its start message
            await ws.send(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
        except websockets.ConnectionClosed:
            pass
        msg = json.loads(await ws.recv())
        try:
            if msg.get("type") == "ready":
                await ws.send(json.dumps({"type": "end"}))
            async for _ in ws:
                pass
        except websockets.ConnectionClosed:
            pass
        return msg, ws.close_code


def test_session_token_is_derived_not_the_key():
    from emovox.service.auth import ApiKeys, session_token

    keys = ApiKeys([KEY])
    assert session_token(KEY) == session_token(KEY) != session_token(OTHER_KEY)
    assert KEY not in session_token(KEY) and len(session_token(KEY)) == 64
    assert keys.accepts_session(session_token(KEY)) and not keys.accepts_session(KEY)
    assert not keys.accepts(session_token(KEY)) and not keys.accepts(None) and not keys.accepts("")


def test_every_route_but_healthz_refuses_without_a_key(app, url):
    routes = _http_routes(app)
    assert ("GET", "/readyz") in routes and ("POST", "/v1/predict") in routes and ("GET", "/metrics") in routes
    with httpx.Client(base_url=url) as client:
        for method, path in routes:
            r = client.request(method, path)
            if path == "/healthz":
                assert r.status_code == 200, (method, path)
            elif method == "HEAD":
                assert r.status_code == 401, (method, path)
            else:
                assert _is_unauthorized_json(r), (method, path, r.status_code, r.text[:200])
        # a key in the query string is the sign-in link of "/" only, not an API credential
        assert _is_unauthorized_json(client.get(f"/v1/model?api_key={KEY}"))
        assert _is_unauthorized_json(client.get("/v1/model", headers={"Authorization": f"Bearer {WRONG_KEY}"}))
        assert _is_unauthorized_json(client.get("/readyz", headers={"X-API-Key": WRONG_KEY}))
    msg, code = asyncio.run(_ws(url))
    assert msg["error"]["code"] == "unauthorized" and code == 1008
    msg, code = asyncio.run(_ws(url, f"?api_key={WRONG_KEY}"))
    assert msg["error"]["code"] == "unauthorized" and code == 1008


def test_header_keys_open_every_route(url, predictor):
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": OTHER_KEY}):
        with httpx.Client(base_url=url, headers=headers) as client:
            for path in ("/readyz", "/metrics", "/openapi.json", "/", "/static/app.js", "/v1/model"):
                assert client.get(path).status_code == 200, path
            assert client.get("/v1/model").json()["labels"] == list(predictor.labels)
            r = client.post("/v1/predict", content=_wav())
            assert r.status_code == 200 and r.json()["label"] == "no_speech"
        msg, code = asyncio.run(_ws(url, headers=headers))
        assert msg["type"] == "ready" and code == 1000
    msg, _ = asyncio.run(_ws(url, f"?api_key={KEY}"))  # for clients that cannot set handshake headers
    assert msg["type"] == "ready"


def test_sign_in_link_sets_an_httponly_cookie_and_redirects(url, token):
    r = httpx.get(url + f"/?api_key={KEY}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
    assert cookie.startswith(f"emovox_session={token};")
    assert {"httponly", "path", "max-age"} <= attrs and "samesite=strict" in cookie.lower()
    assert "secure" not in attrs  # plain http here; set over https
    assert all(KEY not in v for v in r.headers.values()) and KEY not in r.text
    assert r.headers["cache-control"] == "no-store"


def test_the_cookie_opens_the_page_assets_fetches_and_stream(url, token):
    cookie = {"Cookie": f"emovox_session={token}"}
    with httpx.Client(base_url=url, headers=cookie) as client:
        page = client.get("/")
        assert page.status_code == 200 and '<script src="/static/app.js">' in page.text
        assert page.headers["cache-control"] == "private, no-cache"  # no cached copy for the signed-out
        etag = client.get("/static/app.js").headers["etag"]
        assert client.get("/static/app.js", headers={"If-None-Match": etag}).status_code == 304
        assert _is_unauthorized_json(httpx.get(url + "/static/app.js", headers={"If-None-Match": etag}))
        for path in ("/static/app.js", "/static/style.css", "/static/pcm-worklet.js", "/v1/model", "/readyz"):
            assert client.get(path).status_code == 200, path
        r = client.post("/v1/predict", content=_wav(), headers={"Origin": url})
        assert r.status_code == 200 and r.json()["label"]
        # a page on another origin (e.g. another port of the same host) cannot use the cookie
        assert _is_unauthorized_json(
            client.post("/v1/predict", content=_wav(), headers={"Origin": "http://127.0.0.1:1"})
        )
    msg, code = asyncio.run(_ws(url, headers={**cookie, "Origin": url}))
    assert msg["type"] == "ready" and code == 1000
    msg, code = asyncio.run(_ws(url, headers={**cookie, "Origin": "http://evil.example"}))
    assert msg["error"]["code"] == "unauthorized" and code == 1008


def test_wrong_keys_and_cookies_are_refused(url, token):
    with httpx.Client(base_url=url, follow_redirects=False) as client:
        r = client.get(f"/?api_key={WRONG_KEY}")
        assert _is_unauthorized_json(r) and "set-cookie" not in r.headers
        assert _is_unauthorized_json(client.get("/?api_key="))
        for value in ("0" * 64, KEY, token[:-1], ""):  # the key itself is not a session token
            r = client.get("/v1/model", headers={"Cookie": f"emovox_session={value}"})
            assert _is_unauthorized_json(r), value
        assert _is_unauthorized_json(client.get("/v1/model", headers={"Authorization": f"Bearer {token}"}))
    msg, code = asyncio.run(_ws(url, headers={"Cookie": f"emovox_session={'0' * 64}"}))
    assert msg["error"]["code"] == "unauthorized" and code == 1008


def test_a_browser_gets_a_sign_in_form_that_leaks_nothing(url, predictor, token):
    from emovox import __version__

    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    with httpx.Client(base_url=url, headers=html, follow_redirects=False) as client:
        r = client.get("/")
        assert r.status_code == 401 and r.headers["content-type"].startswith("text/html")
        assert '<form method="post" action="/"' in r.text and 'name="api_key"' in r.text
        assert "<script" not in r.text and "default-src 'none'" in r.headers["content-security-policy"]
        leaks = [__version__, "/v1/", "/static/", "openapi", predictor.info.config.get("architecture", {}).get("name")]
        leaks += list(predictor.labels)
        assert not [s for s in leaks if s and s in r.text]
        assert "not valid" in client.get(f"/?api_key={WRONG_KEY}").text
        assert client.get("/v1/model").headers["content-type"].startswith("application/json")  # only "/" is a page

        r = client.post("/", data={"api_key": KEY}, headers={"Origin": url})
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert r.headers["set-cookie"].startswith(f"emovox_session={token};")
        r = client.post("/", data={"api_key": WRONG_KEY}, headers={"Origin": url})
        assert r.status_code == 401 and "not valid" in r.text and "set-cookie" not in r.headers
        r = client.post("/", data={"api_key": KEY}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 401 and "set-cookie" not in r.headers  # no sign-in from another site
        r = client.post("/", data={"api_key": KEY, "pad": "x" * 5000}, headers={"Origin": url})
        assert r.status_code == 401  # the form is small; a big body is not read
