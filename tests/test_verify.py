"""Step verification: statuses from expect and gold verdicts, the provisional rule, consistency, counts."""

from __future__ import annotations

import pytest

from genrel.criteria import Criteria, load_criteria
from genrel.errors import DataError
from genrel.verify import consistent, status_counts, step_status

TREC = load_criteria("trec-dl")  # steps: need (free), topic, answer, exact
ESCI = load_criteria("esci")  # steps: need (free), type, specs (no expect for irrelevant/complement), complement
NOTES = load_criteria("notes")  # four free steps, provisional, calibrated


def test_statuses_follow_expect_for_the_gold_label():
    verdicts = {"topic": "yes", "answer": "yes", "exact": "no"}
    assert step_status(TREC, verdicts, "highly") == [-1, 1, 1, 1]
    assert step_status(TREC, verdicts, "perfect") == [-1, 1, 1, 0]
    assert step_status(TREC, verdicts, "related") == [-1, 1, 0, 1]
    assert step_status(TREC, verdicts, "irrelevant") == [-1, 0, 0, 1]


def test_free_steps_and_missing_verdicts_are_unverifiable():
    assert step_status(TREC, {"need": "yes", "exact": "yes"}, "perfect") == [-1, -1, -1, 1]
    assert step_status(TREC, {}, "perfect") == [-1, -1, -1, -1]


def test_gold_label_missing_from_expect_makes_the_step_unverifiable():
    verdicts = {"type": "no", "specs": "yes", "complement": "yes"}
    assert step_status(ESCI, verdicts, "complement") == [-1, 1, -1, 1]
    assert step_status(ESCI, verdicts, "irrelevant") == [-1, 1, -1, 0]
    assert step_status(ESCI, verdicts, "exact") == [-1, 0, 1, 0]


def test_gold_verdicts_override_expect():
    verdicts = {"type": "no", "specs": "yes", "complement": "yes"}
    assert step_status(ESCI, verdicts, "complement", {"specs": "no"}) == [-1, 1, 0, 1]
    assert step_status(ESCI, verdicts, "complement", {"specs": "yes"}) == [-1, 1, 1, 1]
    # An override may contradict expect: the example's own annotation wins.
    assert step_status(ESCI, verdicts, "exact", {"type": "no"}) == [-1, 1, 1, 0]
    # Without a verdict to check, an override changes nothing.
    assert step_status(ESCI, {}, "exact", {"type": "no"}) == [-1, -1, -1, -1]


@pytest.mark.parametrize(
    "gold, gold_verdicts, message",
    [
        ("great", None, "gold label 'great'"),
        ("exact", {"need": "yes"}, "'need', which is not a checked step"),
        ("exact", {"colour": "yes"}, "'colour', which is not a checked step"),
        ("exact", {"type": "maybe"}, "gold verdict 'maybe'"),
    ],
)
def test_bad_gold_raises_a_data_error(gold, gold_verdicts, message):
    with pytest.raises(DataError, match=message):
        step_status(ESCI, {"type": "yes"}, gold, gold_verdicts)


# The four provisional/rule combinations of the paper's masking table, gold = partial. Status
# positions: needs, coverage, category, keywords (free), provisional, calibrated.
@pytest.mark.parametrize(
    "provisional, calibrated, expected",
    [
        ("partial", "partial", [1, 1]),  # both right
        ("full", "partial", [-1, 1]),  # rule step corrected the provisional grade: neither blamed
        ("partial", "full", [1, 0]),  # rule step broke a right provisional grade
        ("full", "weak", [0, 0]),  # both wrong
    ],
)
def test_provisional_rule_on_the_notes_preset(provisional, calibrated, expected):
    statuses = step_status(NOTES, {"provisional": provisional, "calibrated": calibrated}, "partial")
    assert statuses == [-1, -1, -1, -1] + expected


def test_provisional_step_stays_wrong_without_a_later_right_step():
    assert step_status(NOTES, {"provisional": "full"}, "partial")[4:] == [0, -1]


