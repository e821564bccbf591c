"""The output folder of a batch job: a fixed input list, shards, and one atomic part file per shard.

Layout of ``--out DIR``::

    DIR/_inputs.parquet        the input list, fixed at the first run (column ``path``)
    DIR/_job.json              settings, input count and digest, shard size (written last)
    DIR/_job.lock              held (flock) while a job runs on DIR
    DIR/parquet/part-00000.parquet   results of inputs [0, shard_size), in input order
    DIR/csv/part-00000.csv           the same rows as CSV (with --csv)

Input ``i`` belongs to shard ``i // shard_size``. A part is written only once
its whole shard is scored, through :func:`emovox.fileio.atomic_output`
(temporary file beside it, fsync, rename), so a part that exists is complete
and a shard without one is scored again. Whatever moment a job is killed
at, a re-run with the same ``DIR`` ends with exactly one row per input
(per segment with ``--timeline``): none lost, none doubled. Readers that
skip ``_``/``.`` names (pyarrow, pandas, Spark) see only parts.

The rows are emovox's one result record (:mod:`emovox.inference.records`),
the rows of ``emovox predict --csv``. Format ``emovox-batch/3`` took that
record (``file`` for ``path``, ``kind``, ``segment``, ``model``,
``model_version``; a ``--timeline`` input's ``file`` row before its
segments); ``emovox-batch/2`` had added ``speech_s``, ``reason`` and
``flags``. A folder of an earlier format is still read by
:func:`read_results`, but a run refuses to add parts to it, and a run also
checks that every part already there has this format's columns, so one
folder never mixes the two.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from emovox.errors import ConfigError
from emovox.fileio import atomic_output, atomic_write_bytes, atomic_write_text

__all__ = ["FORMAT", "JobSpec", "OutputDir", "inputs_digest", "result_schema", "read_results"]

FORMAT = "emovox-batch/3"
#: Earlier formats: readable, never resumed (their parts have other columns).
OLD_FORMATS = ("emovox-batch/1", "emovox-batch/2")
JOB_FILE = "_job.json"
INPUTS_FILE = "_inputs.parquet"
LOCK_FILE = "_job.lock"
PARQUET_DIR = "parquet"
CSV_DIR = "csv"


def inputs_digest(paths: Sequence[str]) -> str:
    """SHA-256 of the input list (order matters), hex."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()


def result_schema(labels: Sequence[str]):
    """Arrow schema of a part: the columns of :func:`emovox.inference.records.result_columns`.

    ``file, input_index, kind, segment, start_s, end_s, label, confidence,
    speech_s, reason, flags, score_<label>..., model, model_version, error``:
    ``kind`` ``file`` (an input's answer) or ``segment`` (one segment of a
    ``--timeline`` input, numbered by ``segment``); ``label`` an emotion,
    ``"unknown"``, ``"no_speech"`` (or ``"mixed"`` for a timeline's ``file``
    row); ``speech_s`` the seconds of speech the answer rests on; ``reason``
    why there is no emotion (null when there is one); ``flags`` the raised
    quality flags joined by ``;`` (``""`` when none); ``score_<label>`` the
    calibrated probabilities (null for ``no_speech``); ``model`` and
    ``model_version`` the model that answered. A row whose input failed holds
    only ``file``, ``input_index``, ``kind``, the model and ``error``.
    """
    import pyarrow as pa

    from emovox.inference.records import result_columns

    types = {"input_index": pa.int64(), "segment": pa.int64()}
    floats = {"start_s", "end_s", "confidence", "speech_s"}
    return pa.schema(
        [
            (name, types.get(name) or (pa.float64() if name in floats or name.startswith("score_") else pa.string()))
            for name in result_columns(labels)
        ]
    )


class _OldJob(Exception):
    """A job file of an earlier format (:data:`OLD_FORMATS`)."""


