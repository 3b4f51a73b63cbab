"""``data.sample``: which label mix an RL stage trains on, drawn reproducibly from the judged pairs.

The paper's first RL stage trains on a *label-uniform* sample of the judged data (every grade equally
often, so a model that leans towards the majority grade is pushed off it), its second on a random
sample. :func:`sample_indices` draws either, or any mix given as label weights, with a seed, and returns
the counts it drew, which the run folder records (:data:`MIX_FILE`). Pure Python: no torch, no files.

Forms (YAML): ``sample: as_is`` (default: the pairs as read), ``sample: label_uniform``,
``sample: {label_weights: {irrelevant: 2, perfect: 1}}``, or the long form
``sample: {mode: label_uniform, size: 4000, replace: false, seed: 0}``.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from genrel.criteria import Criteria
from genrel.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

MIX_FILE = "data_mix.json"


class SampleSettings(BaseModel):
    """How the training pairs are drawn from the judged data."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["as_is", "label_uniform", "label_weights"] = Field(
        default="as_is",
        description="as_is: every pair as read; label_uniform: each label present equally often; "
        "label_weights: labels in the proportions of `label_weights`.",
    )
    label_weights: dict[str, float] | None = Field(
        default=None, description="Label name -> relative weight (mode label_weights); unnamed labels get 0."
    )
    size: int | None = Field(
        default=None, ge=1,
        description="Pairs to draw. Default: as many as the mix allows without repeating a pair.",
    )
    replace: bool = Field(
        default=False, description="Repeat pairs of a label that has fewer than its share (else an error)."
    )
    seed: int | None = Field(default=None, description="Sampling seed; default: the stage's seed.")

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"mode": value}
        if isinstance(value, dict) and "label_weights" in value and "mode" not in value:
            return {**value, "mode": "label_weights"}
        return value

    @model_validator(mode="after")
    def _weights_match_mode(self) -> SampleSettings:
        if self.mode == "label_weights":
            if not self.label_weights:
                raise ValueError("field 'sample.label_weights': needed for mode label_weights")
            if any(w < 0 for w in self.label_weights.values()) or not any(w > 0 for w in self.label_weights.values()):
                raise ValueError("field 'sample.label_weights': weights must be >= 0, at least one > 0")
        elif self.label_weights is not None:
            raise ValueError(f"field 'sample.label_weights': only for mode label_weights, not {self.mode}")
        return self


def sample_indices(labels: Sequence[str | None], criteria: Criteria, settings: SampleSettings,
                   seed: int) -> tuple[list[int], dict[str, Any]]:
    """(indices into ``labels`` to train on, the mix record), ``labels`` being each candidate's gold
    label. The record holds the mode, seed, candidates per label and drawn pairs per label (criteria
    order, zeros included).

    ``as_is`` keeps every candidate in its order (``size`` takes a seeded random subset). The weighted
    modes split ``size`` over labels by largest remainder (a seeded random order of the drawn pairs);
    without ``size`` they draw the largest sample the weights allow without repeating a pair. A
    candidate without a gold label cannot be placed in a mix, so there it is an error."""
    seed = settings.seed if settings.seed is not None else seed
    rng = random.Random(seed)
    available = Counter(labels)
    if settings.mode == "as_is":
        drawn = list(range(len(labels)))
        if settings.size is not None and settings.size < len(drawn):
            drawn = sorted(rng.sample(drawn, settings.size))
    else:
        weights = _weights(criteria, settings, available)
        by_label = {name: [i for i, label in enumerate(labels) if label == name] for name in weights}
        counts = _allocate(weights, available, settings.size, settings.replace)
        drawn = []
        for name, n in counts.items():
            group = by_label[name]
            drawn += rng.choices(group, k=n) if n > len(group) else rng.sample(group, n)
        rng.shuffle(drawn)
    trained = Counter(labels[i] for i in drawn)
    names = [*criteria.label_names, *sorted(k for k in available if k is not None and k not in criteria.label_names)]
    record = {
        "mode": settings.mode,
        "seed": seed,
        "label_weights": settings.label_weights,
        "candidates": {name: available.get(name, 0) for name in names},
        "trained": {name: trained.get(name, 0) for name in names},
        "n": len(drawn),
    }
    return drawn, record


def _weights(criteria: Criteria, settings: SampleSettings, available: Counter) -> dict[str, float]:
    """Label -> weight > 0 over the labels the mix draws from."""
    if None in available:
        raise DataError(f"{available[None]} pair(s) have no gold label: a label mix needs every pair judged")
    if settings.mode == "label_uniform":
        present = [name for name in criteria.label_names if available.get(name)]
        missing = [name for name in criteria.label_names if not available.get(name)]
        if missing:
            logger.warning("label_uniform: no pair has label(s) %s; sampling the others uniformly", ", ".join(missing))
        return dict.fromkeys(present, 1.0)
    unknown = sorted(set(settings.label_weights or {}) - set(criteria.label_names))
    if unknown:
        raise ConfigError(
            f"label(s) {', '.join(unknown)} not in criteria '{criteria.name}'", where="sample.label_weights",
            hint=f"labels: {', '.join(criteria.label_names)}",
        )
    weights = {name: w for name, w in (settings.label_weights or {}).items() if w > 0}
    empty = [name for name in weights if not available.get(name)]
    if empty:
        raise DataError(f"label(s) {', '.join(empty)} have weight > 0 but no pair", where="sample.label_weights")
    return {name: weights[name] for name in criteria.label_names if name in weights}


def _allocate(weights: dict[str, float], available: Counter, size: int | None, replace: bool) -> dict[str, int]:
    """Pairs per label: ``size`` split by largest remainder; without ``size`` the largest total whose
    shares every label can fill without repeats."""
    total_weight = sum(weights.values())
    share = {name: w / total_weight for name, w in weights.items()}
    if size is None:
        size = int(min(available[name] / s for name, s in share.items()) + 1e-9)
    exact = {name: size * s for name, s in share.items()}
    counts = {name: int(x) for name, x in exact.items()}
    for name in sorted(exact, key=lambda n: counts[n] - exact[n])[: size - sum(counts.values())]:
        counts[name] += 1
    short = {name: (n, available[name]) for name, n in counts.items() if n > available[name]}
    if short and not replace:
        detail = ", ".join(f"{name} needs {n}, has {have}" for name, (n, have) in short.items())
        raise DataError(f"not enough pairs for the mix ({detail})", where="sample",
                        hint="lower sample.size, or set sample.replace=true to repeat pairs")
    return counts
