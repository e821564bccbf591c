"""``emovox serve``: the REST/WebSocket service and the web page, on an embedded uvicorn.

Nothing else has to run: ``emovox serve`` loads the model, binds the port
(a port in use is one clear line, exit 2) and serves ``http://HOST:PORT/``
until Ctrl-C (SIGTERM drains first: see :mod:`emovox.service.server`).
``--workers N`` runs N processes on the port (:mod:`emovox.service.workers`);
``--ray`` runs the same app as Ray Serve replicas (:mod:`emovox.service.ray_serve`).
See ``docs/service.md``.
"""

from __future__ import annotations

import argparse
import socket
import sys

from emovox.cli import add_model_choice
from emovox.errors import ConfigError

_HINT = "pip install 'emovox[service]'"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the REST/WebSocket API and the web page",
        description="Serve predictions over HTTP (POST /v1/predict, /v1/predict/batch), live streams "
        "over a WebSocket (/v1/stream) and a web page at /, on an embedded uvicorn.",
        epilog="examples:\n  emovox serve                      # http://127.0.0.1:8000/\n"
        "  emovox serve --host 0.0.0.0 --port 9000 --api-key-file keys.txt\n"
        "  emovox serve --ray --replicas 2    # two Ray Serve replicas on embedded Ray\n"
        "  emovox serve --ray --min-replicas 1 --max-replicas 8 --address auto --host 0.0.0.0\n"
        "  curl -F file=@clip.wav http://127.0.0.1:8000/v1/predict",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    add_model_choice(p)
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto", help="inference engine")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="CPU threads per model call (default: 1; requests and streams run in parallel)",
    )
    p.add_argument(
        "--api-key-file",
        metavar="FILE",
        help="require an API key (one per line in FILE) on every route but /healthz: /readyz, "
        "/metrics, the page and the stream too (see docs/service.md)",
    )
    lim = p.add_argument_group("limits")
    lim.add_argument(
        "--max-upload-mb", type=float, metavar="MB", default=25.0, help="largest request body, MiB (default: 25)"
    )
    lim.add_argument(
        "--max-audio-s", type=float, metavar="S", default=600.0, help="longest recording per file, s (default: 600)"
    )
    lim.add_argument(
        "--max-batch-files", type=int, metavar="N", default=16, help="files per batch request (default: 16)"
    )
    lim.add_argument(
        "--max-concurrent",
        type=int,
        metavar="N",
        default=32,
        help="prediction requests at once; more get 503 + Retry-After (default: 32)",
    )
    lim.add_argument("--max-streams", type=int, metavar="N", default=32, help="WebSocket streams at once (default: 32)")
    lim.add_argument(
        "--stream-idle-s", type=float, metavar="S", default=30.0, help="close a silent stream after S s (default: 30)"
    )
    lim.add_argument(
        "--stream-max-s", type=float, metavar="S", default=3600.0, help="longest stream, s (default: 3600)"
    )
    lim.add_argument(
        "--max-header-kb",
        type=float,
        metavar="KB",
        default=32.0,
        help="largest request line + headers, KiB; more get 431 (default: 32)",
    )
    lim.add_argument(
        "--header-timeout-s",
        type=float,
        metavar="S",
        default=10.0,
        help="time a request may take to send its headers; more get 408 (default: 10)",
    )
    lim.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        default=1000,
        help="open connections at most; over it the longest-idle one is closed, or the new one "
        "gets 503 (default: 1000, lowered to what the descriptor limit allows)",
    )
    lim.add_argument(
        "--drain-s",
        type=float,
        metavar="S",
        default=20.0,
        help="on SIGTERM, time in-flight requests and streams get to finish (default: 20)",
    )
    st = p.add_argument_group("streams")
    st.add_argument("--window-s", type=float, metavar="S", default=3.0, help="default stream window, s (default: 3)")
    st.add_argument("--hop-s", type=float, metavar="S", default=0.5, help="default stream hop, s (default: 0.5)")
    st.add_argument(
        "--vad", choices=("auto", "silero", "webrtc", "off"), default="auto", help="voice activity detector of streams"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes sharing the port, each with its own model and limits (default: 1)",
    )
    ray = p.add_argument_group("Ray Serve (see 'On a Ray cluster' in docs/service.md)")
    ray.add_argument(
        "--ray",
        action="store_true",
        help="serve the same app as Ray Serve replicas behind Ray's HTTP proxy "
        "(pip install 'emovox[serve-ray]'); the header and connection limits do not apply",
    )
    ray.add_argument(
        "--replicas", type=int, metavar="N", help="replicas, each with its own model and limits (default: 1)"
    )
    ray.add_argument(
        "--min-replicas", type=int, metavar="N", help="autoscale between --min-replicas and --max-replicas"
    )
    ray.add_argument(
        "--max-replicas", type=int, metavar="N", help="autoscale between --min-replicas and --max-replicas"
    )
    ray.add_argument(
        "--address",
        metavar="ADDR",
        help="join this Ray cluster ('auto', 'ray://head:10001'; default: start Ray embedded)",
    )
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info")
    p.set_defaults(func=handle)


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, or one clear error (port in use, bad address)."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: must lie in [0, 65535]")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise ConfigError(f"--host {host!r} is not an address of this machine ({error.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        if error.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
            raise ConfigError(f"port {port} on {host} is already in use: pick another with --port") from None
        raise ConfigError(f"cannot listen on {host}:{port} ({error.strerror}): check --host and --port") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _app(args: argparse.Namespace):
    """``(app, limits, predictor, keys)`` from the options (loads the model; one line per bad option)."""
    try:
        import uvicorn  # noqa: F401 -- only to check it is installed

        from emovox.service.app import StreamDefaults, create_app
    except ImportError as error:
        raise ConfigError(f"emovox serve needs {error.name or 'the service extra'}: {_HINT}") from None
    from emovox.inference import load_model
    from emovox.inference.streaming import StreamEngine
    from emovox.service.auth import load_api_keys
    from emovox.service.limits import Limits

    limits = Limits(
        max_upload_mb=args.max_upload_mb,
        max_audio_s=args.max_audio_s,
        max_batch_files=args.max_batch_files,
        max_concurrent_requests=args.max_concurrent,
        max_streams=args.max_streams,
        stream_idle_timeout_s=args.stream_idle_s,
        stream_max_duration_s=args.stream_max_s,
        max_header_kb=args.max_header_kb,
        header_timeout_s=args.header_timeout_s,
        max_connections=args.max_connections,
        drain_s=args.drain_s,
    )
    keys = load_api_keys(args.api_key_file) if args.api_key_file else None
    predictor = load_model(args.model, backend=args.backend, num_threads=args.threads)
    stream = StreamDefaults(window_s=args.window_s, hop_s=args.hop_s, vad=args.vad)
    StreamEngine(predictor, window_s=stream.window_s, hop_s=stream.hop_s, vad=stream.vad)  # validates
    return create_app(predictor, limits=limits, api_keys=keys, stream=stream), limits, predictor, keys


def _serve(app, limits, sock, log_level: str) -> None:
    """Run the server on the listening ``sock`` until stopped (Ctrl-C stops, SIGTERM drains)."""
    from emovox.service.auth import redact_keys_in_logs
    from emovox.service.server import EmovoxServer, server_config

    config = server_config(app, limits=limits, log_level=log_level)
    redact_keys_in_logs()  # uvicorn logs WebSocket paths with their ?api_key=
    server = EmovoxServer(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down on: the normal way to stop
        pass


def serve_worker(args: argparse.Namespace, sock: socket.socket) -> None:
    """One worker process of ``--workers N``: its own model and server on the shared socket."""
    import os
    import signal
    import threading
    import time

    os.setpgid(0, 0)  # Ctrl-C reaches the supervisor only, which stops the workers once
    supervisor = os.getppid()

    def orphaned() -> None:  # the supervisor was killed (SIGKILL): drain and exit rather than linger
        while os.getppid() == supervisor:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=orphaned, name="emovox-supervisor-watch", daemon=True).start()
    app, limits, _, _ = _app(args)
    _serve(app, limits, sock, args.log_level)


#: Options of the connection layer (``http_guard``) that Ray Serve's own HTTP proxy replaces.
_GUARD_OPTIONS = (
    ("--max-header-kb", "max_header_kb"),
    ("--header-timeout-s", "header_timeout_s"),
    ("--max-connections", "max_connections"),
)


def _check_ray_options(args: argparse.Namespace):
    """The replica scaling of ``--ray`` (``None`` without it); one line for options that do not combine."""
    from emovox.service.limits import Limits

    ray_only = [
        flag
        for flag, value in (
            ("--replicas", args.replicas),
            ("--min-replicas", args.min_replicas),
            ("--max-replicas", args.max_replicas),
            ("--address", args.address),
        )
        if value is not None
    ]
    if not args.ray:
        if ray_only:
            raise ConfigError(f"{ray_only[0]} needs --ray (Ray Serve replicas); without it use --workers N")
        return None
    if args.workers != 1:
        raise ConfigError(
            f"--ray and --workers {args.workers} do not combine: Ray Serve runs the processes, use --replicas N"
        )
    for flag, name in _GUARD_OPTIONS:
        if getattr(args, name) != getattr(Limits, name):
            raise ConfigError(
                f"{flag} does not apply with --ray: Ray Serve's own HTTP proxy reads the requests "
                "(put a reverse proxy such as deploy/nginx in front to bound headers and connections)"
            )
    if args.address is not None and args.port == 0:
        raise ConfigError("--port 0 needs embedded Ray: on a cluster (--address) give the port the proxies listen on")
    from emovox.service.ray_serve import Scaling

    if args.replicas is None and args.min_replicas is None and args.max_replicas is None:
        return Scaling(replicas=1)
    return Scaling(replicas=args.replicas, min_replicas=args.min_replicas, max_replicas=args.max_replicas)


def _serve_ray(args: argparse.Namespace, scaling, limits, served: str) -> int:
    """``--ray``: the app as Ray Serve replicas until SIGTERM (drain) or SIGINT (stop)."""
    import os

    from emovox.service.ray_serve import ReplicaSpec, model_reference, serve_on_ray

    port = args.port
    if args.address is None:  # the proxy runs on this machine: a port in use is one line, as without Ray
        sock = _bind(args.host, args.port)
        port = sock.getsockname()[1]
        sock.close()
    spec = ReplicaSpec(
        model=model_reference(args.model),
        backend=args.backend,
        threads=args.threads,
        limits=limits.to_dict(),
        stream={"window_s": args.window_s, "hop_s": args.hop_s, "vad": args.vad},
        api_key_file=os.path.abspath(args.api_key_file) if args.api_key_file else None,
        log_level=args.log_level,
    )
    where = f"Ray cluster at {args.address}" if args.address else "embedded Ray"
    line = _serving_line(args.host, port, f"{served}, {scaling.describe()}, {where}")

    def ready() -> None:
        print(line, file=sys.stderr, flush=True)

    status = serve_on_ray(spec, scaling, host=args.host, port=port, address=args.address, on_ready=ready)
    print("emovox: server stopped", file=sys.stderr)
    return status


def _served(args: argparse.Namespace, predictor, keys) -> str:
    """What is served, for the start-up line: model, backend, whether keys are required."""
    return (
        f"model {predictor.info.config.get('architecture', {}).get('name', '?')}, "
        f"backend {getattr(predictor.backend, 'name', args.backend)}{', API keys required' if keys else ''}"
    )


def _serving_line(host: str, port: int, what: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"emovox: serving on http://{shown}:{port}/ ({what}); Ctrl-C stops, SIGTERM drains"


def handle(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: must be at least 1")
    if args.fast:  # one place: the in-process app, the --workers processes and the Ray replicas
        from emovox.inference.predictor import FAST_MODEL

        args.model = FAST_MODEL
    scaling = _check_ray_options(args)
    app, limits, predictor, keys = _app(args)  # every option checked before binding (and in the parent)
    served = _served(args, predictor, keys)
    if scaling is not None:
        del app, predictor  # each replica loads its own
        return _serve_ray(args, scaling, limits, served)
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    workers = f", {args.workers} worker processes" if args.workers > 1 else ""
    print(_serving_line(host, port, served + workers), file=sys.stderr, flush=True)
    try:
        if args.workers > 1:
            from emovox.service.workers import run_workers

            del app, predictor  # each worker loads its own
            return run_workers(serve_worker, args, sock, n=args.workers, drain_s=limits.drain_s)
        _serve(app, limits, sock, args.log_level)
    finally:
        sock.close()
    print("emovox: server stopped", file=sys.stderr)
    return 0
