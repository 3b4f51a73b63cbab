"""Rewards: outcome, ordinal credit, step share, format penalty, and their combination per completion."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from genrel.criteria import Criteria, load_criteria
from genrel.errors import DataError
from genrel.grammar import render, try_parse
from genrel.rewards import (
    RewardConfig,
    completion_reward,
    ordinal_credit,
    outcome_reward,
    reward_breakdown,
    step_reward,
)

TREC = load_criteria("trec-dl")  # irrelevant < related < highly < perfect
NOTES = load_criteria("notes")


def completion(label: str, **verdicts: str):
    return try_parse(render(TREC, {}, verdicts, label), TREC)


HIGHLY = completion("highly", topic="yes", answer="yes", exact="no")
BROKEN = try_parse("<label>highly</label>", TREC)


def test_config_defaults_are_the_papers_outcome_reward():
    cfg = RewardConfig()
    assert (cfg.outcome_weight, cfg.ordinal_weight, cfg.format_penalty, cfg.step_weight) == (1.0, 0.0, 0.0, 0.0)
    assert all(field.description for field in RewardConfig.model_fields.values())


@pytest.mark.parametrize("data", [{"outcome_wieght": 1.0}, {"step_weight": -0.1}, {"format_penalty": -1}])
def test_config_rejects_unknown_fields_and_negative_weights(data):
    with pytest.raises(ValidationError):
        RewardConfig(**data)


def test_outcome_reward_is_one_only_for_the_gold_label():
    assert outcome_reward("highly", "highly") == 1.0
    assert outcome_reward("perfect", "highly") == 0.0


def test_ordinal_credit_falls_linearly_with_distance_on_the_scale():
    assert ordinal_credit("perfect", "perfect", TREC) == 1.0
    assert ordinal_credit("highly", "perfect", TREC) == pytest.approx(2 / 3)
    assert ordinal_credit("related", "perfect", TREC) == pytest.approx(1 / 3)
    assert ordinal_credit("irrelevant", "perfect", TREC) == 0.0
    assert ordinal_credit("perfect", "irrelevant", TREC) == 0.0
    assert ordinal_credit("weak", "low", NOTES) == pytest.approx(0.75)


def test_ordinal_credit_on_a_one_label_scale_and_unknown_labels():
    single = Criteria.model_validate({"name": "one", "labels": [{"id": 0, "name": "ok", "gain": 1}]})
    assert ordinal_credit("ok", "ok", single) == 1.0
    with pytest.raises(DataError, match="gold label 'great'"):
        ordinal_credit("perfect", "great", TREC)
    with pytest.raises(DataError, match="predicted label 'great'"):
        ordinal_credit("great", "perfect", TREC)


def test_step_reward_is_the_share_of_right_verified_steps():
    assert step_reward([-1, 1, 0, 1]) == pytest.approx(2 / 3)
    assert step_reward([-1, 1, 1]) == 1.0
    assert step_reward([0, -1]) == 0.0
    assert step_reward([-1, -1]) == 0.0
    assert step_reward([]) == 0.0


def test_default_completion_reward_is_exact_label_or_nothing():
    cfg = RewardConfig()
    assert completion_reward(HIGHLY, "highly", TREC, cfg) == 1.0
    assert completion_reward(HIGHLY, "perfect", TREC, cfg) == 0.0
    assert completion_reward(BROKEN, "highly", TREC, cfg) == 0.0


def test_format_penalty_applies_only_to_unparseable_completions():
    cfg = RewardConfig(format_penalty=0.5, ordinal_weight=1.0, step_weight=1.0)
    assert completion_reward(BROKEN, "highly", TREC, cfg) == -0.5
    assert completion_reward(HIGHLY, "irrelevant", TREC, cfg) >= 0.0


def test_ordinal_weight_gives_partial_credit_to_wrong_labels_only():
    cfg = RewardConfig(ordinal_weight=0.5)
    assert completion_reward(HIGHLY, "highly", TREC, cfg) == 1.0
    assert completion_reward(HIGHLY, "perfect", TREC, cfg) == pytest.approx(0.5 * 2 / 3)
    assert completion_reward(HIGHLY, "related", TREC, cfg) == pytest.approx(0.5 * 2 / 3)
    assert completion_reward(HIGHLY, "irrelevant", TREC, cfg) == pytest.approx(0.5 * 1 / 3)


def test_step_weight_adds_the_share_of_right_steps():
    cfg = RewardConfig(step_weight=0.3)
    assert completion_reward(HIGHLY, "highly", TREC, cfg) == pytest.approx(1.3)
    # gold perfect: topic and answer right, exact wrong
    assert completion_reward(HIGHLY, "perfect", TREC, cfg) == pytest.approx(0.3 * 2 / 3)
    # a gold verdict for 'exact' that agrees with the completion makes every step right
    assert completion_reward(HIGHLY, "perfect", TREC, cfg, {"exact": "no"}) == pytest.approx(0.3)


def test_step_weight_uses_the_provisional_rule():
    corrected = try_parse(render(NOTES, {}, {"provisional": "full", "calibrated": "partial"}, "partial"), NOTES)
    cfg = RewardConfig(step_weight=1.0)
    assert completion_reward(corrected, "partial", NOTES, cfg) == pytest.approx(2.0)


def test_reward_breakdown_reports_every_part():
    cfg = RewardConfig(ordinal_weight=0.5, step_weight=0.3)
    parts = reward_breakdown(HIGHLY, "perfect", TREC, cfg)
    assert parts == pytest.approx(
        {"reward": 0.5 * 2 / 3 + 0.3 * 2 / 3, "outcome": 0.0, "ordinal_credit": 2 / 3, "step_reward": 2 / 3,
         "format_error": 0.0}
    )
    broken = reward_breakdown(BROKEN, "perfect", TREC, cfg)
    assert broken == {"reward": -0.0, "outcome": 0.0, "ordinal_credit": 0.0, "step_reward": 0.0, "format_error": 1.0}


def test_unknown_gold_label_raises_even_for_an_unparseable_completion():
    for parsed in (HIGHLY, BROKEN):
        with pytest.raises(DataError, match="gold label 'great'"):
            completion_reward(parsed, "great", TREC, RewardConfig())


def test_checking_modules_import_no_torch():
    code = "import sys, genrel.grammar, genrel.verify, genrel.rewards; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
