"""Prometheus metrics of one app (its own registry, so several apps never clash).

- ``emovox_http_requests_total{method, route, status}``
- ``emovox_http_request_duration_seconds{method, route}`` (histogram)
- ``emovox_streams_active`` (gauge), ``emovox_streams_total{outcome}``,
  ``emovox_stream_events_total``, ``emovox_stream_audio_seconds_total``
- ``emovox_predictions_total{outcome}`` (per file: ok / error)

``route`` is the route template (``/v1/predict``), never the raw path, so
scanners cannot blow up the label cardinality (unmatched paths count as
``<unmatched>``).
"""

from __future__ import annotations

import time

__all__ = ["Metrics", "MetricsMiddleware"]

#: Latency buckets, seconds (a prediction takes 10 ms to a few seconds).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The collectors of one app, in their own ``CollectorRegistry``."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "emovox_http_requests", "HTTP requests by route and status", ("method", "route", "status"), registry=r
        )
        self.latency = Histogram(
            "emovox_http_request_duration_seconds",
            "HTTP request latency",
            ("method", "route"),
            buckets=_BUCKETS,
            registry=r,
        )
        self.streams_active = Gauge("emovox_streams_active", "WebSocket streams open now", registry=r)
        self.streams = Counter("emovox_streams", "WebSocket streams by outcome", ("outcome",), registry=r)
        self.stream_events = Counter("emovox_stream_events", "Events sent on streams", registry=r)
        self.stream_audio = Counter("emovox_stream_audio_seconds", "Audio received on streams, s", registry=r)
        self.predictions = Counter("emovox_predictions", "Files predicted, by outcome", ("outcome",), registry=r)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """ASGI middleware timing every HTTP request by route template and status."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            method = scope.get("method", "GET")
            if method not in ("GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"):
                method = "OTHER"
            self.metrics.requests.labels(method, template, str(status["code"])).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
