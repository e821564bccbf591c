"""A batch job from start to summary: fix the inputs, skip finished shards, score the rest on Ray.

>>> summary = run_batch(["corpus/**/*.flac"], out_dir="scores")   # doctest: +SKIP
>>> summary.line()                                                 # doctest: +SKIP
'emovox batch: 1440 files, 0 failed, 31.2 s (Ray start-up 5.1 s), 46.2 clips/s -> scores'
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from emovox.batch.inputs import expand_inputs
from emovox.batch.parts import JOB_FILE, JobSpec, OutputDir, inputs_digest
from emovox.errors import ConfigError, ModelError

__all__ = ["run_batch", "BatchSummary", "DEFAULT_SHARD_SIZE"]

#: How a differing job setting is named to the user.
_SETTING_NAMES = {
    "model_id": "model",
    "labels": "model labels",
    "shard_size": "--shard-size",
    "timeline": "--timeline",
    "min_confidence": "--min-confidence",
}

#: Inputs per part file by default: ~1 MB parts, a few seconds of work per actor call.
DEFAULT_SHARD_SIZE = 256


@dataclass
class BatchSummary:
    """What a run did.

    Attributes
    ----------
    n_inputs : int
        Inputs of the job.
    n_done_before : int
        Inputs whose shard a previous run had finished (skipped now).
    n_scored : int
        Inputs scored by this run.
    n_failed : int
        Inputs (of the whole job) whose row holds an error.
    n_rows : int
        Rows written by this run.
    seconds : float
        Wall time of this run.
    ray_start_s : float
        Of which starting (or joining) Ray.
    first_part_s : float
        From the start of this run to its first part written (Ray start-up,
        the actor pool coming up, one shard scored); 0 when nothing was pending.
    first_part_files : int
        Inputs in that first part.
    out_dir : str
    """

    n_inputs: int
    n_done_before: int
    n_scored: int
    n_failed: int
    n_rows: int
    seconds: float
    ray_start_s: float
    out_dir: str
    first_part_s: float = 0.0
    first_part_files: int = 0

    @property
    def clips_per_s(self) -> float:
        """Inputs scored per second of this run, start-up included."""
        return self.n_scored / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_clips_per_s(self) -> float:
        """Inputs scored per second after the first part (start-up excluded)."""
        rest_s = self.seconds - self.first_part_s
        return (self.n_scored - self.first_part_files) / rest_s if rest_s > 0 else 0.0

    def line(self) -> str:
        resumed = f", {self.n_done_before} done before" if self.n_done_before else ""
        return (
            f"emovox batch: {self.n_inputs} files{resumed}, {self.n_failed} failed, "
            f"{self.seconds:.1f} s (Ray start-up {self.ray_start_s:.1f} s), "
            f"{self.clips_per_s:.1f} clips/s -> {self.out_dir}"
        )


class _Progress:
    """``done/total files, clips/s, failed`` on stderr: one updating line on a terminal, else every 10 s."""

    def __init__(self, total: int, done: int, *, stream: TextIO | None, quiet: bool) -> None:
        self.total, self.done, self.failed = total, done, 0
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self.scored = 0
        self.last = 0.0

    def add(self, n_files: int, n_failed: int) -> None:
        self.done += n_files
        self.scored += n_files
        self.failed += n_failed
        now = time.perf_counter()
        if self.quiet or (not self.tty and now - self.last < 10.0 and self.done < self.total):
            return
        self.last = now
        rate = self.scored / max(now - self.t0, 1e-9)
        text = (
            f"emovox batch: {self.done}/{self.total} files ({100 * self.done / self.total:.0f} %), "
            f"{rate:.1f} clips/s, {self.failed} failed"
        )
        self.stream.write(f"\r{text}\033[K" if self.tty else text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and not self.quiet and self.scored:
            self.stream.write("\n")


def _model_identity(model: str | os.PathLike | None) -> tuple[str | None, str, str, list[str]]:
    """``(folder for load_model, display name, id, labels)``; ModelError before any work starts."""
    from emovox.inference.backends import CONFIG_FILE, ONNX_FILE, ModelInfo, read_config
    from emovox.inference.predictor import pretrained_dir, resolve_model_dir

    folder = resolve_model_dir(None if model is None else str(model)).absolute()
    # A shipped model ("default", "cnn") travels by name: each node loads its own copy.
    shipped = folder.parent == pretrained_dir().absolute()
    name = folder.name if shipped else str(folder)
    info = ModelInfo.from_config(read_config(folder))
    if not (folder / ONNX_FILE).is_file():
        raise ModelError(
            f"{str(folder)!r} has no {ONNX_FILE}: emovox batch runs the ONNX backend; "
            f"export it first (emovox export {folder})"
        )
    from emovox.inference import load_model

    load_model(name, backend="onnx", num_threads=1)  # a broken model fails here, in one line
    model_id = hashlib.sha256((folder / CONFIG_FILE).read_bytes()).hexdigest()
    return name, name, model_id, list(info.labels)


def _check_options(*, workers, threads_per_worker, batch_size, shard_size, min_confidence) -> None:
    for flag, value in (
        ("--workers", workers),
        ("--threads-per-worker", threads_per_worker),
        ("--batch-size", batch_size),
        ("--shard-size", shard_size),
    ):
        if value is not None and int(value) < 1:
            raise ConfigError(f"{flag} {value}: must be at least 1")
    if min_confidence is not None and not 0.0 <= float(min_confidence) <= 1.0:
        raise ConfigError(f"--min-confidence {min_confidence}: must lie in [0, 1]")


def _count_failed(out: OutputDir, shards: Sequence[int]) -> int:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    failed = 0
    for k in shards:
        t = pq.read_table(out.part_path(k), columns=["input_index", "error"])
        failed += len(pc.unique(t.filter(pc.is_valid(t["error"]))["input_index"]))
    return failed


def run_batch(
    inputs: Sequence[str],
    *,
    out_dir: str | os.PathLike,
    lists: Sequence[str] = (),
    model: str | os.PathLike | None = None,
    csv: bool = False,
    timeline: bool = False,
    workers: int | None = None,
    threads_per_worker: int = 1,
    address: str | None = None,
    batch_size: int = 8,
    min_confidence: float | None = None,
    shard_size: int | None = None,
    quiet: bool = False,
    progress: TextIO | None = None,
    keep_ray: bool = False,
) -> BatchSummary:
    """Score every input into part files under ``out_dir``; resume what a previous run left.

    Parameters
    ----------
    inputs : sequence of str
        Files, folders, globs, ``@list.txt``, CSV manifests, local or URIs
        (:func:`~emovox.batch.inputs.expand_inputs`). Empty: finish the job
        recorded in ``out_dir``.
    out_dir : path
        Output folder (:mod:`emovox.batch.parts`). A folder holding a job
        must be given the same inputs and settings (or none).
    lists : sequence of str
        Text files of paths (``--list``).
    model : path or None
        Model artifact folder with ``model.onnx``, or the name of a shipped
        model (``"cnn"``); default: the bundled default model.
    csv : bool
        Also write CSV parts.
    timeline : bool
        One row per speech segment.
    workers : int or None
        Actors (default: the cluster's CPUs // ``threads_per_worker``).
    threads_per_worker : int
        ONNX Runtime threads (and reserved CPUs) per actor.
    address : str or None
        Ray cluster to join (default: start one embedded).
    batch_size : int
        Windows per model call.
    min_confidence : float or None
        Rejection threshold override.
    shard_size : int or None
        Inputs per part (default: the recorded one, else
        :data:`DEFAULT_SHARD_SIZE`).
    quiet : bool
        No progress lines.
    progress : text stream or None
        Where progress goes (default: stderr).
    keep_ray : bool
        Leave Ray running afterwards (benchmarks reuse it); else a Ray that
        this call started is shut down (one already running is left alone).
    """
    t0 = time.perf_counter()
    _check_options(
        workers=workers,
        threads_per_worker=threads_per_worker,
        batch_size=batch_size,
        shard_size=shard_size,
        min_confidence=min_confidence,
    )
    model_dir, model_name, model_id, labels = _model_identity(model)
    with OutputDir(out_dir) as out:
        recorded = out.read_spec()
        if inputs or lists:
            paths = expand_inputs(inputs, lists=lists)
        elif recorded is not None:
            paths = out.read_inputs(recorded)
        else:
            raise ConfigError(f"no inputs given and {str(out_dir)!r} holds no job to finish: give INPUT...")
        size = shard_size or (recorded.shard_size if recorded else DEFAULT_SHARD_SIZE)
        spec = JobSpec(
            n_inputs=len(paths),
            digest=inputs_digest(paths),
            shard_size=int(size),
            model=model_name,
            model_id=model_id,
            labels=labels,
            timeline=bool(timeline),
            min_confidence=None if min_confidence is None else float(min_confidence),
        )
        if recorded is None:
            if out.has_parts():  # parts without a job file: not this job's; they would count as done
                raise ConfigError(
                    f"{str(out_dir)!r} holds part files but no {JOB_FILE}: they are not this job's; use a new --out"
                )
            out.write_job(spec, paths)
        elif diffs := recorded.differences(spec):
            named = [_SETTING_NAMES.get(d, d) for d in diffs]
            raise ConfigError(
                f"{str(out_dir)!r} holds a job with other {', '.join(named)}: give the same inputs "
                f"and options to resume it (or none: emovox batch --out {out_dir}), or use a new --out"
            )
        out.check_parts(spec)  # every part already there has this format's columns: none is mixed in
        done = out.done_shards(spec)
        n_done_before = sum(spec.shard_range(k)[1] - spec.shard_range(k)[0] for k in done)
        failed_before = _count_failed(out, sorted(done))
        if csv:
            for k in out.missing_csv(spec):
                out.write_csv(k)
        pending = [
            (k, spec.shard_range(k)[0], paths[slice(*spec.shard_range(k))])
            for k in range(spec.n_shards)
            if k not in done
        ]
        bar = _Progress(spec.n_inputs, n_done_before, stream=progress, quiet=quiet)
        n_rows = 0
        ray_start_s = 0.0
        first: list[tuple[float, int]] = []

        def on_result(result) -> None:
            nonlocal n_rows
            out.write_part(result.shard, result.parquet)
            if csv:
                out.write_csv(result.shard)
            if not first:
                first.append((time.perf_counter() - t0, result.n_files))
            n_rows += result.n_rows
            bar.add(result.n_files, result.n_failed)

        if pending:
            import emovox.batch.ray_job as ray_job

            started_here = not ray_job.ray_running()
            ray_start_s = ray_job.start_ray(address=address)
            try:
                n_workers = workers or max(1, ray_job.cluster_cpus() // threads_per_worker)
                ray_job.run_shards(
                    pending,
                    model_dir=model_dir,
                    workers=min(n_workers, len(pending)),
                    threads_per_worker=threads_per_worker,
                    min_confidence=min_confidence,
                    batch_size=batch_size,
                    timeline=timeline,
                    on_result=on_result,
                )
            finally:
                bar.close()
                if started_here and not keep_ray:
                    ray_job.stop_ray()
        missing = set(range(spec.n_shards)) - out.done_shards(spec)
        if missing:  # pragma: no cover - every pending shard returns or Ray raised
            raise ConfigError(f"{len(missing)} shards were not written: run the same command again")
    return BatchSummary(
        n_inputs=spec.n_inputs,
        n_done_before=n_done_before,
        n_scored=spec.n_inputs - n_done_before,
        n_failed=failed_before + bar.failed,
        n_rows=n_rows,
        seconds=time.perf_counter() - t0,
        ray_start_s=ray_start_s,
        out_dir=str(out_dir),
        first_part_s=first[0][0] if first else 0.0,
        first_part_files=first[0][1] if first else 0,
    )
