"""Rewards for one completion against its gold label: outcome, ordinal partial credit, format, step share.

    reward = outcome_weight                                 when the label is right
           = ordinal_weight * ordinal_credit(pred, gold)    when it is wrong
           + step_weight * step_reward(statuses)            (λ of docs/design.md, 0 by default)
    reward = -format_penalty                                when the completion does not parse

The defaults are the paper's: 1 for the exact grade, 0 otherwise, 0 for a bad format. Pure functions
over parsed completions and criteria; the trainer wraps them (TRL logs reward functions by name).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from genrel.criteria import Criteria
from genrel.errors import DataError
from genrel.grammar import Parsed, ParseError
from genrel.verify import RIGHT, UNVERIFIABLE, check_gold, step_status


class RewardConfig(BaseModel):
    """How a completion is rewarded; the defaults reproduce the paper's outcome reward."""

    model_config = ConfigDict(extra="forbid")

    outcome_weight: float = Field(default=1.0, ge=0, description="Reward for the exact gold label.")
    ordinal_weight: float = Field(
        default=0.0,
        ge=0,
        description="Partial credit for a wrong label: weight * (1 - |rank(pred) - rank(gold)| / (L - 1)).",
    )
    format_penalty: float = Field(
        default=0.0,
        ge=0,
        description="An unparseable completion gets -format_penalty (the paper's authors use 0).",
    )
    step_weight: float = Field(
        default=0.0,
        ge=0,
        description="λ: adds λ * (share of verified steps that are right); nothing when no step is verified.",
    )


def outcome_reward(pred: str, gold: str) -> float:
    """1 for the exact gold label, else 0."""
    return 1.0 if pred == gold else 0.0


def ordinal_credit(pred: str, gold: str, criteria: Criteria) -> float:
    """1 - (distance on the label scale) / (L - 1): 1 for the gold label, 0 for the farthest one."""
    distance = abs(_rank(criteria, pred, "predicted") - _rank(criteria, gold, "gold"))
    span = len(criteria.labels) - 1
    return 1.0 - distance / span if span else 1.0


def _rank(criteria: Criteria, label: str, role: str) -> int:
    if label not in criteria.label_names:
        raise DataError(
            f"{role} label '{label}' is not a label of criteria '{criteria.name}'",
            hint=f"labels: {', '.join(criteria.label_names)}",
        )
    return criteria.label_index(label)


def step_reward(statuses: Sequence[int]) -> float:
    """Share of right steps among the verified ones; 0 when no step is verified."""
    verified = [s for s in statuses if s != UNVERIFIABLE]
    return sum(s == RIGHT for s in verified) / len(verified) if verified else 0.0


def completion_reward(
    parsed_or_error: Parsed | ParseError,
    gold_label: str,
    criteria: Criteria,
    cfg: RewardConfig,
    gold_verdicts: dict[str, str] | None = None,
    *,
    statuses: list[int] | None = None,
) -> float:
    """The scalar reward of one completion (see the module docstring for the formula); ``statuses``:
    its step statuses when the caller already has them (:func:`genrel.verify.step_status`)."""
    return reward_breakdown(parsed_or_error, gold_label, criteria, cfg, gold_verdicts, statuses=statuses)["reward"]


def reward_breakdown(
    parsed_or_error: Parsed | ParseError,
    gold_label: str,
    criteria: Criteria,
    cfg: RewardConfig,
    gold_verdicts: dict[str, str] | None = None,
    *,
    statuses: list[int] | None = None,
) -> dict[str, float]:
    """The reward and its parts, for logging: ``reward``, ``outcome``, ``ordinal_credit``,
    ``step_reward`` and ``format_error`` (1 when the completion does not parse)."""
    if isinstance(parsed_or_error, ParseError):
        check_gold(criteria, gold_label, gold_verdicts)  # a bad gold label raises either way
        return {
            "reward": -cfg.format_penalty,
            "outcome": 0.0,
            "ordinal_credit": 0.0,
            "step_reward": 0.0,
            "format_error": 1.0,
        }
    pred = parsed_or_error.label
    if statuses is None:
        statuses = step_status(criteria, parsed_or_error.verdicts, gold_label, gold_verdicts)
    outcome = outcome_reward(pred, gold_label)
    credit = ordinal_credit(pred, gold_label, criteria)
    steps = step_reward(statuses)
    label_part = cfg.outcome_weight if outcome else cfg.ordinal_weight * credit
    return {
        "reward": label_part + cfg.step_weight * steps,
        "outcome": outcome,
        "ordinal_credit": credit,
        "step_reward": steps,
        "format_error": 0.0,
    }