@dataclass(frozen=True)
class JobSpec:
    """What fixes a job's results: same spec, same rows.

    Attributes
    ----------
    n_inputs : int
        Number of inputs.
    digest : str
        :func:`inputs_digest` of the input list.
    shard_size : int
        Inputs per part file.
    model : str
        The model folder (absolute), or a shipped model's name; for people (not compared).
    model_id : str
        SHA-256 of the model's ``config.json``: a re-run must use the same model.
    labels : list of str
        The model's classes, in column order.
    timeline : bool
        One row per speech segment instead of per file.
    min_confidence : float or None
        Rejection threshold override.
    """

    n_inputs: int
    digest: str
    shard_size: int
    model: str
    model_id: str
    labels: list[str]
    timeline: bool = False
    min_confidence: float | None = None
    format: str = field(default=FORMAT)

    @property
    def n_shards(self) -> int:
        return -(-self.n_inputs // self.shard_size)

    def shard_range(self, shard: int) -> tuple[int, int]:
        """``[start, stop)`` input indices of a shard."""
        start = shard * self.shard_size
        return start, min(start + self.shard_size, self.n_inputs)

    def differences(self, other: JobSpec) -> list[str]:
        """Names of the settings where ``other`` differs (``inputs`` for the list)."""
        out = []
        if (self.n_inputs, self.digest) != (other.n_inputs, other.digest):
            out.append("inputs")
        for name in ("shard_size", "model_id", "labels", "timeline", "min_confidence"):
            if getattr(self, name) != getattr(other, name):
                out.append(name)
        return out


class OutputDir:
    """The output folder of one job (see the module docstring).

    Use as a context manager: it takes the folder's lock (one job per folder
    at a time; the lock dies with its process, even under ``kill -9``) and
    removes temporary files that a killed run left behind.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------ lock
    def __enter__(self) -> OutputDir:
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {str(self.path)!r} is a file: give a folder for the part files")
        try:
            (self.path / PARQUET_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"cannot create --out {str(self.path)!r}: {error.strerror or error}") from None
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(
                f"another emovox batch job is writing to {str(self.path)!r}: wait for it or use another --out"
            ) from None
        self._lock_fd = fd
        self.remove_temporaries()
        return self

    def __exit__(self, *exc) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def remove_temporaries(self) -> int:
        """Delete temporary files of interrupted writes (``.name.*.tmp``); returns how many."""
        n = 0
        for folder in (self.path, self.path / PARQUET_DIR, self.path / CSV_DIR):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)
                    n += 1
        return n

    # ------------------------------------------------------------------ job
    def read_spec(self) -> JobSpec | None:
        """The recorded job, or None when the folder holds none yet."""
        path = self.path / JOB_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            fmt = data.get("format") if isinstance(data, dict) else None
            if fmt in OLD_FORMATS:
                raise _OldJob(fmt)
            if fmt != FORMAT:
                raise ValueError(f"format {fmt!r}")
            return JobSpec(**data)
        except _OldJob:
            raise ConfigError(
                f"{str(self.path)!r} holds a job of an earlier emovox ({fmt}: parts with other columns than "
                f"{FORMAT}); read_results still reads it, but it cannot be resumed: use a new --out"
            ) from None
        except (OSError, ValueError, TypeError) as error:
            raise ConfigError(f"{str(path)!r} is not an emovox batch job file ({error}): use another --out") from None

    def read_inputs(self, spec: JobSpec) -> list[str]:
        """The recorded input list, checked against ``spec``'s count and digest."""
        import pyarrow.parquet as pq

        try:
            paths = pq.read_table(self.path / INPUTS_FILE, columns=["path"]).column("path").to_pylist()
        except (OSError, KeyError) as error:
            raise ConfigError(f"cannot read the input list of {str(self.path)!r}: {error}") from None
        if len(paths) != spec.n_inputs or inputs_digest(paths) != spec.digest:
            raise ConfigError(
                f"{str(self.path / INPUTS_FILE)!r} does not match {JOB_FILE}: the folder was altered; use a new --out"
            )
        return paths

    def write_job(self, spec: JobSpec, paths: Sequence[str]) -> None:
        """Record the input list, then the job (the job file last: it commits both)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with atomic_output(self.path / INPUTS_FILE) as tmp:
            pq.write_table(pa.table({"path": pa.array(list(paths), pa.string())}), tmp)
        atomic_write_text(self.path / JOB_FILE, json.dumps(asdict(spec), indent=1) + "\n")

    # ------------------------------------------------------------------ parts
    def part_path(self, shard: int) -> Path:
        return self.path / PARQUET_DIR / f"part-{shard:05d}.parquet"

    def csv_path(self, shard: int) -> Path:
        return self.path / CSV_DIR / f"part-{shard:05d}.csv"

    def done_shards(self, spec: JobSpec) -> set[int]:
        """Shards whose Parquet part exists."""
        names = {p.name for p in (self.path / PARQUET_DIR).glob("part-*.parquet")}
        return {k for k in range(spec.n_shards) if self.part_path(k).name in names}

    def check_parts(self, spec: JobSpec) -> None:
        """Refuse a folder whose parts are not all of this job's format (they would mix with new ones).

        Each part's schema (its Parquet footer, a few hundred bytes) must be
        :func:`result_schema` of the job's labels; a part beyond the job's
        shards, or parts in a folder that records no job, mean the folder
        holds something else.
        """
        import pyarrow.parquet as pq

        want = result_schema(spec.labels)
        for path in sorted((self.path / PARQUET_DIR).glob("part-*.parquet")):
            try:
                shard = int(path.stem.split("-", 1)[1])
                schema = pq.read_schema(path)
            except (ValueError, OSError) as error:
                raise ConfigError(f"{str(path)!r} is not a part this job wrote ({error}): use a new --out") from None
            if shard >= spec.n_shards:
                raise ConfigError(
                    f"{str(path)!r} lies beyond the {spec.n_shards} shards of the job in "
                    f"{str(self.path)!r}: the folder holds another job's parts; use a new --out"
                )
            if not schema.equals(want, check_metadata=False):
                raise ConfigError(
                    f"{str(path)!r} has other columns than {FORMAT} ({', '.join(schema.names[:4])}, ...): the "
                    f"folder mixes parts of another emovox or another job; use a new --out"
                )

    def has_parts(self) -> bool:
        """Whether any part file exists (a folder without a job file must have none)."""
        return any((self.path / PARQUET_DIR).glob("part-*.parquet"))

    def write_part(self, shard: int, parquet_bytes: bytes) -> None:
        """Write a shard's Parquet part atomically."""
        atomic_write_bytes(self.part_path(shard), parquet_bytes)

    def write_csv(self, shard: int) -> None:
        """Write a shard's CSV part atomically from its Parquet part (as ``emovox predict --csv`` writes rows)."""
        import pyarrow.parquet as pq

        from emovox.inference.records import CsvRows, result_columns

        table = pq.read_table(self.part_path(shard))
        labels = [name[len("score_") :] for name in table.schema.names if name.startswith("score_")]
        if table.schema.names != result_columns(labels):
            raise ConfigError(f"{str(self.part_path(shard))!r} has other columns than {FORMAT}: use a new --out")
        self.csv_path(shard).parent.mkdir(exist_ok=True)
        with atomic_output(self.csv_path(shard)) as tmp:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                CsvRows(fh, labels).write_all(table.to_pylist())

    def missing_csv(self, spec: JobSpec) -> list[int]:
        """Done shards without a CSV part (a job re-run with ``--csv``, or killed between the two)."""
        return [k for k in sorted(self.done_shards(spec)) if not self.csv_path(k).is_file()]


def read_results(out_dir: str | os.PathLike):
    """All parts of a job folder as one Arrow table, in input order."""
    import pyarrow.parquet as pq

    folder = Path(out_dir) / PARQUET_DIR
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        raise ConfigError(f"{str(out_dir)!r} holds no part files: run emovox batch with --out {out_dir}")
    import pyarrow as pa

    return pa.concat_tables([pq.read_table(p) for p in parts])
