"""Batch scoring of many files on Ray Data: resumable, loss-free (``emovox batch``).

- :func:`run_batch` -- a whole job: fix the input list in the output folder,
  skip finished shards, score the rest on an actor pool, write one atomic
  Parquet (and CSV) part per shard.
- :func:`expand_inputs` -- folders, globs, ``@list.txt``, CSV manifests,
  local paths and :mod:`pyarrow.fs` URIs -> the ordered input list.
- :func:`read_results` -- every part of an output folder as one Arrow table.
- :func:`score_files` -- one shard's work with a loaded predictor, no Ray.

Importing this package imports neither Ray nor pyarrow; Ray is started (or
joined) only when there is work to do. Install with ``pip install 'emovox[ray]'``.
"""

from __future__ import annotations

from emovox.batch.inputs import expand_inputs
from emovox.batch.job import DEFAULT_SHARD_SIZE, BatchSummary, run_batch
from emovox.batch.parts import read_results, result_schema
from emovox.batch.scoring import score_files

__all__ = [
    "run_batch",
    "BatchSummary",
    "DEFAULT_SHARD_SIZE",
    "expand_inputs",
    "read_results",
    "result_schema",
    "score_files",
]
