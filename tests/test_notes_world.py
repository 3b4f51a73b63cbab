"""The notes world: seeded, labelled by a provisional grade then the business rules, with both gold
verdicts, so the provisional rule of the step verifier has real cases."""

from __future__ import annotations

import json
from collections import Counter

from genrel.criteria import load_criteria
from genrel.demo.notes_world import CRITERIA, Note, NotesWorldConfig, Query, generate, judge, write_world
from genrel.verify import RIGHT, UNVERIFIABLE, WRONG, step_status

NOTES = load_criteria(CRITERIA)


def test_same_seed_same_world_other_seed_other_world():
    assert list(generate(NotesWorldConfig(seed=1, queries=10))) == list(generate(NotesWorldConfig(seed=1, queries=10)))
    assert list(generate(NotesWorldConfig(seed=1, queries=10))) != list(generate(NotesWorldConfig(seed=2, queries=10)))


def test_rules_cap_the_provisional_grade():
    q = Query("q", "ramen", "tokyo", "winter")
    assert judge(q, Note("n", "ramen", "guide", "tokyo", "winter")) == ("full", {"provisional": "full", "calibrated": "full"})
    assert judge(q, Note("n", "ramen", "guide", "rome", "winter"))[0] == "weak"  # another place
    assert judge(q, Note("n", "ramen", "guide", None, "winter"))[0] == "partial"  # missing core qualifier
    assert judge(q, Note("n", "ramen", "guide", "tokyo", "summer"))[0] == "partial"  # another season
    assert judge(q, Note("n", "ramen", "diary", "tokyo", "summer"))[0] == "low"  # a cap above the grade changes nothing
    assert judge(q, Note("n", "sushi", "guide", "tokyo", "winter"))[0] == "weak"  # same category
    assert judge(q, Note("n", "hiking", "guide", "tokyo", "winter"))[0] == "unrelated"
    assert judge(Query("q", "ramen", None, None), Note("n", "ramen", "tips", "rome", "summer"))[0] == "partial"


def test_gold_verdicts_verify_and_rules_change_some_grades():
    rows = list(generate(NotesWorldConfig(seed=0, queries=200)))
    assert set(Counter(r["label"] for r in rows)) == set(NOTES.label_names)
    for row in rows:  # both gold verdicts agree with the criteria's expect for the label
        assert step_status(NOTES, row["verdicts"], row["label"]) == [RIGHT, RIGHT], row
    changed = sum(r["verdicts"]["provisional"] != r["label"] for r in rows) / len(rows)
    assert 0.15 < changed < 0.4


def test_a_provisional_grade_the_rules_corrected_is_unverifiable():
    row = next(r for r in generate(NotesWorldConfig(seed=0, queries=50)) if r["verdicts"]["provisional"] != r["label"])
    gold, label = row["verdicts"], row["label"]
    # Writing the final grade as the provisional one is wrong against the gold provisional grade, but the
    # calibrated step that follows is right, so the verifier neither credits nor blames it.
    assert step_status(NOTES, {"provisional": label, "calibrated": label}, label, gold) == [UNVERIFIABLE, RIGHT]
    assert step_status(NOTES, {"provisional": label, "calibrated": gold["provisional"]}, label, gold) == [WRONG, WRONG]
    assert step_status(NOTES, dict(gold), label, gold) == [RIGHT, RIGHT]


def test_written_file_is_jsonl_the_title_holds_the_facts(tmp_path):
    path = write_world(NotesWorldConfig(seed=0, queries=3), tmp_path / "notes.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 3 * NotesWorldConfig().candidates_per_query
    assert {"qid", "query", "docid", "title", "text", "fields", "label", "verdicts"} <= set(rows[0])
    assert all(r["title"].split(":")[0] in ("guide", "tips", "diary") for r in rows)
