"""Every metric of genrel.eval.metrics against scikit-learn, and nDCG / ECE against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from genrel.criteria import load_criteria
from genrel.eval import metrics as m

GOLD = [0, 1, 2, 3, 3, 2, 1, 0, 2, 3]
PRED = [0, 2, 2, 3, 1, 2, 1, 1, 0, 3]
L = 4


def _probs(pred, sure=0.7):
    rows = np.full((len(pred), L), (1 - sure) / (L - 1))
    rows[np.arange(len(pred)), pred] = sure
    return rows


def test_accuracy_and_macro_f1_match_sklearn():
    assert m.accuracy(GOLD, PRED) == pytest.approx(skm.accuracy_score(GOLD, PRED)) == pytest.approx(0.6)
    assert m.macro_f1(GOLD, PRED) == pytest.approx(skm.f1_score(GOLD, PRED, average="macro"))


def test_macro_f1_averages_only_labels_that_occur():
    gold, pred = [0, 0, 1], [0, 1, 1]  # label 2 and 3 neither gold nor predicted
    assert m.macro_f1(gold, pred) == pytest.approx(np.mean(skm.f1_score(gold, pred, labels=[0, 1], average=None)))


@pytest.mark.parametrize(("gold", "pred"), [(GOLD, PRED), ([0, 0, 1], [0, 1, 1]), ([3, 3], [3, 3]), ([1, 2], [0, 3])])
def test_macro_f1_from_confusion_equals_macro_f1(gold, pred):
    cm = np.array(m.confusion(gold, pred, L))
    assert m.macro_f1_from_confusion(cm) == pytest.approx(m.macro_f1(gold, pred))


def test_per_class_in_criteria_order_with_zero_division_0():
    names = ["a", "b", "c", "d"]
    gold, pred = [0, 0, 1, 1], [0, 1, 1, 1]  # c, d never occur
    result = m.per_class(gold, pred, names)
    assert list(result) == names
    p, r, f, s = skm.precision_recall_fscore_support(gold, pred, labels=[0, 1, 2, 3], zero_division=0)
    for i, name in enumerate(names):
        assert result[name] == {"precision": pytest.approx(p[i]), "recall": pytest.approx(r[i]),
                                "f1": pytest.approx(f[i]), "support": s[i]}
    assert result["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_quadratic_kappa_and_mae_on_indices():
    assert m.quadratic_kappa(GOLD, PRED, L) == pytest.approx(
        skm.cohen_kappa_score(GOLD, PRED, weights="quadratic", labels=[0, 1, 2, 3])
    )
    assert m.scale_mae(GOLD, PRED) == pytest.approx(np.mean(np.abs(np.array(GOLD) - PRED)))
    assert m.scale_mae(GOLD, PRED) == pytest.approx(0.6)  # |1|+|2|+|1|+|2| = 6 over 10
    assert math.isnan(m.quadratic_kappa([2, 2], [2, 2], L))  # undefined, not an exception


def test_binary_scores_at_threshold():
    probs = _probs(PRED)
    result = m.binary_scores(GOLD, PRED, probs, threshold_index=2)
    y_true, y_pred = np.array(GOLD) >= 2, np.array(PRED) >= 2
    assert result["precision"] == pytest.approx(skm.precision_score(y_true, y_pred))
    assert result["recall"] == pytest.approx(skm.recall_score(y_true, y_pred))
    assert result["f1"] == pytest.approx(skm.f1_score(y_true, y_pred))
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, probs[:, 2:].sum(axis=1)))
    assert result["positives"] == 6


def test_binary_auc_is_nan_with_one_gold_class():
    result = m.binary_scores([3, 3], [3, 2], _probs([3, 2]), threshold_index=2)
    assert math.isnan(result["roc_auc"])
    assert result["recall"] == 1.0


def test_ece_hand_case():
    confidence = [0.95, 0.85, 0.55, 0.52, 0.3]
    correct = [True, False, True, False, True]
    # Bins 9, 8, 5, 5, 3: (|1-.95| + |0-.85| + 2·|.5-.535| + |1-.3|) / 5
    assert m.expected_calibration_error(confidence, correct) == pytest.approx((0.05 + 0.85 + 0.07 + 0.7) / 5)
    bins = m.reliability_bins(confidence, correct)
    assert [b["count"] for b in bins] == [0, 0, 0, 1, 0, 2, 0, 0, 1, 1]
    assert bins[5]["confidence"] == pytest.approx(0.535) and bins[5]["accuracy"] == 0.5
    assert m.reliability_bins([1.0], [True])[9]["count"] == 1  # 1.0 falls in the last bin


def test_step_verdict_counts_use_verify():
    crit = load_criteria("trec-dl")
    verdicts = [
        {"topic": "yes", "answer": "yes", "exact": "no"},  # gold highly: all right
        {"topic": "yes", "answer": "yes", "exact": "yes"},  # gold related: answer, exact wrong
        {},  # no verdicts: unverifiable
        {"topic": "no", "answer": "no", "exact": "no"},  # gold perfect, but gold verdict topic=no
    ]
    gold = ["highly", "related", "perfect", "perfect"]
    counts = m.step_verdict_counts(crit, verdicts, gold, [None, None, None, {"topic": "no"}])
    assert counts == {"topic": (3, 3), "answer": (1, 3), "exact": (1, 3)}
    per_step, pooled = m.step_accuracies(counts)
    assert per_step["answer"] == pytest.approx(1 / 3)
    assert pooled == pytest.approx(5 / 9)
    assert math.isnan(m.step_accuracies({"topic": (0, 0)})[0]["topic"])


def test_format_errors_tokens_and_confusion():
    assert m.format_error_rate([None, "no_label", None, "malformed"]) == 0.5
    assert m.mean_reasoning_tokens([10, 0, 20]) == 10.0
    assert m.confusion(GOLD, PRED, L) == skm.confusion_matrix(GOLD, PRED, labels=[0, 1, 2, 3]).tolist()


def test_empty_inputs_are_nan_not_errors():
    assert math.isnan(m.accuracy([], []))
    assert math.isnan(m.macro_f1([], []))
    assert math.isnan(m.expected_calibration_error([], []))
    assert m.confusion([], [], 2) == [[0, 0], [0, 0]]

