"""The scorer interface every model and baseline implements, so eval, compare and serve treat them alike.

A scorer turns pairs into a label distribution over the criteria's labels; the ranking score is the
expected gain under that distribution. It never raises on malformed model output: it records the
format error and still returns probabilities.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from genrel.criteria import Criteria
from genrel.data.pair import Pair


@dataclass
class Scored:
    """One scored pair. ``probabilities`` maps every label name of the criteria to p (sums to 1)."""

    label: str
    score: float
    probabilities: dict[str, float]
    reasoning: str | None = None
    verdicts: dict[str, str] = field(default_factory=dict)
    format_error: str | None = None
    reasoning_tokens: int = 0


def expected_gain(criteria: Criteria, probabilities: dict[str, float]) -> float:
    return float(sum(lab.gain * probabilities.get(lab.name, 0.0) for lab in criteria.labels))


def relevance_score(criteria: Criteria, score: float) -> float:
    """The ranking score mapped onto [0, 1]: expected gain ÷ max gain (for a scale whose lowest gain
    is not 0, (score - min gain) ÷ (max gain - min gain)). Same order as ``score``; what rerank APIs
    such as Cohere's call ``relevance_score``."""
    low, high = min(criteria.gains), max(criteria.gains)
    if high <= low:
        return 0.0
    return float(min(1.0, max(0.0, (score - low) / (high - low))))


def ranking(scores: Sequence[float]) -> list[int]:
    """Indices of ``scores`` best first; ties keep input order (every ranking route and ``rank()``)."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def argmax_label(probabilities: dict[str, float], criteria: Criteria) -> str:
    """Most probable label; ties go to the worse label (a conservative, deterministic choice)."""
    return max(criteria.label_names, key=lambda n: (probabilities.get(n, 0.0), -criteria.label_index(n)))


def label_distribution(log_scores: Sequence[float], temperature: float = 1.0) -> list[float]:
    """softmax(log_scores / temperature): the calibrated label distribution, in the order given.

    ``log_scores`` are unnormalised log-probabilities or logits, one per label; -inf is allowed (that
    label gets p = 0) and when every score is -inf the distribution is uniform."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    scaled = [s / temperature for s in log_scores]
    top = max(scaled)
    if top == -math.inf:
        return [1.0 / len(scaled)] * len(scaled)
    weights = [math.exp(s - top) for s in scaled]
    total = sum(weights)
    return [w / total for w in weights]


def scored_from_log_scores(
    criteria: Criteria, log_scores: Sequence[float], temperature: float = 1.0, **details
) -> Scored:
    """A :class:`Scored` from one log-score per criteria label (criteria order): calibrated
    probabilities, their argmax label and the expected gain. ``details`` fill the other fields."""
    probs = dict(zip(criteria.label_names, label_distribution(log_scores, temperature), strict=True))
    return Scored(
        label=argmax_label(probs, criteria), score=expected_gain(criteria, probs), probabilities=probs, **details
    )


def document_text(pair: Pair) -> str:
    """The document as one string for text-only models (cross-encoders, BM25): title, text, then
    ``name: value`` per extra field, one per line."""
    parts = [pair.title.strip()] if pair.title and pair.title.strip() else []
    parts.append(pair.text.strip())
    parts.extend(f"{name}: {str(value).strip()}" for name, value in (pair.fields or {}).items())
    return "\n".join(parts)


class Scorer(ABC):
    """Base class for every model and baseline that can judge pairs.

    ``temperature`` divides the label log-scores before the softmax (1.0 = uncalibrated); scorers
    whose probabilities come from log-scores honour it, and :func:`genrel.score.calibration.calibrate`
    fits it on a dev split."""

    criteria: Criteria
    name: str = "scorer"
    temperature: float = 1.0

    @abstractmethod
    def score_pairs(self, pairs: Sequence[Pair], *, explain: bool = False) -> list[Scored]:
        """Score pairs in order; one result per pair."""

    def score(self, query: str, documents: Sequence[Pair], *, explain: bool = False) -> list[Scored]:
        pairs = [d.model_copy(update={"query": query}) for d in documents]
        return self.score_pairs(pairs, explain=explain)
