"""The scorer interface every model and baseline implements, so eval, compare and serve treat them alike.

A scorer turns pairs into a label distribution over the criteria's labels; the ranking score is the
expected gain under that distribution. It never raises on malformed model output: it records the
format error and still returns probabilities.
"""

from __future__ import annotations

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


def argmax_label(probabilities: dict[str, float], criteria: Criteria) -> str:
    """Most probable label; ties go to the worse label (a conservative, deterministic choice)."""
    return max(criteria.label_names, key=lambda n: (probabilities.get(n, 0.0), -criteria.label_index(n)))


class Scorer(ABC):
    """Base class for every model and baseline that can judge pairs."""

    criteria: Criteria
    name: str = "scorer"

    @abstractmethod
    def score_pairs(self, pairs: Sequence[Pair], *, explain: bool = False) -> list[Scored]:
        """Score pairs in order; one result per pair."""

    def score(self, query: str, documents: Sequence[Pair], *, explain: bool = False) -> list[Scored]:
        pairs = [d.model_copy(update={"query": query}) for d in documents]
        return self.score_pairs(pairs, explain=explain)
