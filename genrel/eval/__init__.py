"""Evaluation: score judged pairs into a run folder (predictions, metrics, report, plots) and compare
runs side by side. Metric definitions: :mod:`genrel.eval.metrics` and ``docs/evaluation.md``."""

from genrel.eval.compare import bootstrap_intervals, compare
from genrel.eval.predictions import PREDICTIONS_FILE, read_predictions
from genrel.eval.report import check_threshold, evaluate, metrics_from_predictions, threshold_index, write_report

__all__ = [
    "PREDICTIONS_FILE",
    "bootstrap_intervals",
    "check_threshold",
    "compare",
    "evaluate",
    "metrics_from_predictions",
    "read_predictions",
    "threshold_index",
    "write_report",
]
