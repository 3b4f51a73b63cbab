"""Step verification: is each verdict of a completion right, wrong or unverifiable for a gold label?

Statuses are ``1`` right, ``0`` wrong, ``-1`` unverifiable (a free step, a missing verdict, or a gold label
the step's ``expect`` does not cover and no per-example gold verdict for the step). Per-example gold
verdicts override ``expect``. Provisional steps follow docs/design.md ("Verification and the provisional
rule"): a wrong provisional step followed by any right checked step is unverifiable, since the later
step corrected it.

This module works on verdict dicts, not on text: parsing is :mod:`genrel.grammar`'s job, turning
statuses into rewards or token masks is :mod:`genrel.rewards`' and :mod:`genrel.sam`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from genrel.criteria import Criteria, Step
from genrel.errors import DataError

RIGHT, WRONG, UNVERIFIABLE = 1, 0, -1


def step_status(
    criteria: Criteria,
    verdicts: dict[str, str],
    gold_label: str,
    gold_verdicts: dict[str, str] | None = None,
) -> list[int]:
    """One status per step of ``criteria.steps``, in order. Raises DataError for an unknown gold label
    or a gold verdict the criteria cannot hold."""
    check_gold(criteria, gold_label, gold_verdicts)
    raw = [_raw_status(step, verdicts, gold_label, gold_verdicts or {}) for step in criteria.steps]
    return [
        UNVERIFIABLE if step.provisional and status == WRONG and RIGHT in raw[i + 1 :] else status
        for i, (step, status) in enumerate(zip(criteria.steps, raw))
    ]


def _raw_status(step: Step, verdicts: dict[str, str], gold_label: str, gold_verdicts: dict[str, str]) -> int:
    verdict = verdicts.get(step.id)
    if not step.checked or verdict is None:
        return UNVERIFIABLE
    expected = frozenset([gold_verdicts[step.id]]) if step.id in gold_verdicts else step.expected(gold_label)
    if expected is None:
        return UNVERIFIABLE
    return RIGHT if verdict in expected else WRONG


def check_gold(criteria: Criteria, gold_label: str, gold_verdicts: dict[str, str] | None = None) -> None:
    """A :class:`DataError` for an unknown gold label or a gold verdict the criteria cannot hold."""
    gold_verdicts = gold_verdicts or {}
    if gold_label not in criteria.label_names:
        raise DataError(
            f"gold label '{gold_label}' is not a label of criteria '{criteria.name}'",
            hint=f"labels: {', '.join(criteria.label_names)}",
        )
    steps = {s.id: s for s in criteria.steps}
    for step_id, verdict in gold_verdicts.items():
        step = steps.get(step_id)
        if step is None or not step.checked:
            raise DataError(
                f"gold verdict for '{step_id}', which is not a checked step of criteria '{criteria.name}'",
                hint=f"checked steps: {', '.join(s.id for s in criteria.checked_steps)}",
            )
        if verdict not in step.verdicts:
            raise DataError(
                f"gold verdict '{verdict}' for step '{step_id}' is not one of {step.verdicts}"
            )


def consistent(criteria: Criteria, verdicts: dict[str, str], label: str) -> bool:
    """Whether the verdicts agree with ``label``: no step would be wrong if ``label`` were gold.

    Steps unverifiable for ``label`` are ignored, and so is a provisional step that a later step
    corrected, as in :func:`step_status`.
    """
    return WRONG not in step_status(criteria, verdicts, label)


def status_counts(criteria: Criteria, statuses: Iterable[Sequence[int]]) -> dict[str, tuple[int, int]]:
    """Checked step id → (right, verified) over many completions' statuses: the one per-step count that
    evaluation (:mod:`genrel.eval.metrics`) and training logs (:mod:`genrel.train.rl_trainer`) share."""
    checked = [i for i, s in enumerate(criteria.steps) if s.checked]
    right = dict.fromkeys(checked, 0)
    total = dict.fromkeys(checked, 0)
    for row in statuses:
        if len(row) != len(criteria.steps):
            raise ValueError(f"a status row has {len(row)} entries for {len(criteria.steps)} steps")
        for i in checked:
            total[i] += row[i] != UNVERIFIABLE
            right[i] += row[i] == RIGHT
    return {criteria.steps[i].id: (right[i], total[i]) for i in checked}
