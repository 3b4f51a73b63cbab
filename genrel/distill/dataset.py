"""The students' training set: teacher-labelled pairs merged with judged (gold) pairs, one target each.

A pair is matched across the two sources by ``(qid, docid)`` when both are known, else by
``(query, text)``. Its target distribution is ``w · onehot(gold) + (1 − w) · q`` (q: the teacher's soft
label), the same per-row mixing :func:`genrel.distill.targets.target_distributions` applies:

==================  ==========  ====================================
pair has            weight w    target
==================  ==========  ====================================
teacher label only  0           q
gold label only     1           onehot(gold)
both                gold_weight w · onehot(gold) + (1 − w) · q
==================  ==========  ====================================

The pool's own labels (``gold`` in the labels file) are never used as targets: labelling treats the
pool as unlabelled. This module imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from genrel.data.pair import Pair
from genrel.distill.labels_file import TeacherLabel


@dataclass
class DistillSet:
    """Parallel lists, one entry per training pair. ``pairs[i].label`` is the gold label or None."""

    pairs: list[Pair]
    soft_labels: list[dict[str, float] | None]
    label_weights: list[float]
    explanations: list[str | None]
    explanation_labels: list[str | None]

    def __len__(self) -> int:
        return len(self.pairs)

    def summary(self) -> dict[str, int]:
        soft = sum(s is not None for s in self.soft_labels)
        gold = sum(p.label is not None for p in self.pairs)
        both = sum(s is not None and p.label is not None for s, p in zip(self.soft_labels, self.pairs))
        return {"pairs": len(self), "teacher": soft, "gold": gold, "both": both,
                "explanations": sum(e is not None for e in self.explanations)}


def pair_key(pair: Pair) -> tuple[str, str, str]:
    if pair.qid is not None and pair.docid is not None:
        return ("id", pair.qid, pair.docid)
    return ("text", pair.query, pair.text)


def build_distill_set(teacher: Sequence[TeacherLabel], gold: Sequence[Pair], gold_weight: float) -> DistillSet:
    """Teacher rows first (in file order), with the gold label of their match if any, then the gold
    pairs no teacher row matched."""
    gold_by_key: dict[tuple[str, str, str], Pair] = {}
    for pair in gold:
        if pair.label is not None:
            gold_by_key.setdefault(pair_key(pair), pair)
    out = DistillSet([], [], [], [], [])
    matched: set[tuple[str, str, str]] = set()
    for row in teacher:
        key = pair_key(row.pair)
        match = gold_by_key.get(key)
        if match is not None:
            matched.add(key)
        out.pairs.append(row.pair.model_copy(update={"label": match.label if match else None}))
        out.soft_labels.append(row.soft_label)
        out.label_weights.append(gold_weight if match else 0.0)
        out.explanations.append(row.reasoning if row.reasoning_label else None)
        out.explanation_labels.append(row.reasoning_label if row.reasoning else None)
    for pair in gold:
        if pair.label is not None and pair_key(pair) not in matched:
            matched.add(pair_key(pair))  # a duplicated gold pair is taught once
            out.pairs.append(pair)
            out.soft_labels.append(None)
            out.label_weights.append(1.0)
            out.explanations.append(None)
            out.explanation_labels.append(None)
    return out
