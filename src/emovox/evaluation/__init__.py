"""Honest evaluation: protocols, metrics, the experiment runner and reports.

Speaker-independent protocols first (leave-one-speaker-out, speaker k-fold,
cross-corpus); a random split only to compare with systems that report one.
UAR (unweighted average recall) is the headline metric, accuracy beside it.
See ``DESIGN.md`` ("Honest evaluation").

Plotting (matplotlib) lives in :mod:`emovox.evaluation.plots` and is imported
only when a report is written.
"""

from __future__ import annotations

from emovox.evaluation.experiment import (
    EvaluationSpec,
    FoldData,
    FoldOutput,
    evaluate,
    register_model_resolver,
    resolve_model,
    run_experiment,
)
from emovox.evaluation.metrics import SUMMARY_METRICS, compute_metrics, confusion_matrix, summarize_folds
from emovox.evaluation.protocols import (
    PROTOCOLS,
    Split,
    check_speaker_disjoint,
    cross_corpus,
    leave_one_speaker_out,
    random_stratified,
    speaker_kfold,
    speaker_validation_split,
)
from emovox.evaluation.report import format_summary, write_report

__all__ = [
    "PROTOCOLS",
    "SUMMARY_METRICS",
    "EvaluationSpec",
    "FoldData",
    "FoldOutput",
    "Split",
    "check_speaker_disjoint",
    "compute_metrics",
    "confusion_matrix",
    "cross_corpus",
    "evaluate",
    "format_summary",
    "leave_one_speaker_out",
    "random_stratified",
    "register_model_resolver",
    "resolve_model",
    "run_experiment",
    "speaker_kfold",
    "speaker_validation_split",
    "summarize_folds",
    "write_report",
]
