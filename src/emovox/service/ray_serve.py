"""``emovox serve --ray``: the service as replicas of a Ray Serve deployment.

Each replica is the app of :func:`emovox.service.app.create_app`, served by
``serve.ingress``: the same routes, WebSocket protocol, web page, API-key
checks and application limits (upload size, audio length, concurrent
requests and streams, stream time-outs) as ``emovox serve``. What travels
to a replica is plain data, a :class:`ReplicaSpec` (the model's name or
folder, backend, threads, limits, stream defaults, the API key file's path);
each replica loads the model and reads the key file itself, so the model
folder and the key file must exist at the same path on every node (a
shipped model, ``default`` or ``cnn``, comes with each node's emovox).

Ray is started embedded (one process tree on this machine, sized to
``max(cores, replicas x threads)`` logical CPUs) or joined at ``address``
exactly as ``emovox batch`` does (:func:`emovox.batch.ray_job.start_ray`).
Requests reach the replicas through Ray Serve's HTTP proxy (uvicorn, one
per node) on ``host:port``, not through :mod:`emovox.service.http_guard`:
header size, header time-out and the connection cap do not apply there.

Overload: a replica admits ``max_concurrent_requests + max_streams +``
:data:`EXTRA_ONGOING` requests at once (``max_ongoing_requests``), so the
app's own limits answer first (503 ``busy`` + ``Retry-After``, close 1013).
Requests wait in a proxy until a replica is picked; at most as many as one
replica admits wait there (``max_queued_requests``: a burst on an idle
replica must fit), the rest get Ray's 503 with ``Retry-After`` (a plain-text
body, not the app's JSON one). No request or stream outlives
``stream_max_duration_s +`` :data:`REQUEST_MARGIN_S` (Ray's
``request_timeout_s``: 408).

Lifecycle: SIGTERM drains. The driver sets a :class:`DrainSignal` actor
that every replica waits on, so each replica at once answers ``/readyz``
and new work 503 ``draining`` and ends its streams with ``server_shutdown``
and close 1001; :data:`DRAIN_NOTICE_S` later the application is deleted,
and Ray Serve waits at most ``drain_s`` for what is still in flight before
it stops the replicas. SIGINT stops without draining. An embedded Ray is
shut down with its processes; on a joined cluster only this application is
deleted (a driver killed outright leaves it running there).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace

from emovox.errors import ConfigError

__all__ = [
    "ReplicaSpec",
    "Scaling",
    "EmovoxReplica",
    "DrainSignal",
    "serve_on_ray",
    "model_reference",
    "SERVE_HINT",
    "APP_NAME",
]

log = logging.getLogger("emovox.service")

SERVE_HINT = "emovox serve --ray needs Ray Serve: pip install 'emovox[serve-ray]'"
#: Name of the Ray Serve application (and of its one deployment).
APP_NAME = "emovox"
#: Requests a replica admits beyond ``max_concurrent_requests + max_streams``: probes, ``/v1/model``, the page.
EXTRA_ONGOING = 16
#: Ray's total request time-out is the longest stream plus this, s.
REQUEST_MARGIN_S = 60.0
#: Longest wait for the replicas to be running (scheduled, model loaded), s.
START_TIMEOUT_S = 300.0
#: How often a stopping replica checks whether its requests are done, s (Ray's default: 2).
DRAIN_POLL_S = 0.5
#: After SIGTERM, how long replicas answer 503 ``draining`` before the application is deleted, s.
DRAIN_NOTICE_S = 1.0
#: Ray namespace of the drain signal actor (replicas run in Serve's own namespace).
NAMESPACE = "emovox"


@dataclass(frozen=True)
class ReplicaSpec:
    """What a replica needs to build the app: plain data, sent to every replica.

    Attributes
    ----------
    model : str or None
        A shipped model's name (``"default"``, ``"cnn"``), an absolute artifact folder, or
        ``None`` for the bundled default model.
    backend : str
        ``"auto"``, ``"onnx"`` or ``"torch"``.
    threads : int
        CPU threads per model call; each replica reserves as many Ray CPUs.
    limits : dict
        The fields of :class:`emovox.service.limits.Limits`.
    stream : dict
        The fields of :class:`emovox.service.app.StreamDefaults`.
    api_key_file : str or None
        Absolute path of the key file (read by each replica), or ``None`` (open service).
    log_level : str
        Level of the replicas' and the proxy's logs (``"info"``, ``"warning"``, ...).
    drain_signal : str or None
        Name of the driver's :class:`DrainSignal` actor (namespace :data:`NAMESPACE`); ``None``: no drain.
    """

    model: str | None
    backend: str = "auto"
    threads: int = 1
    limits: dict = field(default_factory=dict)
    stream: dict = field(default_factory=dict)
    api_key_file: str | None = None
    log_level: str = "warning"
    drain_signal: str | None = None


@dataclass(frozen=True)
class Scaling:
    """A fixed number of replicas, or autoscaling bounds.

    Attributes
    ----------
    replicas : int or None
        Fixed replica count; ``None`` with ``min_replicas``/``max_replicas`` autoscales.
    min_replicas, max_replicas : int or None
        Autoscaling bounds (Ray Serve's ``target_ongoing_requests`` default, 2 per replica,
        decides within them; a stream counts as an ongoing request for its whole life).
    """

    replicas: int | None = 1
    min_replicas: int | None = None
    max_replicas: int | None = None

    def __post_init__(self) -> None:
        autoscaling = self.min_replicas is not None or self.max_replicas is not None
        if autoscaling and self.replicas is not None:
            raise ConfigError("give either --replicas N or --min-replicas/--max-replicas, not both")
        for flag, value in (
            ("--replicas", self.replicas),
            ("--min-replicas", self.min_replicas),
            ("--max-replicas", self.max_replicas),
        ):
            if value is not None and int(value) < 1:
                raise ConfigError(f"{flag} {value}: must be at least 1")
        if not autoscaling and self.replicas is None:
            raise ConfigError("give --replicas N or --min-replicas/--max-replicas")
        if self.min_replicas is not None and self.max_replicas is None:
            raise ConfigError(f"--min-replicas {self.min_replicas} needs --max-replicas (the most to scale to)")
        if autoscaling and self.low > self.high:
            raise ConfigError(f"--min-replicas {self.low} is more than --max-replicas {self.high}")

    @property
    def low(self) -> int:
        return int(self.replicas if self.replicas is not None else self.min_replicas or 1)

    @property
    def high(self) -> int:
        value = self.replicas if self.replicas is not None else self.max_replicas
        assert value is not None  # __post_init__: autoscaling without --replicas needs --max-replicas
        return int(value)

    def describe(self) -> str:
        if self.replicas is not None:
            return f"{self.replicas} Ray Serve replica{'s' if self.replicas != 1 else ''}"
        return f"{self.low}-{self.high} Ray Serve replicas (autoscaling)"

    def deployment_options(self) -> dict:
        if self.replicas is not None:
            return {"num_replicas": int(self.replicas)}
        return {
            "autoscaling_config": {"min_replicas": self.low, "max_replicas": self.high, "initial_replicas": self.low}
        }


class DrainSignal:
    """A Ray actor set once by the driver on SIGTERM; replicas wait on it (one pending call each, no polling)."""

    def __init__(self) -> None:
        import asyncio

        self._event = asyncio.Event()

    async def wait(self) -> bool:
        await self._event.wait()
        return True

    async def set(self) -> None:
        self._event.set()


class EmovoxReplica:
    """One replica: loads the model, then Ray Serve asks it for the app (``serve.ingress()``, late-bound).

    Parameters
    ----------
    spec : dict
        The fields of a :class:`ReplicaSpec`.
    """

    async def __init__(self, spec: dict) -> None:  # type: ignore[misc]  # Ray Serve awaits an async __init__
        import asyncio

        from emovox.inference import load_model

        self.spec = ReplicaSpec(**spec)
        self.state = None
        self._draining = False
        self.predictor = await asyncio.to_thread(
            load_model, self.spec.model, backend=self.spec.backend, num_threads=self.spec.threads
        )
        if self.spec.drain_signal:
            self._watch = asyncio.get_running_loop().create_task(self._wait_for_drain())

    def __serve_build_asgi_app__(self):
        from emovox.service.app import StreamDefaults, create_app
        from emovox.service.auth import load_api_keys
        from emovox.service.limits import Limits

        keys = load_api_keys(self.spec.api_key_file) if self.spec.api_key_file else None
        app = create_app(
            self.predictor, limits=Limits(**self.spec.limits), api_keys=keys, stream=StreamDefaults(**self.spec.stream)
        )
        self.state = app.state.emovox
        if self._draining:
            self.state.begin_drain()
        return app

    async def _wait_for_drain(self) -> None:
        """Start draining when the driver sets its :class:`DrainSignal` (runs on the app's event loop)."""
        import ray

        if self.spec.drain_signal is None:  # never started without a signal to wait for
            return
        try:
            signal_actor = ray.get_actor(self.spec.drain_signal, namespace=NAMESPACE)
            await signal_actor.wait.remote()
        except Exception:  # noqa: BLE001 - the driver is gone (killed outright): keep serving
            return
        self._draining = True
        if self.state is not None:
            log.warning("emovox: draining (not ready, new work refused); streams end with server_shutdown")
            self.state.begin_drain()


def model_reference(model: str | None) -> str | None:
    """How a model travels to replicas: ``None``, a shipped model's name, or an absolute folder."""
    from emovox.inference.predictor import pretrained_dir, resolve_model_dir

    if model is None:
        return None
    folder = resolve_model_dir(model).absolute()
    return folder.name if folder.parent == pretrained_dir().absolute() else str(folder)


# ---------------------------------------------------------------------- the driver
def _import_serve():
    try:
        from ray import serve
    except ImportError:
        raise ConfigError(SERVE_HINT) from None
    return serve


def _application(spec: ReplicaSpec, scaling: Scaling):
    """The bound Ray Serve application: one deployment of :class:`EmovoxReplica` behind ``serve.ingress``."""
    serve = _import_serve()
    limits = spec.limits
    ongoing = int(limits["max_concurrent_requests"]) + int(limits["max_streams"]) + EXTRA_ONGOING
    deployment = serve.deployment(
        serve.ingress()(EmovoxReplica),
        name=APP_NAME,
        ray_actor_options={"num_cpus": spec.threads},
        max_ongoing_requests=ongoing,
        max_queued_requests=ongoing,
        backpressure_config={"status_code": 503, "retry_after_s": int(limits["retry_after_s"])},
        graceful_shutdown_timeout_s=float(limits["drain_s"]),
        graceful_shutdown_wait_loop_s=DRAIN_POLL_S,
        max_constructor_retry_count=3,
        logging_config={"log_level": spec.log_level.upper()},
        **scaling.deployment_options(),
    )
    return deployment.bind(asdict(spec))


def _first_line(error: BaseException, *, last: bool = False) -> str:
    """One line of an error's message (the last one for Ray's remote tracebacks)."""
    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    return (lines[-1] if last else lines[0]) if lines else type(error).__name__


def _status_line() -> str:
    """Why the application is not running yet, in Ray's words (its first line)."""
    serve = _import_serve()
    try:
        app = serve.status().applications.get(APP_NAME)
    except Exception:  # noqa: BLE001 - the status is only for the message
        return ""
    if app is None:
        return ""
    messages = [d.message for d in app.deployments.values() if d.message] + [app.message]
    text = next((m for m in messages if m), str(app.status))
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _deploy(application, *, timeout_s: float, stop: threading.Event) -> None:
    """Deploy and wait until the replicas run, at most ``timeout_s`` (Ray would wait forever for CPUs it lacks).

    Raises
    ------
    ConfigError
        The replicas failed to start, or did not within ``timeout_s`` (Ray's reason quoted).
    KeyboardInterrupt
        ``stop`` was set meanwhile (a signal).
    """
    serve = _import_serve()
    try:
        serve.run_many(
            [serve.RunTarget(application, name=APP_NAME, route_prefix="/")], wait_for_applications_running=False
        )
    except Exception as error:  # noqa: BLE001 - Ray's errors vary: one line
        raise ConfigError(f"Ray Serve could not deploy emovox ({_first_line(error, last=True)})") from None
    deadline = time.monotonic() + timeout_s
    while True:
        app = serve.status().applications.get(APP_NAME)
        status = app.status if app is not None else "NOT_STARTED"
        if status == "RUNNING":
            return
        if status == "DEPLOY_FAILED":
            raise ConfigError(
                f"Ray Serve could not start the replicas ({_status_line() or status}): "
                "see the replica logs under /tmp/ray/session_latest/logs/serve/"
            )
        if stop.is_set():
            raise KeyboardInterrupt
        if time.monotonic() > deadline:
            raise ConfigError(
                f"the Ray Serve replicas did not start within {timeout_s:g} s "
                f"({_status_line() or status}): check the cluster's free CPUs"
            )
        stop.wait(0.25)


def _check_http_config(host: str, port: int) -> None:
    """On a cluster whose Serve already listens elsewhere, say so (Ray would ignore our host and port)."""
    try:
        from ray.serve.context import _get_global_client  # private: only for this message

        running = _get_global_client(raise_if_no_controller_running=False)
    except Exception:  # noqa: BLE001 - no Serve yet (or the API moved): nothing to compare
        return
    if running is None:
        return
    config = running.http_config
    if (config.host, int(config.port)) != (host, int(port)):
        raise ConfigError(
            f"Ray Serve already runs on this cluster with its HTTP proxy on {config.host}:{config.port}: "
            f"pass --host {config.host} --port {config.port}, or stop it first (serve shutdown)"
        )


def serve_on_ray(
    spec: ReplicaSpec, scaling: Scaling, *, host: str, port: int, address: str | None, on_ready=None
) -> int:
    """Serve the app on Ray Serve until SIGTERM (drain) or SIGINT (stop); returns the exit status.

    Parameters
    ----------
    spec : ReplicaSpec
        What every replica loads and serves (its ``drain_signal`` is set here).
    scaling : Scaling
        Replica count or autoscaling bounds.
    host, port
        Where Ray Serve's HTTP proxy listens (on every node of a cluster).
    address : str or None
        Ray cluster to join (``"auto"``, ``"ray://head:10001"``, ``"host:6379"``); ``None`` starts Ray embedded.
    on_ready : callable or None
        Called once the replicas answer (``emovox serve`` prints its line there).

    Returns
    -------
    int
        0 after a signal.
    """
    import uuid

    from emovox.batch.ray_job import start_ray, stop_ray
    from emovox.service.server import KEEP_ALIVE_S

    serve = _import_serve()
    stop = threading.Event()
    received: list[int] = []

    def on_signal(sig, frame) -> None:
        received.append(sig)
        stop.set()

    embedded = address is None
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, on_signal) for sig in signals}
    started = False
    try:
        try:
            start_ray(
                address=address,
                num_cpus=max(os.cpu_count() or 1, scaling.high * spec.threads),
                data=False,
                hint=SERVE_HINT,
            )
        except SystemExit:  # SIGTERM while ray.init ran: Ray's own handler for the driver exits
            on_signal(signal.SIGTERM, None)
        for sig in signals:  # ray.init replaced the SIGTERM handler with its own
            signal.signal(sig, on_signal)
        import ray

        logging.getLogger("ray.serve").setLevel(logging.WARNING)
        if stop.is_set():
            raise KeyboardInterrupt
        if not embedded:
            _check_http_config(host, port)
        spec = replace(spec, drain_signal=f"emovox-drain-{uuid.uuid4().hex[:12]}")
        drain = ray.remote(num_cpus=0)(DrainSignal).options(name=spec.drain_signal, namespace=NAMESPACE).remote()
        request_timeout_s = float(spec.limits["stream_max_duration_s"]) + REQUEST_MARGIN_S
        try:
            serve.start(
                http_options={
                    "host": host,
                    "port": port,
                    "keep_alive_timeout_s": KEEP_ALIVE_S,
                    "request_timeout_s": request_timeout_s,
                },
                logging_config={"log_level": spec.log_level.upper()},
            )
        except Exception as error:  # noqa: BLE001 - Ray's errors vary: one line
            raise ConfigError(
                f"Ray Serve could not start its HTTP proxy on {host}:{port} ({_first_line(error)})"
            ) from None
        started = True
        _deploy(_application(spec, scaling), timeout_s=START_TIMEOUT_S, stop=stop)
        if on_ready is not None:
            on_ready()
        while not stop.wait(0.5):
            pass
        if received[0] == signal.SIGTERM:
            log.warning(
                "emovox: SIGTERM: draining the replicas (in-flight work gets at most %g s)", spec.limits["drain_s"]
            )
            try:
                # ray types an actor's method as the plain function; on the handle it has .remote()
                ray.get(drain.set.remote(), timeout=10)  # type: ignore[union-attr]
                time.sleep(DRAIN_NOTICE_S)
            except Exception as error:  # noqa: BLE001 - Ray itself is going (a signal to the whole group)
                print(f"emovox: could not tell the replicas to drain ({_first_line(error)})", file=sys.stderr)
    except KeyboardInterrupt:  # a signal while Ray or the replicas were starting
        pass
    finally:
        interrupted = bool(received) and received[0] == signal.SIGINT
        if started and not (embedded and interrupted):  # Ctrl-C on embedded Ray: its shutdown stops everything
            try:  # (an embedded Ray's shutdown below stops Serve's own actors with it)
                serve.delete(APP_NAME)  # Ray waits for what is in flight, at most drain_s per replica
            except Exception as error:  # noqa: BLE001 - stopping anyway
                print(f"emovox: stopping Ray Serve: {_first_line(error)}", file=sys.stderr)
        if embedded:
            stop_ray()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
