"""Criteria presets load; every kind of invalid criteria file names its file and field."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from genrel.criteria import indistinguishable_labels, load_criteria, preset_names
from genrel.errors import CriteriaError

PRESETS = ["trec-dl", "esci", "homedepot", "notes", "notes-zh", "qbqtc", "notes-rules"]


def test_shipped_presets_are_listed_and_load():
    assert set(PRESETS) <= set(preset_names())
    for name in PRESETS:
        c = load_criteria(name)
        assert c.name == name
        assert c.labels and c.steps


def test_trec_dl_matches_design():
    c = load_criteria("trec-dl")
    assert c.label_names == ["irrelevant", "related", "highly", "perfect"]
    assert [lab.id for lab in c.labels] == [0, 1, 2, 3]
    assert [s.id for s in c.steps] == ["need", "topic", "answer", "exact"]
    assert not c.steps[0].checked
    # YAML's bare yes/no are verdict words, not booleans.
    assert c.steps[1].verdicts == ["yes", "no"]
    assert c.steps[2].expected("highly") == frozenset({"yes"})
    assert c.steps[2].expected("related") == frozenset({"no"})


def test_notes_has_five_grades_and_provisional_step():
    for name in ("notes", "notes-zh"):
        c = load_criteria(name)
        assert [lab.id for lab in c.labels] == [-1, 0, 1, 2, 3]
        prov = [s for s in c.steps if s.provisional]
        assert [s.id for s in prov] == ["provisional"]
        assert c.step_index("provisional") < c.step_index("calibrated")
    assert load_criteria("notes-zh").language == "zh"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in load_criteria("notes-zh").rules[0])


def test_qbqtc_is_three_chinese_grades_with_checked_steps():
    c = load_criteria("qbqtc")
    assert c.language == "zh" and c.label_names == ["poor", "somewhat", "very"] and c.gains == [0, 1, 2]
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in lab.means) for lab in c.labels)
    assert [s.id for s in c.checked_steps] == ["topic", "fulfil"]
    assert c.steps[c.step_index("fulfil")].expected("somewhat") == frozenset({"no"})


def test_unverifiable_when_label_missing_from_expect():
    c = load_criteria("esci")
    specs = c.steps[c.step_index("specs")]
    assert specs.expected("irrelevant") is None
    assert specs.expected("exact") == frozenset({"yes"})


def test_homedepot_grade_bins_bucket_rater_means():
    c = load_criteria("homedepot")
    assert c.grade_bins == [(1.0, "irrelevant"), (1.5, "partial"), (2.5, "perfect")]


VALID = """
name: t
labels:
  - {id: 0, name: bad, gain: 0}
  - {id: 1, name: good, gain: 1}
steps:
  - {id: a, ask: "A?", verdicts: [yes, no], expect: {bad: no, good: yes}}
"""

BROKEN = {
    "unknown label in expect": (
        VALID.replace("{bad: no, good: yes}", "{bad: no, great: yes}"),
        ["steps[0]", "unknown label 'great'"],
    ),
    "verdict not in set": (
        VALID.replace("{bad: no, good: yes}", "{bad: no, good: maybe}"),
        ["steps[0]", "'maybe' is not in verdicts"],
    ),
    "duplicate label name": (VALID.replace("name: good", "name: bad"), ["labels", "duplicate label name bad"]),
    "duplicate step id": (
        VALID + '  - {id: a, ask: "again?"}\n',
        ["steps", "duplicate step id a"],
    ),
    "checked step without expect": (
        VALID.replace(", expect: {bad: no, good: yes}", ""),
        ["steps[0]", "needs 'expect'"],
    ),
    "empty label list": ("name: t\nlabels: []\nsteps: []\n", ["labels", "empty"]),
    "unknown field": (VALID + "colour: red\n", ["colour", "unknown field"]),
    "expect on a free step": (
        VALID + '  - {id: b, ask: "B?", expect: {bad: no}}\n',
        ["steps[1]", "no 'verdicts'"],
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_invalid_criteria_names_file_and_field(tmp_path, case):
    text, needles = BROKEN[case]
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(CriteriaError) as info:
        load_criteria(path)
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, message


def test_invalid_yaml_reports_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: t\nlabels: [\n  {id: 0\n", encoding="utf-8")
    with pytest.raises(CriteriaError, match=r"bad\.yaml:\d+: invalid YAML"):
        load_criteria(path)


def test_unknown_preset_lists_presets():
    with pytest.raises(CriteriaError, match="presets: .*trec-dl"):
        load_criteria("no-such-preset")


def test_indistinguishable_labels_are_reported():
    assert indistinguishable_labels(load_criteria("trec-dl")) == []
    assert ("partial", "perfect") in indistinguishable_labels(load_criteria("homedepot"))


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-c", "from genrel.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_check_reports_one_line_without_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(VALID.replace("{bad: no, good: yes}", "{bad: no, great: yes}"), encoding="utf-8")
    result = _cli("criteria", "check", str(path))
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert f"{path}: field 'steps[0]'" in result.stderr
    ok = _cli("criteria", "check", "trec-dl")
    assert ok.returncode == 0 and "4 labels" in ok.stdout


def test_cli_show_prints_preset():
    result = _cli("criteria", "show", "notes")
    assert result.returncode == 0
    assert "provisional: true" in result.stdout
