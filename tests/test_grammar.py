"""Completion grammar: render/parse round trip, spans, one typed error per kind, speed, ``genrel parse``."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from genrel.criteria import load_criteria, preset_names
from genrel.grammar import (
    LABEL_CLOSE,
    LABEL_OPEN,
    STEP_CLOSE,
    ParseError,
    ParseErrorKind,
    label_prefix,
    parse,
    render,
    step_open,
    try_parse,
)

K = ParseErrorKind
TREC = load_criteria("trec-dl")
PRESETS = ["trec-dl", "esci", "homedepot", "notes", "notes-zh", "qbqtc", "notes-rules"]
GOOD = (
    '<step id="need">When do fleas die?</step>\n'
    '<step id="topic">The passage is about flea life cycles. Verdict: yes</step>\n'
    '<step id="answer">It gives 20 days to a year. Verdict: yes</step>\n'
    '<step id="exact">It also covers ticks. Verdict: no</step>\n'
    "<label>highly</label>"
)


def element(step_id: str, body: str) -> str:
    return step_open(step_id) + body + STEP_CLOSE


def error_of(text: str, criteria=TREC) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse(text, criteria)
    return info.value


# -- hand cases ------------------------------------------------------------------------------------


def test_parse_reads_steps_verdicts_label_and_spans():
    parsed = parse(GOOD, TREC)
    assert [s.id for s in parsed.steps] == ["need", "topic", "answer", "exact"]
    assert [s.index for s in parsed.steps] == [0, 1, 2, 3]
    assert [s.verdict for s in parsed.steps] == [None, "yes", "yes", "no"]
    assert parsed.steps[1].text == "The passage is about flea life cycles."
    assert parsed.verdicts == {"topic": "yes", "answer": "yes", "exact": "no"}
    assert parsed.label == "highly"
    lines = GOOD.split("\n")
    for step, line in zip(parsed.steps, lines):
        assert GOOD[step.span[0] : step.span[1]] == line
    assert GOOD[slice(*parsed.label_span)] == "<label>highly</label>"
    assert GOOD[slice(*parsed.label_name_span)] == "highly"


def test_glue_is_any_whitespace_and_spans_stay_in_the_original_string():
    text = "\n \t" + GOOD.replace("\n", "\n\n  ") + " \n"
    parsed = parse(text, TREC)
    assert text[slice(*parsed.steps[0].span)].startswith('<step id="need">')
    assert text[slice(*parsed.steps[3].span)] == '<step id="exact">It also covers ticks. Verdict: no</step>'
    assert parsed.steps[0].span[0] == 3


def test_bodies_hold_cjk_emoji_newlines_and_angle_brackets():
    body = "跳蚤 🐜 <b>bold</b> a<b\n<label>full</label> </step Verdict: no\nVerdict:  yes \n"
    text = GOOD.replace("The passage is about flea life cycles. Verdict: yes", body)
    parsed = parse(text, TREC)
    topic = parsed.steps[1]
    assert topic.verdict == "yes"
    assert topic.text == "跳蚤 🐜 <b>bold</b> a<b\n<label>full</label> </step Verdict: no"
    assert text[slice(*topic.span)] == element("topic", body)


def test_free_step_keeps_a_verdict_like_phrase_as_text():
    text = GOOD.replace("When do fleas die?", "Verdict: unclear")
    parsed = parse(text, TREC)
    assert parsed.steps[0].verdict is None
    assert parsed.steps[0].text == "Verdict: unclear"
    assert "need" not in parsed.verdicts


@pytest.mark.parametrize(
    "text, kind, position",
    [
        (GOOD.replace('<step id="answer">It gives 20 days to a year. Verdict: yes</step>\n', ""), K.missing_step,
         GOOD.index('<step id="answer">')),
        ("<label>highly</label>", K.missing_step, 0),
        (GOOD[: GOOD.index('<step id="answer">')], K.missing_step, GOOD.index('<step id="answer">')),
        (GOOD.replace('id="answer"', 'id="bogus"'), K.unknown_step, GOOD.index('<step id="answer">')),
        (GOOD.replace('<step id="answer">', '<step id="topic">x Verdict: no</step><step id="answer">'),
         K.duplicate_step, GOOD.index('<step id="answer">')),
        (GOOD.replace("<label>", element("need", "again") + "<label>"), K.duplicate_step,
         GOOD.index("<label>")),
        (GOOD.replace('id="answer"', 'id="TMP"').replace('id="exact"', 'id="answer"').replace('id="TMP"', 'id="exact"'),
         K.out_of_order, GOOD.index('<step id="answer">')),
        (GOOD.replace("to a year. Verdict: yes", "to a year."), K.missing_verdict,
         GOOD.index("to a year. Verdict") + len("to a year.")),
        (GOOD.replace("to a year. Verdict: yes", "to a year. Verdict: "), K.missing_verdict,
         GOOD.index("to a year. Verdict") + len("to a year. Verdict: ")),
        (GOOD.replace("Verdict: no", "Verdict: maybe"), K.unknown_verdict, GOOD.index("Verdict: no")),
        (GOOD.replace("Verdict: no", "Verdict: no."), K.unknown_verdict, GOOD.index("Verdict: no")),
        (GOOD.replace("Verdict: no", "Verdict: No"), K.unknown_verdict, GOOD.index("Verdict: no")),
        (GOOD.replace("Verdict: no", "Verdict: no, since"), K.unknown_verdict, GOOD.index("Verdict: no")),
        (GOOD[: GOOD.index("<label>")], K.no_label, len(GOOD[: GOOD.index("<label>")])),
        (GOOD.replace("<label>highly</label>", "So: highly"), K.no_label, GOOD.index("<label>")),
        (GOOD.replace("highly</label>", "great</label>"), K.unknown_label, GOOD.index("highly</label>")),
        (GOOD.replace("highly</label>", " highly</label>"), K.unknown_label, GOOD.index("highly</label>")),
        (GOOD + "\nbecause fleas.", K.trailing_text, len(GOOD) + 1),
        (GOOD + "<label>highly</label>", K.trailing_text, len(GOOD)),
        (GOOD.replace('<step id="need">', "<step id='need'>"), K.malformed, 0),
        (GOOD.replace('<step id="need">', '<step  id="need">'), K.malformed, 0),
        (GOOD.replace("Verdict: no</step>", "Verdict: no"), K.malformed, GOOD.index('<step id="exact">')),
        (GOOD.replace("highly</label>", "highly"), K.malformed, GOOD.index("<label>")),
        (GOOD.replace('\n<step id="answer">', '\nThen:\n<step id="answer">'), K.malformed,
         GOOD.index('<step id="answer">')),
        (GOOD.replace("\n<label>", "\nLabel: <label>"), K.malformed, GOOD.index("<label>")),
        ("", K.missing_step, 0),
    ],
    ids=lambda v: v.value if isinstance(v, ParseErrorKind) else "",
)
def test_each_error_has_its_kind_and_position(text, kind, position):
    err = error_of(text)
    assert err.kind is kind
    assert err.position == position
    assert isinstance(err, ValueError)
    assert kind.value in str(err) and err.message in str(err)


def test_try_parse_returns_the_error_instead_of_raising():
    assert try_parse(GOOD, TREC).label == "highly"
    err = try_parse(GOOD + "!", TREC)
    assert isinstance(err, ParseError) and err.kind is K.trailing_text


def test_parse_is_linear_on_hostile_input():
    n = 200_000
    hostile = [
        element("need", "<" * n),
        element("need", "x") + element("topic", "Verdict:" * n + " yes") + "<label>" + "a" * n,
        '<step id="' + "a" * n,
        element("need", "x") + "\n" * n + "<step" * n,
    ]
    start = time.perf_counter()
    kinds = [try_parse(text, TREC) for text in hostile]
    assert all(isinstance(k, ParseError) for k in kinds)
    assert time.perf_counter() - start < 2.0


def test_render_rejects_what_parse_would_not_read_back():
    verdicts = {"topic": "yes", "answer": "yes", "exact": "no"}
    with pytest.raises(ValueError, match="answer"):
        render(TREC, {}, {"topic": "yes", "exact": "no"}, "highly")
    with pytest.raises(ValueError, match="maybe"):
        render(TREC, {}, {**verdicts, "exact": "maybe"}, "highly")
    with pytest.raises(ValueError, match="free step"):
        render(TREC, {}, {**verdicts, "need": "yes"}, "highly")
    with pytest.raises(ValueError, match="unknown label"):
        render(TREC, {}, verdicts, "great")
    with pytest.raises(ValueError, match="unknown step"):
        render(TREC, {"nedd": "typo"}, verdicts, "highly")
    with pytest.raises(ValueError, match="</step>"):
        render(TREC, {"need": "a </step> b"}, verdicts, "highly")


def test_render_writes_one_line_per_step_then_the_label():
    text = render(TREC, {"topic": "  About fleas.  "}, {"topic": "yes", "answer": "no", "exact": "no"}, "related")
    assert text.split("\n") == [
        '<step id="need"></step>',
        '<step id="topic">About fleas. Verdict: yes</step>',
        '<step id="answer">Verdict: no</step>',
        '<step id="exact">Verdict: no</step>',
        "<label>related</label>",
    ]


def test_label_prefix_ends_with_the_label_open_tag():
    reasoning = GOOD[: GOOD.index("<label>")]
    assert label_prefix(GOOD) == reasoning + LABEL_OPEN
    assert label_prefix(reasoning.rstrip() + "  \n") == reasoning.rstrip() + "\n" + LABEL_OPEN
    assert label_prefix(GOOD).endswith(LABEL_OPEN) and LABEL_CLOSE == "</label>"


# -- properties over every preset ------------------------------------------------------------------

# Characters and fragments that stress the grammar: CJK, emoji, tags, the verdict keyword.
PIECES = list("ab Z09 \n\t<>/\"=:.") + [
    "跳蚤", "生命周期", "。", "🐜", "😀", "Verdict:", "<step", "<label>", "</label>", "</step", "id=", "yes", "no",
]
body_text = st.lists(st.sampled_from(PIECES), max_size=12).map("".join).filter(lambda t: STEP_CLOSE not in t)


@st.composite
def completion_parts(draw):
    criteria = load_criteria(draw(st.sampled_from(PRESETS)))
    texts = {s.id: draw(body_text) for s in criteria.steps if draw(st.booleans())}
    verdicts = {s.id: draw(st.sampled_from(s.verdicts)) for s in criteria.checked_steps}
    label = draw(st.sampled_from(criteria.label_names))
    return criteria, texts, verdicts, label


def test_round_trip_covers_every_shipped_preset():
    assert set(PRESETS) == set(preset_names())


@settings(max_examples=200, deadline=None)
@given(completion_parts(), st.sampled_from(["", "\n", "  \n\t"]))
def test_render_then_parse_gives_back_the_parts(parts, glue):
    criteria, texts, verdicts, label = parts
    text = glue + render(criteria, texts, verdicts, label) + glue
    parsed = parse(text, criteria)
    assert [s.id for s in parsed.steps] == [s.id for s in criteria.steps]
    assert {s.id: s.text for s in parsed.steps} == {s.id: texts.get(s.id, "").strip() for s in criteria.steps}
    assert parsed.verdicts == verdicts
    assert parsed.label == label
    assert text[slice(*parsed.label_span)] == LABEL_OPEN + label + LABEL_CLOSE
    # The step spans and the label span tile the text, separated by render's newlines only.
    bounds = [s.span for s in parsed.steps] + [parsed.label_span]
    assert bounds[0][0] == len(glue) and bounds[-1][1] == len(text) - len(glue)
    for (_, end), (start, _) in zip(bounds, bounds[1:]):
        assert text[end:start] == "\n"
    for step in parsed.steps:
        piece = text[slice(*step.span)]
        assert piece.startswith(step_open(step.id)) and piece.endswith(STEP_CLOSE)
        assert piece.count(STEP_CLOSE) == 1


@settings(max_examples=200, deadline=None)
@given(completion_parts(), st.data())
def test_dropping_or_swapping_steps_is_a_typed_error(parts, data):
    criteria, texts, verdicts, label = parts
    text = render(criteria, texts, verdicts, label)
    parsed = parse(text, criteria)
    pieces = [text[slice(*s.span)] for s in parsed.steps]
    tail = text[slice(*parsed.label_span)]
    i = data.draw(st.integers(0, len(pieces) - 1))
    dropped = pieces[:i] + pieces[i + 1 :]
    assert error_of("\n".join(dropped + [tail]), criteria).kind in (K.missing_step, K.out_of_order)
    if i + 1 < len(pieces):
        swapped = pieces[:i] + [pieces[i + 1], pieces[i]] + pieces[i + 2 :]
        assert error_of("\n".join(swapped + [tail]), criteria).kind is K.out_of_order


@settings(max_examples=200, deadline=None)
@given(completion_parts(), st.lists(st.sampled_from(PIECES), max_size=20).map("".join), st.data())
def test_any_edit_either_parses_or_raises_a_parse_error(parts, junk, data):
    criteria, texts, verdicts, label = parts
    text = render(criteria, texts, verdicts, label)
    at = data.draw(st.integers(0, len(text)))
    result = try_parse(text[:at] + junk + text[at:], criteria)
    assert isinstance(result, ParseError) or result.label in criteria.label_names
    if isinstance(result, ParseError):
        assert 0 <= result.position <= len(text) + len(junk)


# -- genrel parse ----------------------------------------------------------------------------------


def test_cli_parse_prints_steps_statuses_and_reward(tmp_path):
    from genrel.cli import app

    path = tmp_path / "completion.txt"
    path.write_text(GOOD, encoding="utf-8")
    result = CliRunner().invoke(app, ["parse", str(path), "--criteria", "trec-dl", "--gold", "perfect"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split()[:4] == ["step", "topic", "verdict", "yes"] and lines[1].endswith("right")
    assert lines[3].endswith("wrong")
    assert lines[4].startswith("label highly")
    assert lines[5].startswith("reward 0 ")


def test_cli_parse_error_is_one_line_with_kind_and_position(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text(GOOD + "\nextra", encoding="utf-8")
    cmd = [sys.executable, "-c", "from genrel.cli import main; main()", "parse", str(path), "-c", "trec-dl"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: {path}:6:1 (char {len(GOOD) + 1}): trailing_text: text after </label>"
    ]
