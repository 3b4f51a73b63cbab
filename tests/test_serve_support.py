"""Deterministic scorers that the served process imports through ``--model py:test_serve_support:...``.

No tests here. ``keyword_scorer`` judges by word overlap between query and document (no model), so the
HTTP tests can check exact results. Documents can misbehave on purpose: text containing ``POISON``
makes the scorer raise, ``NAN`` makes it return a NaN score. ``GENREL_TEST_SCORER_DELAY_S`` adds a
sleep per scorer call (graceful-shutdown test).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Sequence

from genrel.criteria import load_criteria
from genrel.data.pair import Pair
from genrel.score.base import Scored, Scorer, argmax_label, expected_gain

_WORD = re.compile(r"\w+")


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def overlap_probabilities(query: str, document: str, label_names: list[str]) -> dict[str, float]:
    """A distribution peaked at the label whose position matches the share of query words found."""
    q = words(query)
    share = len(q & words(document)) / len(q) if q else 0.0
    top = len(label_names) - 1
    logits = [-2.0 * abs(i - top * share) for i in range(len(label_names))]
    z = sum(math.exp(x) for x in logits)
    return {name: math.exp(x) / z for name, x in zip(label_names, logits)}


class KeywordScorer(Scorer):
    name = "keyword-overlap"

    def __init__(self, delay_s: float = 0.0):
        self.criteria = load_criteria("trec-dl")
        self.delay_s = delay_s

    def score_pairs(self, pairs: Sequence[Pair], *, explain: bool = False) -> list[Scored]:
        if self.delay_s:
            time.sleep(self.delay_s)
        out = []
        for pair in pairs:
            if "POISON" in pair.text:
                raise RuntimeError(f"poisoned document {pair.row_id}")
            document = f"{pair.title or ''} {pair.text}"
            probs = overlap_probabilities(pair.query, document, self.criteria.label_names)
            score = float("nan") if "NAN" in pair.text else expected_gain(self.criteria, probs)
            found = sorted(words(pair.query) & words(document))
            out.append(
                Scored(
                    label=argmax_label(probs, self.criteria),
                    score=score,
                    probabilities=probs,
                    reasoning=f"query words found: {', '.join(found) or 'none'}" if explain else None,
                    verdicts={"topic": "yes" if found else "no"} if explain else {},
                )
            )
        return out


def keyword_scorer() -> KeywordScorer:
    return KeywordScorer(delay_s=float(os.environ.get("GENREL_TEST_SCORER_DELAY_S", "0")))
