"""Temperature calibration and the shared label-distribution helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genrel.criteria import load_criteria
from genrel.data import Pair
from genrel.score.base import Scorer, label_distribution, scored_from_log_scores
from genrel.score.calibration import calibrate, fit_temperature, nll

TREC = load_criteria("trec-dl")


def synthetic(true_t: float, n: int = 4000, labels: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 3.0, size=(n, labels))  # [N, L]
    probs = np.exp(logits / true_t)
    probs /= probs.sum(1, keepdims=True)
    gold = np.array([rng.choice(labels, p=p) for p in probs])
    return logits, gold


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_a_known_temperature(true_t):
    logits, gold = synthetic(true_t)
    fitted = fit_temperature(logits, gold)
    assert fitted == pytest.approx(true_t, rel=0.1)
    assert nll(logits, gold, fitted) <= nll(logits, gold, 1.0) + 1e-9


def test_log_probabilities_give_the_same_temperature():
    logits, gold = synthetic(2.0)
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    assert fit_temperature(log_probs, gold) == pytest.approx(fit_temperature(logits, gold), rel=1e-4)


def test_fit_temperature_checks_shapes_and_handles_empty_and_minus_inf():
    with pytest.raises(ValueError, match="expected scores"):
        fit_temperature(np.zeros((3, 2)), [0, 1])
    assert fit_temperature(np.zeros((0, 4)), []) == 1.0
    logits, gold = synthetic(1.5, n=500)
    logits[:, 0] = -np.inf
    gold[gold == 0] = 1
    assert math.isfinite(fit_temperature(logits, gold))


def test_label_distribution():
    assert label_distribution([0.0, 0.0]) == [0.5, 0.5]
    p = label_distribution([0.0, -math.inf, math.log(3.0)])
    assert p == pytest.approx([0.25, 0.0, 0.75])
    assert label_distribution([1.0, 3.0], temperature=2.0) == pytest.approx(label_distribution([0.5, 1.5]))
    assert label_distribution([-math.inf, -math.inf]) == [0.5, 0.5]
    with pytest.raises(ValueError):
        label_distribution([0.0], temperature=0.0)


def test_scored_from_log_scores_is_consistent():
    s = scored_from_log_scores(TREC, [0.0, 1.0, 3.0, 2.0], format_error="no_label")
    assert s.label == "highly" and s.format_error == "no_label"
    assert sum(s.probabilities.values()) == pytest.approx(1.0)
    assert s.score == pytest.approx(sum(g * s.probabilities[n] for n, g in zip(TREC.label_names, TREC.gains)))


class _FixedLogits(Scorer):
    """A scorer whose log-scores are known: logits row i for pair i."""

    def __init__(self, logits):
        self.criteria, self.logits = TREC, logits

    def score_pairs(self, pairs, *, explain=False):
        return [scored_from_log_scores(TREC, self.logits[int(p.row_id)], self.temperature) for p in pairs]


def test_calibrate_sets_the_scorer_temperature():
    logits, gold = synthetic(2.0, n=2000)
    scorer = _FixedLogits(logits)
    pairs = [Pair(row_id=str(i), query="q", text="t", label=TREC.label_names[g]) for i, g in enumerate(gold)]
    t = calibrate(scorer, pairs)
    assert scorer.temperature == t == pytest.approx(2.0, rel=0.1)
