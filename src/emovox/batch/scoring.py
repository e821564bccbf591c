"""Score one shard of inputs with a :class:`~emovox.inference.Predictor` into a result table.

This is the work of one Ray actor call, with no Ray in it (so it is tested and
benchmarked on its own). A file that cannot be read or decoded gets a row with
its error message and nulls elsewhere; the shard goes on. A file without
speech is an answer, not an error: its row says ``no_speech`` (null scores),
with ``--timeline`` too (one row spanning the recording).
"""

from __future__ import annotations

import io
from typing import Sequence

from emovox.batch.inputs import open_source
from emovox.batch.parts import result_schema

__all__ = ["score_files", "table_to_parquet_bytes"]


def _error_text(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return text or type(error).__name__


class _Rows:
    """Column lists of a result table."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)
        self.cols: dict[str, list] = {name: [] for name in result_schema(self.labels).names}

    def prediction(self, index: int, path: str, p, *, flags: Sequence[str] | None = None) -> None:
        """One answer; ``flags`` overrides the prediction's own (a timeline segment gets its recording's)."""
        c = self.cols
        c["input_index"].append(index)
        c["path"].append(path)
        c["start_s"].append(round(float(p.start_s), 3))
        c["end_s"].append(round(float(p.end_s), 3))
        c["label"].append(p.label)
        c["confidence"].append(float(p.confidence))
        c["speech_s"].append(round(float(p.speech_s), 3))
        c["reason"].append(p.reason)
        c["flags"].append(";".join(p.flags if flags is None else flags))
        for k in self.labels:
            v = p.scores.get(k)
            c[f"score_{k}"].append(None if v is None else float(v))
        c["error"].append(None)

    def error(self, index: int, path: str, message: str) -> None:
        for name, values in self.cols.items():
            values.append(None)
        self.cols["input_index"][-1] = index
        self.cols["path"][-1] = path
        self.cols["error"][-1] = message

    def table(self):
        import pyarrow as pa

        return pa.table(self.cols, schema=result_schema(self.labels))


def score_files(predictor, indices: Sequence[int], paths: Sequence[str], *,
                timeline: bool = False, chunk: int | None = None):
    """Result rows of some inputs, in input order.

    Parameters
    ----------
    predictor : Predictor
        The loaded model.
    indices : sequence of int
        Input indices (positions in the job's input list), one per path.
    paths : sequence of str
        Local paths or URIs (remote files are read here, as bytes).
    timeline : bool
        One row per speech segment (:meth:`Predictor.predict_timeline`),
        flagged with its recording's quality flags, instead of one per file
        (:meth:`Predictor.iter_predict`); a recording without speech gets
        one ``no_speech`` row spanning it.
    chunk : int or None
        Files read ahead and predicted together (default: the predictor's
        batch size); bounds the memory held by remote files' bytes.

    Returns
    -------
    pyarrow.Table
        :func:`~emovox.batch.parts.result_schema` of the predictor's labels.
    """
    rows = _Rows(predictor.labels)
    step = max(1, int(chunk or predictor.batch_size))
    for lo in range(0, len(paths), step):
        group = list(zip(indices[lo:lo + step], paths[lo:lo + step]))
        sources = []
        for index, path in group:
            try:
                sources.append(open_source(path))
            except Exception as error:  # noqa: BLE001 - any read failure becomes the row's error
                sources.append(error)
        if timeline:
            for (index, path), source in zip(group, sources):
                _timeline_rows(rows, predictor, index, path, source)
        else:
            _clip_rows(rows, predictor, group, sources)
    return rows.table()


def _clip_rows(rows: _Rows, predictor, group, sources) -> None:
    readable = [(item, s) for item, s in zip(group, sources) if not isinstance(s, BaseException)]
    results: dict[int, object] = {}
    try:
        for ((index, _), _), (_, result) in zip(readable, predictor.iter_predict([s for _, s in readable])):
            results[index] = result
    except Exception:  # noqa: BLE001 - a failure of the whole batch: retry file by file
        results = {}
        for (index, _), source in readable:
            try:
                results[index] = predictor.predict(source)
            except Exception as error:  # noqa: BLE001
                results[index] = error
    for (index, path), source in zip(group, sources):
        result = source if isinstance(source, BaseException) else results[index]
        if isinstance(result, BaseException):
            rows.error(index, path, _error_text(result))
        else:
            rows.prediction(index, path, result)


def _timeline_rows(rows: _Rows, predictor, index: int, path: str, source) -> None:
    if isinstance(source, BaseException):
        rows.error(index, path, _error_text(source))
        return
    try:
        t = predictor.predict_timeline(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Exception as error:  # noqa: BLE001 - the file's error goes into its row
        rows.error(index, path, _error_text(error))
        return
    overall = t.overall()
    if not t.segments:  # no speech: one row for the whole recording
        rows.prediction(index, path, overall)
    for seg in t.segments:
        rows.prediction(index, path, seg, flags=overall.flags)


def table_to_parquet_bytes(table) -> bytes:
    """A result table as Parquet file bytes (zstd)."""
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()
