"""Query-disjoint splits: every pair of a query lands in the same split, so no split sees another's queries."""

from __future__ import annotations

import math
import random

from genrel.data.pair import Pair
from genrel.errors import ConfigError

DEFAULT_FRACTIONS = {"train": 0.8, "dev": 0.2}


def split_by_query(
    pairs: list[Pair], fractions: dict[str, float] | None = None, seed: int = 0
) -> dict[str, list[Pair]]:
    """Split pairs by ``Pair.query_key``. ``fractions`` (summing to 1) share out the *queries*, by
    largest remainder; the same pairs and seed give the same split whatever their order. Pairs keep
    their input order within a split."""
    fractions = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
    if not fractions or any(f < 0 for f in fractions.values()) or not math.isclose(sum(fractions.values()), 1.0):
        raise ConfigError(f"split fractions must be >= 0 and sum to 1, got {fractions}", where="fractions")
    keys = sorted({p.query_key for p in pairs})
    random.Random(seed).shuffle(keys)
    counts = _shares(len(keys), fractions)
    assignment: dict[str, str] = {}
    start = 0
    for name, count in counts.items():
        for key in keys[start : start + count]:
            assignment[key] = name
        start += count
    splits: dict[str, list[Pair]] = {name: [] for name in fractions}
    for pair in pairs:
        splits[assignment[pair.query_key]].append(pair)
    return splits


def _shares(total: int, fractions: dict[str, float]) -> dict[str, int]:
    """Integer counts summing to ``total``, proportional to ``fractions`` (largest remainder)."""
    exact = {name: total * f for name, f in fractions.items()}
    counts = {name: math.floor(x) for name, x in exact.items()}
    order = sorted(fractions, key=lambda n: (-(exact[n] - counts[n]), list(fractions).index(n)))
    for name in order[: total - sum(counts.values())]:
        counts[name] += 1
    return counts
