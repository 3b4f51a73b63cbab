"""The criteria schema: an ordered label scale, the reasoning steps and the team's business rules.

Criteria drive the prompt, the output grammar, the parser, the step verifier and the report; no other
module hard-codes a label. This module only describes and validates; it imports nothing heavy.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Label(BaseModel):
    """One grade of the scale. The list order is worst → best; ``gain`` is used for ranking (nDCG)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(description="Numeric grade as it appears in judged data (e.g. NIST 0..3).")
    name: str = Field(min_length=1, description="Name the model writes inside <label>…</label>.")
    gain: float = Field(description="Gain for ranking metrics and the expected-gain score.")
    means: str = Field(default="", description="What the grade means, written into the prompt.")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if v != v.strip() or any(c in v for c in "<>\"\n"):
            raise ValueError("label names may not contain <, >, quotes, newlines or surrounding spaces")
        return v


class Step(BaseModel):
    """A reasoning step: free analysis (no ``verdicts``) or a check with a closed verdict set.

    ``expect`` maps a gold label name to the verdict(s) consistent with it; a label missing from it
    makes the step unverifiable for examples with that gold label. ``provisional`` marks a judgment made
    before the business rules (docs/design.md, "Verification and the provisional rule").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", description="Identifier used in <step id=…>.")
    ask: str = Field(min_length=1, description="The question the step answers, written into the prompt.")
    verdicts: list[str] | None = Field(default=None, description="Closed verdict set; absent for a free step.")
    expect: dict[str, str | list[str]] | None = Field(
        default=None, description="Gold label name → consistent verdict(s)."
    )
    provisional: bool = Field(default=False, description="A judgment made before the business rules.")

    @field_validator("verdicts", "expect", mode="before")
    @classmethod
    def _yaml_booleans_are_words(cls, v):
        # YAML 1.1 reads bare yes/no as booleans; in a criteria file they are verdict words.
        return _words(v)

    @property
    def checked(self) -> bool:
        return self.verdicts is not None

    def expected(self, gold_label: str) -> frozenset[str] | None:
        """Verdicts consistent with ``gold_label``, or None when the step cannot be verified for it."""
        if self.expect is None or gold_label not in self.expect:
            return None
        value = self.expect[gold_label]
        return frozenset([value] if isinstance(value, str) else value)


class Criteria(BaseModel):
    """A complete criteria file. Validation is structural here; cross-field checks are in ``validate``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    language: Literal["en", "zh"] = Field(default="en", description="Language of the prompt's fixed text.")
    item: str = Field(default="document", description="What is judged: document, passage, product, note…")
    labels: list[Label]
    steps: list[Step] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list)
    grade_bins: list[tuple[float, str]] | None = Field(
        default=None,
        description="Map a numeric grade g to a label: the last (min, label) with g >= min. "
        "Without bins a numeric grade must equal a label id.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Criteria:
        problems = criteria_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- lookups -------------------------------------------------------------------------------
    @property
    def label_names(self) -> list[str]:
        return [lab.name for lab in self.labels]

    @property
    def gains(self) -> list[float]:
        return [lab.gain for lab in self.labels]

    def label_index(self, name: str) -> int:
        """Position of a label on the scale (0 = worst)."""
        return self.label_names.index(name)

    def label_by_id(self, grade_id: int) -> Label | None:
        return next((lab for lab in self.labels if lab.id == grade_id), None)

    def step_index(self, step_id: str) -> int:
        return [s.id for s in self.steps].index(step_id)

    @property
    def checked_steps(self) -> list[Step]:
        return [s for s in self.steps if s.checked]


def _words(v):
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, list):
        return [_words(x) for x in v]
    if isinstance(v, dict):
        return {_words(k): _words(x) for k, x in v.items()}
    return v


def criteria_problems(c: Criteria) -> list[str]:
    """Every cross-field problem, each naming its field; empty when the criteria are consistent."""
    problems: list[str] = []
    if not c.labels:
        problems.append("field 'labels': the label list is empty")
    names = [lab.name for lab in c.labels]
    ids = [lab.id for lab in c.labels]
    for field, values in (("name", names), ("id", ids)):
        dups = sorted({str(v) for v in values if values.count(v) > 1})
        if dups:
            problems.append(f"field 'labels': duplicate label {field} {', '.join(dups)}")
    step_ids = [s.id for s in c.steps]
    dups = sorted({s for s in step_ids if step_ids.count(s) > 1})
    if dups:
        problems.append(f"field 'steps': duplicate step id {', '.join(dups)}")
    for i, step in enumerate(c.steps):
        where = f"field 'steps[{i}]' (id {step.id})"
        if step.verdicts is None:
            if step.expect is not None:
                problems.append(f"{where}: 'expect' given but the step has no 'verdicts'")
            if step.provisional:
                problems.append(f"{where}: a free step cannot be provisional")
            continue
        if len(step.verdicts) < 2 or len(set(step.verdicts)) != len(step.verdicts):
            problems.append(f"{where}: 'verdicts' needs at least two distinct values")
        if any(v != v.strip() or not v or "<" in v or "\n" in v for v in step.verdicts):
            problems.append(f"{where}: verdicts must be non-empty, without '<', newlines or surrounding spaces")
        if not step.expect:
            problems.append(f"{where}: a checked step needs 'expect' (gold label → verdict)")
            continue
        for label, value in step.expect.items():
            if label not in names:
                problems.append(f"{where}: 'expect' names unknown label '{label}' (labels: {', '.join(names)})")
            values = [value] if isinstance(value, str) else value
            if not values:
                problems.append(f"{where}: 'expect.{label}' lists no verdict")
            for v in values:
                if v not in step.verdicts:
                    problems.append(
                        f"{where}: 'expect.{label}' verdict '{v}' is not in verdicts {step.verdicts}"
                    )
    if c.grade_bins is not None:
        mins = [m for m, _ in c.grade_bins]
        if mins != sorted(mins) or len(set(mins)) != len(mins):
            problems.append("field 'grade_bins': minimums must be strictly increasing")
        for _, label in c.grade_bins:
            if label not in names:
                problems.append(f"field 'grade_bins': unknown label '{label}'")
    return problems


def indistinguishable_labels(c: Criteria) -> list[tuple[str, str]]:
    """Pairs of labels that no checked step tells apart: a warning, since the steps cannot justify them."""
    pairs = []
    for i, a in enumerate(c.labels):
        for b in c.labels[i + 1 :]:
            verifiable = [s for s in c.checked_steps if s.expected(a.name) and s.expected(b.name)]
            if verifiable and all(s.expected(a.name) == s.expected(b.name) for s in verifiable):
                pairs.append((a.name, b.name))
    return pairs
