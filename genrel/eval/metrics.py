"""Evaluation metrics: pure functions over arrays of label *indices* (0 = worst label of the criteria),
probabilities and per-row fields. scikit-learn computes every metric it has; the ranking metrics
(nDCG, MAP, MRR, recall) are trec_eval's, in :mod:`genrel.eval.ranking`.

This module reads no files and knows no scorer; :mod:`genrel.eval.report` turns ``predictions.jsonl``
rows into these arrays. Every definition here is also written in ``docs/evaluation.md``, precisely
enough for an independent checker to recompute a report from ``predictions.jsonl``.

Conventions shared by every function:

* ``gold`` and ``pred`` are label indices on the criteria's scale (position in ``criteria.labels``);
  the predicted label is the row's ``label`` (the scorer's argmax of ``probabilities``).
* An undefined value (no rows, one class only, nothing verified) is ``nan``; the report writes it as
  JSON ``null``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from genrel.criteria import Criteria
from genrel.verify import status_counts, step_status

NAN = float("nan")
ECE_BINS = 10


def accuracy(gold: Sequence[int], pred: Sequence[int]) -> float:
    """Share of rows whose predicted label equals the gold label (``sklearn.metrics.accuracy_score``)."""
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(gold, pred)) if len(gold) else NAN


def macro_f1(gold: Sequence[int], pred: Sequence[int]) -> float:
    """Unweighted mean of per-class F1 over the labels that occur in ``gold`` or ``pred``
    (``sklearn.metrics.f1_score(average="macro", zero_division=0)`` with its default label set):
    a label that is neither gold nor predicted anywhere is not a class of this evaluation."""
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, average="macro", zero_division=0)) if len(gold) else NAN


def macro_f1_from_confusion(confusion: np.ndarray) -> float:
    """:func:`macro_f1` from a confusion matrix (rows gold, columns predicted); the bootstrap uses it
    because resampled confusions are cheap to sum."""
    confusion = np.asarray(confusion, dtype=np.float64)  # [L, L]
    tp = np.diag(confusion)  # [L]
    gold_n, pred_n = confusion.sum(axis=1), confusion.sum(axis=0)  # [L], [L]
    present = (gold_n + pred_n) > 0
    if not present.any():
        return NAN
    denom = gold_n + pred_n  # 2·tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean())


def per_class(gold: Sequence[int], pred: Sequence[int], label_names: Sequence[str]) -> dict[str, dict]:
    """Label name → precision, recall, F1 and support (gold count), for every label in criteria order
    (``sklearn.metrics.precision_recall_fscore_support(labels=range(L), zero_division=0)``)."""
    from sklearn.metrics import precision_recall_fscore_support

    n = len(label_names)
    if not len(gold):
        return {name: {"precision": NAN, "recall": NAN, "f1": NAN, "support": 0} for name in label_names}
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=list(range(n)), zero_division=0)
    return {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(label_names)
    }


def quadratic_kappa(gold: Sequence[int], pred: Sequence[int], n_labels: int) -> float:
    """Cohen's kappa with quadratic weights over the whole scale
    (``sklearn.metrics.cohen_kappa_score(weights="quadratic", labels=range(L))``); nan when undefined
    (e.g. gold and predictions are one and the same single label)."""
    from sklearn.metrics import cohen_kappa_score

    if not len(gold):
        return NAN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns and returns nan when kappa is undefined
        value = cohen_kappa_score(gold, pred, weights="quadratic", labels=list(range(n_labels)))
    return float(value)


def scale_mae(gold: Sequence[int], pred: Sequence[int]) -> float:
    """Mean absolute distance between predicted and gold label *positions* on the scale
    (``sklearn.metrics.mean_absolute_error`` on indices, not on ids or gains)."""
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(gold, pred)) if len(gold) else NAN


def binary_scores(
    gold: Sequence[int], pred: Sequence[int], probabilities: np.ndarray, threshold_index: int
) -> dict[str, float | int]:
    """Relevant-vs-not metrics at a threshold label.

    relevant = gold index ≥ ``threshold_index``; predicted relevant = predicted index ≥ it;
    p(relevant) = sum of the probabilities of the labels at or above it (``probabilities`` is
    [N, L] in criteria order). Returns precision, recall, F1 (sklearn, ``zero_division=0``), ROC-AUC
    of p(relevant) (``sklearn.metrics.roc_auc_score``; nan when the gold has one class only) and the
    number of gold-relevant rows."""
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    y_true = np.asarray(gold) >= threshold_index  # [N]
    if not len(y_true):
        return {"precision": NAN, "recall": NAN, "f1": NAN, "roc_auc": NAN, "positives": 0}
    y_pred = np.asarray(pred) >= threshold_index  # [N]
    p_relevant = np.asarray(probabilities, dtype=np.float64)[:, threshold_index:].sum(axis=1)  # [N]
    p, r, f, _ = precision_recall_fscore_support(
        y_true, y_pred, average="binary", pos_label=True, zero_division=0
    )
    auc = float(roc_auc_score(y_true, p_relevant)) if len(set(y_true.tolist())) == 2 else NAN
    return {"precision": float(p), "recall": float(r), "f1": float(f), "roc_auc": auc, "positives": int(y_true.sum())}


def reliability_bins(confidence: Sequence[float], correct: Sequence[bool], n_bins: int = ECE_BINS) -> list[dict]:
    """Equal-width confidence bins on [0, 1]: row i goes to bin ``min(floor(conf_i · n_bins), n_bins − 1)``
    (each bin holds ``lo ≤ conf < hi``; the last one also holds 1.0). Per bin: ``lo``, ``hi``, ``count``,
    mean ``confidence`` and ``accuracy`` (share correct), both nan for an empty bin."""
    conf = np.asarray(confidence, dtype=np.float64)  # [N]
    hits = np.asarray(correct, dtype=np.float64)  # [N]
    index = np.minimum(np.floor(conf * n_bins).astype(int), n_bins - 1)  # [N]
    bins = []
    for b in range(n_bins):
        members = index == b
        count = int(members.sum())
        bins.append(
            {
                "lo": b / n_bins,
                "hi": (b + 1) / n_bins,
                "count": count,
                "confidence": float(conf[members].mean()) if count else NAN,
                "accuracy": float(hits[members].mean()) if count else NAN,
            }
        )
    return bins


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], n_bins: int = ECE_BINS) -> float:
    """ECE = Σ_b (n_b / N) · |accuracy_b − confidence_b| over the :func:`reliability_bins`, where the
    confidence of a row is the probability of its predicted label (the top-label confidence) and
    correct means predicted label = gold."""
    if not len(confidence):
        return NAN
    total = len(confidence)
    bins = [b for b in reliability_bins(confidence, correct, n_bins) if b["count"]]
    return float(sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in bins))


def step_verdict_counts(
    criteria: Criteria,
    verdicts: Sequence[dict[str, str] | None],
    gold: Sequence[str],
    gold_verdicts: Sequence[dict[str, str] | None] | None = None,
) -> dict[str, tuple[int, int]]:
    """Checked step id → (right, verified) over rows: each row's predicted verdicts are judged by
    :func:`genrel.verify.step_status` against its gold label name and per-row gold verdicts (which
    override ``expect``; the provisional rule applies). A missing verdict, a step the gold label is
    not in ``expect`` for, and a corrected provisional step are unverifiable and not counted."""
    gold_verdicts = gold_verdicts if gold_verdicts is not None else [None] * len(gold)
    statuses = [
        step_status(criteria, row_verdicts or {}, row_gold, row_gold_verdicts)
        for row_verdicts, row_gold, row_gold_verdicts in zip(verdicts, gold, gold_verdicts, strict=True)
    ]
    return status_counts(criteria, statuses)


def step_accuracies(counts: dict[str, tuple[int, int]]) -> tuple[dict[str, float], float]:
    """Per checked step, right ÷ verified (nan when never verified); and the pooled accuracy over all
    steps (Σ right ÷ Σ verified)."""
    per_step = {step_id: right / total if total else NAN for step_id, (right, total) in counts.items()}
    right_all = sum(r for r, _ in counts.values())
    total_all = sum(t for _, t in counts.values())
    return per_step, (right_all / total_all if total_all else NAN)


def format_error_rate(format_errors: Sequence[str | None]) -> float:
    """Share of rows whose ``format_error`` is not null (the model's text broke the grammar; the row
    still has probabilities and counts in every other metric)."""
    return sum(e is not None for e in format_errors) / len(format_errors) if len(format_errors) else NAN


def mean_reasoning_tokens(tokens: Sequence[int]) -> float:
    """Mean number of generated reasoning tokens per row (0 for rows scored without reasoning)."""
    return float(np.mean(tokens)) if len(tokens) else NAN


def confusion(gold: Sequence[int], pred: Sequence[int], n_labels: int) -> list[list[int]]:
    """Counts, rows = gold label, columns = predicted label, both in criteria order
    (``sklearn.metrics.confusion_matrix(labels=range(L))``)."""
    from sklearn.metrics import confusion_matrix

    if not len(gold):
        return [[0] * n_labels for _ in range(n_labels)]
    return confusion_matrix(gold, pred, labels=list(range(n_labels))).astype(int).tolist()
