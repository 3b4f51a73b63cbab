"""``LabelHead``: a calibrated map from one relevance score to the criteria's label distribution.

The sentence-transformers students rank by a single number (a bi-encoder's cosine, a cross-encoder's
score); the criteria want a distribution over their labels. The head is a multinomial logistic
regression on that one number (standardised), fitted by maximum likelihood on held-out judged pairs:

    log p(label k | s) = w_k · z + b_k + const,   z = (s − mean) / std

Soft targets (a teacher's distribution, or a gold/teacher mix) are fitted exactly by giving each pair
one weighted row per label (weight = its target probability). Maximum likelihood on data the encoder
was not trained on is what makes the probabilities calibrated; the head never changes the ranking,
which stays the score's. A label no training row has gets probability 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

REGULARISATION_C = 100.0  # near-unregularised: 2·L parameters on hundreds of rows


class LabelHead:
    """Per-label weight and bias on the standardised score (see the module docstring)."""

    def __init__(self, weights: Sequence[float], biases: Sequence[float], mean: float, std: float):
        self.weights = np.asarray(weights, dtype=np.float64)  # [L]
        self.biases = np.asarray(biases, dtype=np.float64)  # [L], -inf for labels never seen
        self.mean, self.std = float(mean), float(std)

    @classmethod
    def fit(cls, scores: Sequence[float], targets: np.ndarray) -> LabelHead:
        """Fit on ``scores`` [N] and target distributions ``targets`` [N, L] (rows sum to 1)."""
        from sklearn.linear_model import LogisticRegression

        s = np.asarray(scores, dtype=np.float64)  # [N]
        t = np.asarray(targets, dtype=np.float64)  # [N, L]
        n_labels = t.shape[1]
        mean, std = float(s.mean()), float(s.std()) or 1.0
        z = (s - mean) / std
        rows, labels = np.nonzero(t > 0)  # one weighted row per (pair, label with mass)
        present = np.unique(labels)
        weights, biases = np.zeros(n_labels), np.full(n_labels, -np.inf)
        if len(present) == 1:
            biases[present[0]] = 0.0
            return cls(weights, biases, mean, std)
        model = LogisticRegression(C=REGULARISATION_C, max_iter=1000)
        model.fit(z[rows, None], labels, sample_weight=t[rows, labels])
        coef, intercept = model.coef_[:, 0], model.intercept_
        if len(present) == 2:  # sklearn's binary form: one logit for the second class
            coef, intercept = np.array([0.0, coef[0]]), np.array([0.0, intercept[0]])
        weights[present], biases[present] = coef, intercept
        return cls(weights, biases, mean, std)

    def log_scores(self, scores: Sequence[float]) -> np.ndarray:
        """[N, L] unnormalised log-probabilities (softmax them; -inf for unseen labels)."""
        z = (np.asarray(scores, dtype=np.float64) - self.mean) / self.std  # [N]
        return z[:, None] * self.weights[None, :] + self.biases[None, :]

    def to_dict(self) -> dict[str, Any]:
        finite = [b if np.isfinite(b) else None for b in self.biases]
        return {"weights": self.weights.tolist(), "biases": finite, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelHead:
        biases = [-np.inf if b is None else b for b in data["biases"]]
        return cls(data["weights"], biases, data["mean"], data["std"])
