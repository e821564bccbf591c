"""``emovox serve``: the REST/WebSocket service and the web page, on an embedded uvicorn.

Nothing else has to run: ``emovox serve`` loads the model, binds the port
(a port in use is one clear line, exit 2) and serves ``http://HOST:PORT/``
until Ctrl-C. See ``docs/service.md``.
"""

from __future__ import annotations

import argparse
import socket
import sys

from emovox.errors import ConfigError

_HINT = "pip install 'emovox[service]'"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="serve the REST/WebSocket API and the web page",
        description="Serve predictions over HTTP (POST /v1/predict, /v1/predict/batch), live streams "
                    "over a WebSocket (/v1/stream) and a web page at /, on an embedded uvicorn.",
        epilog="examples:\n  emovox serve                      # http://127.0.0.1:8000/\n"
               "  emovox serve --host 0.0.0.0 --port 9000 --api-key-file keys.txt\n"
               "  curl -F file=@clip.wav http://127.0.0.1:8000/v1/predict",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    p.add_argument("--model", metavar="DIR", help="model artifact folder or shipped model name (default: the bundled model)")
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto", help="inference engine")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="CPU threads per model call (default: 1; requests and streams run in parallel)")
    p.add_argument("--api-key-file", metavar="FILE",
                   help="require an API key (one per line in FILE) on every route but the probes and the page")
    lim = p.add_argument_group("limits")
    lim.add_argument("--max-upload-mb", type=float, metavar="MB", default=25.0, help="largest request body, MiB (default: 25)")
    lim.add_argument("--max-audio-s", type=float, metavar="S", default=600.0, help="longest recording per file, s (default: 600)")
    lim.add_argument("--max-batch-files", type=int, metavar="N", default=16, help="files per batch request (default: 16)")
    lim.add_argument("--max-concurrent", type=int, metavar="N", default=32,
                     help="prediction requests at once; more get 503 + Retry-After (default: 32)")
    lim.add_argument("--max-streams", type=int, metavar="N", default=32, help="WebSocket streams at once (default: 32)")
    lim.add_argument("--stream-idle-s", type=float, metavar="S", default=30.0, help="close a silent stream after S s (default: 30)")
    lim.add_argument("--stream-max-s", type=float, metavar="S", default=3600.0, help="longest stream, s (default: 3600)")
    st = p.add_argument_group("streams")
    st.add_argument("--window-s", type=float, metavar="S", default=3.0, help="default stream window, s (default: 3)")
    st.add_argument("--hop-s", type=float, metavar="S", default=0.5, help="default stream hop, s (default: 0.5)")
    st.add_argument("--vad", choices=("auto", "silero", "webrtc", "off"), default="auto",
                    help="voice activity detector of streams")
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


def handle(args: argparse.Namespace) -> int:
    try:
        import uvicorn
        from emovox.service.app import StreamDefaults, create_app
    except ImportError as error:
        raise ConfigError(f"emovox serve needs {error.name or 'the service extra'}: {_HINT}") from None
    from emovox.inference import load_model
    from emovox.inference.streaming import StreamEngine
    from emovox.service.auth import load_api_keys
    from emovox.service.limits import Limits

    limits = Limits(max_upload_mb=args.max_upload_mb, max_audio_s=args.max_audio_s,
                    max_batch_files=args.max_batch_files, max_concurrent_requests=args.max_concurrent,
                    max_streams=args.max_streams, stream_idle_timeout_s=args.stream_idle_s,
                    stream_max_duration_s=args.stream_max_s)
    keys = load_api_keys(args.api_key_file) if args.api_key_file else None
    predictor = load_model(args.model, backend=args.backend, num_threads=args.threads)
    stream = StreamDefaults(window_s=args.window_s, hop_s=args.hop_s, vad=args.vad)
    StreamEngine(predictor, window_s=stream.window_s, hop_s=stream.hop_s, vad=stream.vad)  # validates
    app = create_app(predictor, limits=limits, api_keys=keys, stream=stream)
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"emovox: serving on http://{shown}:{port}/ (model {predictor.info.config.get('architecture', {}).get('name', '?')}, "
          f"backend {getattr(predictor.backend, 'name', args.backend)}"
          f"{', API keys required' if keys else ''}); Ctrl-C stops", file=sys.stderr, flush=True)
    # keep-alive well beyond common client pool expiries (httpx: 5 s), so a client never
    # reuses a connection at the moment the server closes it
    config = uvicorn.Config(app, log_level=args.log_level, ws_max_size=limits.max_frame_bytes + 4096,
                            timeout_keep_alive=20, timeout_graceful_shutdown=5, server_header=False)
    from emovox.service.auth import redact_keys_in_logs

    redact_keys_in_logs()  # uvicorn logs WebSocket paths with their ?api_key=
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down on: the normal way to stop
        pass
    finally:
        sock.close()
    print("emovox: server stopped", file=sys.stderr)
    return 0
