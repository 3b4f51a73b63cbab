"""The training target of every student row: t = w · onehot(gold) + (1 − w) · q, with q the teacher's
soft label and w the row's label weight (docs/distillation.md), checked row by row with the row named
in the error."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from genrel.criteria import Criteria
from genrel.data.pair import Pair
from genrel.errors import DataError


def target_distributions(
    pairs: Sequence[Pair],
    criteria: Criteria,
    soft_labels: Sequence[dict[str, float] | None] | None,
    label_weights: Sequence[float] | None,
) -> np.ndarray:
    """[N, L] training targets t = w · onehot(gold) + (1 − w) · q, checked row by row."""
    names = criteria.label_names
    for what, values in (("soft_labels", soft_labels), ("label_weights", label_weights)):
        if values is not None and len(values) != len(pairs):
            raise DataError(f"{what} has {len(values)} entries for {len(pairs)} pairs", where=what)
    out = np.zeros((len(pairs), len(names)))
    for i, pair in enumerate(pairs):
        where = pair.source or f"row {pair.row_id}"
        soft = _soft_row(soft_labels[i] if soft_labels else None, names, where)
        gold = np.eye(len(names))[names.index(pair.label)] if pair.label is not None else None
        weight = label_weights[i] if label_weights is not None else (0.0 if soft is not None else 1.0)
        if not 0.0 <= weight <= 1.0:
            raise DataError(f"label weight {weight} is outside [0, 1]", where=where)
        if gold is None and (soft is None or weight > 0):
            raise DataError("the pair has no gold label to weigh", where=where, hint="give a soft label with weight 0")
        if soft is None and weight < 1:
            raise DataError("the pair has no soft label for the teacher part of its target", where=where)
        out[i] = (weight * gold if weight > 0 else 0) + ((1 - weight) * soft if weight < 1 else 0)
    return out


def _soft_row(soft: dict[str, float] | None, names: list[str], where: str) -> np.ndarray | None:
    if soft is None:
        return None
    unknown = sorted(set(soft) - set(names))
    if unknown:
        raise DataError(f"soft label names unknown labels {unknown} (labels: {', '.join(names)})", where=where)
    row = np.array([float(soft.get(n, 0.0)) for n in names])
    if (row < 0).any() or row.sum() <= 0:
        raise DataError(f"soft label {soft} needs non-negative probabilities with a positive sum", where=where)
    return row / row.sum()