def test_provisional_rule_looks_at_any_later_checked_step_only():
    criteria = Criteria.model_validate(
        {
            "name": "chain",
            "labels": [{"id": 0, "name": "bad", "gain": 0}, {"id": 1, "name": "good", "gain": 1}],
            "steps": [
                {"id": "early", "ask": "?", "verdicts": ["bad", "good"], "expect": {"bad": "bad", "good": "good"}},
                {"id": "first", "ask": "?", "provisional": True, "verdicts": ["bad", "good"],
                 "expect": {"bad": "bad", "good": "good"}},
                {"id": "gap", "ask": "?", "verdicts": ["yes", "no"], "expect": {"good": "yes"}},
                {"id": "rule", "ask": "?", "verdicts": ["bad", "good"], "expect": {"bad": "bad", "good": "good"}},
            ],
        }
    )
    # A right step before the provisional one does not excuse it; one after it, past a wrong one, does.
    wrong_first = {"early": "good", "first": "bad", "gap": "no"}
    assert step_status(criteria, {**wrong_first, "rule": "good"}, "good") == [1, -1, 0, 1]
    assert step_status(criteria, {**wrong_first, "rule": "bad"}, "good") == [1, 0, 0, 0]
    # A later step unverifiable for the gold label excuses nothing; a right one past it does.
    assert step_status(criteria, {"first": "good", "gap": "yes", "rule": "bad"}, "bad") == [-1, -1, -1, 1]
    assert step_status(criteria, {"first": "good", "gap": "yes"}, "bad") == [-1, 0, -1, -1]


def test_non_provisional_wrong_steps_stay_wrong():
    assert step_status(TREC, {"topic": "no", "answer": "yes", "exact": "yes"}, "perfect") == [-1, 0, 1, 1]


def test_consistent_checks_verdicts_against_the_label():
    verdicts = {"topic": "yes", "answer": "yes", "exact": "no"}
    assert consistent(TREC, verdicts, "highly")
    assert not consistent(TREC, verdicts, "perfect")
    assert not consistent(TREC, verdicts, "related")
    assert consistent(TREC, {}, "perfect")


def test_consistent_ignores_steps_unverifiable_for_the_label():
    assert consistent(ESCI, {"type": "no", "specs": "yes", "complement": "yes"}, "complement")
    assert not consistent(ESCI, {"type": "no", "specs": "yes", "complement": "yes"}, "substitute")


def test_consistent_accepts_a_provisional_grade_the_rules_corrected():
    assert consistent(NOTES, {"provisional": "full", "calibrated": "partial"}, "partial")
    assert not consistent(NOTES, {"provisional": "partial", "calibrated": "full"}, "partial")
    assert not consistent(NOTES, {"provisional": "full"}, "partial")


def test_consistent_rejects_an_unknown_label():
    with pytest.raises(DataError):
        consistent(TREC, {}, "great")


def test_status_counts_and_accuracy_per_checked_step():
    rows = [[-1, 1, 1, 0], [-1, 1, 0, -1], [-1, 0, -1, -1]]
    assert status_counts(TREC, rows) == {"topic": (2, 3), "answer": (1, 2), "exact": (0, 1)}
    assert step_accuracy(TREC, rows) == {"topic": 2 / 3, "answer": 0.5, "exact": 0.0}
    assert status_counts(TREC, [[-1, -1, -1, -1]]) == {"topic": (0, 0), "answer": (0, 0), "exact": (0, 0)}
    assert step_accuracy(TREC, [[-1, 1, -1, -1]]) == {"topic": 1.0}
    assert status_counts(TREC, []) == {"topic": (0, 0), "answer": (0, 0), "exact": (0, 0)}


def test_status_counts_rejects_rows_of_the_wrong_length():
    with pytest.raises(ValueError, match="3 entries for 4 steps"):
        status_counts(TREC, [[1, 1, 1]])


def step_accuracy(criteria, statuses):
    """Share of right verdicts among verified ones per checked step, from :func:`status_counts`."""
    return {step_id: right / total for step_id, (right, total) in status_counts(criteria, statuses).items() if total}
