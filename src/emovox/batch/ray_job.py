"""The Ray Data pipeline of ``emovox batch``: shards of paths in, Parquet parts out.

The dataset has one row per *pending shard* (``shard``, ``start``, ``paths``):
only paths travel, never audio. ``map_batches`` runs :class:`ShardScorer`
on an actor pool: each actor loads the model once (ONNX backend, a set number
of threads, one CPU each per thread), decodes its shard's files itself and
returns the shard's results as Parquet bytes. The driver writes each part
atomically as it arrives, so everything finished survives a kill.

By default Ray is started embedded, in this process, sized to the machine:
nothing to install or start, no dashboard, no usage-stats prompt, warnings
only. ``address`` joins an existing cluster instead (``"auto"``,
``"ray://head:10001"``, ``"10.0.0.1:6379"``); then every node must see the
input paths (or they are URIs) and the model folder.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from emovox.errors import ConfigError, EmovoxError

__all__ = [
    "BatchError",
    "ShardScorer",
    "start_ray",
    "stop_ray",
    "ray_running",
    "run_shards",
    "cluster_cpus",
    "RAY_HINT",
]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

RAY_HINT = "emovox batch needs Ray Data: pip install 'emovox[ray]'"


class BatchError(EmovoxError):
    """A batch job stopped part-way (a worker died, the cluster went away); a re-run resumes it."""


def _import_ray(*, data: bool = True, hint: str = RAY_HINT):
    try:
        import ray

        if data:
            import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError(hint) from None
    return ray


def _check_reachable(address: str, *, timeout_s: float = 5.0) -> None:
    """ConfigError when a ``host:port`` (or ``ray://host:port``) address does not answer.

    Ray itself retries an unreachable head for minutes, printing a warning a second.
    """
    import socket

    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" or a form Ray resolves itself
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as error:
        raise ConfigError(
            f"cannot reach the Ray cluster at --address {address!r} ({error.strerror or error}): "
            "start it (ray start --head) or leave --address out to run Ray embedded"
        ) from None


def start_ray(
    *, address: str | None = None, num_cpus: int | None = None, data: bool = True, hint: str = RAY_HINT
) -> float:
    """Start embedded Ray (or connect to ``address``), quietly; returns the seconds it took.

    Parameters
    ----------
    address : str or None
        An existing cluster; ``None`` starts a local one in this process.
    num_cpus : int or None
        CPUs of the local cluster (default: all of this machine's).
    data : bool
        Import and quieten Ray Data (``emovox batch``); ``emovox serve --ray``
        needs only Ray core and Ray Serve.
    hint : str
        The one-line error when Ray (or Ray Data) is not installed.
    """
    if ray_running():
        return 0.0
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    t0 = time.perf_counter()
    imported_before = "ray" in sys.modules
    if address is None and "RAY_AUTH_MODE" not in os.environ:
        # Token auth on (Ray's default for a new local cluster), said explicitly so
        # Ray starts without a warning about it.
        os.environ["RAY_AUTH_MODE"] = "token"
        if imported_before:  # Ray read its config when imported: make it see the mode too
            try:
                # private: the compiled module has Config, its ray/_raylet.pyi stub does not list it
                from ray._raylet import Config  # type: ignore[attr-defined]

                Config.initialize("")
            except Exception:  # noqa: BLE001 - private API moved: Ray then only warns
                del os.environ["RAY_AUTH_MODE"]
    if address is not None:
        _check_reachable(address)
    ray = _import_ray(data=data, hint=hint)
    logging.getLogger("ray").setLevel(logging.WARNING)
    options = {"log_to_driver": False, "logging_level": logging.WARNING, "configure_logging": True}
    try:
        if address is None:
            ray.init(num_cpus=int(num_cpus or os.cpu_count() or 1), include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as error:
        if address is None:
            raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"cannot connect to the Ray cluster at --address {address!r}: {first}") from None
    if not data:
        return time.perf_counter() - t0
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.verbose_stats_logs = False
    # Ray Data's console lines (progress, tracebacks of failed actors) would bury our
    # one-line messages: its console handler shows only critical records. Its log
    # file (/tmp/ray/session_latest/logs/ray-data.log) keeps everything.
    for handler in logging.getLogger("ray.data").handlers:
        if "File" not in type(handler).__name__:
            handler.setLevel(logging.CRITICAL)
    return time.perf_counter() - t0


def ray_running() -> bool:
    """Whether this process is connected to Ray already (without importing Ray otherwise)."""
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def stop_ray() -> None:
    """Shut Ray down (its local processes too, when it was started embedded)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


def cluster_cpus() -> int:
    """CPUs of the running Ray cluster."""
    import ray

    return int(ray.cluster_resources().get("CPU", 1))


class ShardScorer:
    """Ray Data actor: loads the model once, then scores shards (one per call).

    Parameters
    ----------
    model_dir : str or None
        Model artifact folder (``None``: the bundled model).
    num_threads : int
        ONNX Runtime threads of this actor (the actor reserves as many CPUs).
    min_confidence : float or None
        Rejection threshold override.
    batch_size : int
        Windows per model call.
    timeline : bool
        One row per speech segment.
    """

    def __init__(
        self, *, model_dir: str | None, num_threads: int, min_confidence: float | None, batch_size: int, timeline: bool
    ) -> None:
        from emovox.inference import load_model

        self.predictor = load_model(
            model_dir, backend="onnx", num_threads=num_threads, min_confidence=min_confidence, batch_size=batch_size
        )
        self.timeline = timeline

    def __call__(self, batch: dict) -> dict:
        from emovox.batch.scoring import score_files, table_to_parquet_bytes

        out: dict[str, list] = {"shard": [], "n_files": [], "n_failed": [], "n_rows": [], "parquet": []}
        for shard, start, paths in zip(batch["shard"], batch["start"], batch["paths"]):
            paths = [str(p) for p in paths]
            indices = range(int(start), int(start) + len(paths))
            table = score_files(self.predictor, indices, paths, timeline=self.timeline)
            failed = {
                i
                for i, e in zip(table.column("input_index").to_pylist(), table.column("error").to_pylist())
                if e is not None
            }
            out["shard"].append(int(shard))
            out["n_files"].append(len(paths))
            out["n_failed"].append(len(failed))
            out["n_rows"].append(table.num_rows)
            out["parquet"].append(table_to_parquet_bytes(table))
        return out


@dataclass
class ShardResult:
    """One finished shard as the driver receives it."""

    shard: int
    n_files: int
    n_failed: int
    n_rows: int
    parquet: bytes


def run_shards(
    shards: Sequence[tuple[int, int, list[str]]],
    *,
    model_dir: str | None,
    workers: int,
    threads_per_worker: int,
    min_confidence: float | None,
    batch_size: int,
    timeline: bool,
    on_result: Callable[[ShardResult], None],
) -> None:
    """Score ``(shard, start, paths)`` items on an actor pool; ``on_result`` gets each shard as it finishes.

    Ray must be started (:func:`start_ray`). Shards finish in any order.
    """
    if not shards:
        return
    ray = _import_ray()
    items = [{"shard": k, "start": start, "paths": list(paths)} for k, start, paths in shards]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    options = {
        "fn_constructor_kwargs": {
            "model_dir": model_dir,
            "num_threads": threads_per_worker,
            "min_confidence": min_confidence,
            "batch_size": batch_size,
            "timeline": timeline,
        },
        "batch_size": 1,
        "batch_format": "numpy",
        "num_cpus": threads_per_worker,
        "compute": ray.data.ActorPoolStrategy(size=workers),
    }
    with warnings.catch_warnings():
        # A dead actor is not restarted: the job stops with an error and a re-run
        # resumes it. (Ray's default, endless restarts, would loop on a file that
        # crashes the decoder, and prints an advisory line about it on stderr.)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            ds = ds.map_batches(ShardScorer, **options, max_restarts=0)
        except TypeError:  # pragma: no cover - a Ray without extra remote arguments
            ds = ds.map_batches(ShardScorer, **options)
    try:
        for row in ds.iter_rows():
            on_result(
                ShardResult(
                    shard=int(row["shard"]),
                    n_files=int(row["n_files"]),
                    n_failed=int(row["n_failed"]),
                    n_rows=int(row["n_rows"]),
                    parquet=bytes(row["parquet"]),
                )
            )
    except ray.exceptions.RayError as error:
        cause = getattr(error, "cause", None) or error
        if isinstance(cause, EmovoxError):
            raise cause from None
        # Ray's message holds the remote traceback: its last line names the error.
        lines = [ln.strip() for ln in _ANSI.sub("", str(cause)).splitlines() if ln.strip()]
        raise BatchError(
            f"a Ray worker failed ({lines[-1] if lines else type(cause).__name__}): the finished "
            "parts are kept; run the same command again to resume"
        ) from None
