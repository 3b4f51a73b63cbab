"""The completion grammar: render a reasoning trace from parts, and parse one back with character spans.

A completion is every step of the criteria once, in criteria order, then the label::

    <step id="topic">…free text… Verdict: yes</step>
    <step id="answer">… Verdict: no</step>
    <label>highly</label>

Whitespace between elements, before the first and after the label is glue; any other text outside an
element is an error. A step's body runs to the first ``</step>``, so it may hold any text (CJK, emoji,
newlines, other ``<`` characters). A checked step's verdict is the text after the body's last
``Verdict:``, with surrounding whitespace stripped and nothing else (``yes.`` is not ``yes``); it must
be one of the step's verdicts. A free step has no verdict, and a ``Verdict:`` in its text is just text.
The label name sits between the tags exactly, without spaces.

Parsing is strict, for rewards: any deviation is a :class:`ParseError` with a kind and the character
offset where it was found. It is a linear scan (``str.find`` and anchored regexes), so hostile text
cannot make it slow. This module knows the criteria and nothing about tokens, models or gold labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from genrel.criteria import Criteria

STEP_CLOSE = "</step>"
LABEL_OPEN = "<label>"
LABEL_CLOSE = "</label>"
VERDICT_KEY = "Verdict:"

_STEP_OPEN = re.compile(r'<step id="([^"<>]*)">')
_GLUE = re.compile(r"\s*")


def step_open(step_id: str) -> str:
    """The opening tag of a step, as the model must write it."""
    return f'<step id="{step_id}">'


class ParseErrorKind(str, Enum):
    missing_step = "missing_step"
    unknown_step = "unknown_step"
    duplicate_step = "duplicate_step"
    out_of_order = "out_of_order"
    missing_verdict = "missing_verdict"
    unknown_verdict = "unknown_verdict"
    no_label = "no_label"
    unknown_label = "unknown_label"
    trailing_text = "trailing_text"
    malformed = "malformed"


class ParseError(ValueError):
    """A completion that does not follow the grammar: ``kind``, a readable ``message``, and ``position``
    (character offset in the completion where the problem was found)."""

    def __init__(self, kind: ParseErrorKind, message: str, position: int):
        self.kind = kind
        self.message = message
        self.position = position
        super().__init__(f"{kind.value} at char {position}: {message}")


@dataclass(frozen=True)
class ParsedStep:
    """One step as written: ``index`` in ``criteria.steps``, ``span`` = [start, end) of the whole
    ``<step …>…</step>`` element, ``text`` = the body before its final ``Verdict:`` (the whole body for
    a free step), stripped; ``verdict`` None for a free step."""

    id: str
    index: int
    span: tuple[int, int]
    text: str
    verdict: str | None


@dataclass(frozen=True)
class Parsed:
    """A completion that follows the grammar. ``label_span`` covers the whole ``<label>…</label>``."""

    steps: list[ParsedStep]
    label: str
    label_span: tuple[int, int]

    @property
    def verdicts(self) -> dict[str, str]:
        """Step id → verdict, for the checked steps."""
        return {s.id: s.verdict for s in self.steps if s.verdict is not None}

    @property
    def label_name_span(self) -> tuple[int, int]:
        """[start, end) of the label name alone, between the tags."""
        start, end = self.label_span
        return start + len(LABEL_OPEN), end - len(LABEL_CLOSE)


def render(criteria: Criteria, texts: dict[str, str], verdicts: dict[str, str], label: str) -> str:
    """The completion for these parts: one line per step, then the label. Missing texts are empty;
    texts are stripped. Raises ValueError for anything :func:`parse` would not read back."""
    known = {s.id for s in criteria.steps}
    for what, keys in (("texts", texts), ("verdicts", verdicts)):
        unknown = sorted(set(keys) - known)
        if unknown:
            raise ValueError(f"{what} name unknown step(s) {unknown}; steps: {sorted(known)}")
    if label not in criteria.label_names:
        raise ValueError(f"unknown label '{label}'; labels: {criteria.label_names}")
    lines = []
    for step in criteria.steps:
        text = texts.get(step.id, "").strip()
        if STEP_CLOSE in text:
            raise ValueError(f"text of step '{step.id}' contains '{STEP_CLOSE}'")
        lines.append(step_open(step.id) + _body(step.id, step.verdicts, text, verdicts) + STEP_CLOSE)
    lines.append(LABEL_OPEN + label + LABEL_CLOSE)
    return "\n".join(lines)


def _body(step_id: str, allowed: list[str] | None, text: str, verdicts: dict[str, str]) -> str:
    if allowed is None:
        if step_id in verdicts:
            raise ValueError(f"step '{step_id}' is a free step and takes no verdict")
        return text
    verdict = verdicts.get(step_id)
    if verdict not in allowed:
        raise ValueError(f"step '{step_id}' needs a verdict among {allowed}, got {verdict!r}")
    return f"{text} {VERDICT_KEY} {verdict}" if text else f"{VERDICT_KEY} {verdict}"


def label_prefix(completion: str) -> str:
    """The completion up to and including ``<label>``: where a scorer reads the label distribution.

    A completion that already opened the label is cut right after ``<label>``; otherwise the tag is
    appended after a newline, as :func:`render` writes it.
    """
    at = completion.find(LABEL_OPEN)
    if at >= 0:
        return completion[: at + len(LABEL_OPEN)]
    return completion.rstrip() + "\n" + LABEL_OPEN


def try_parse(text: str, criteria: Criteria) -> Parsed | ParseError:
    """Like :func:`parse`, returning the error instead of raising it."""
    try:
        return parse(text, criteria)
    except ParseError as exc:
        return exc


def parse(text: str, criteria: Criteria) -> Parsed:
    """Read a completion; raise :class:`ParseError` on the first deviation from the grammar."""
    steps: list[ParsedStep] = []
    pos = _skip_glue(text, 0)
    while text.startswith("<step", pos):
        step = _parse_step(text, pos, criteria, len(steps))
        steps.append(step)
        pos = _skip_glue(text, step.span[1])
    if len(steps) < len(criteria.steps):
        missing = criteria.steps[len(steps)].id
        if text.startswith(LABEL_OPEN, pos) or pos == len(text):
            raise ParseError(ParseErrorKind.missing_step, f"step '{missing}' is missing", pos)
        raise ParseError(ParseErrorKind.malformed, f"expected {step_open(missing)}, found text", pos)
    if not text.startswith(LABEL_OPEN, pos):
        if text.find(LABEL_OPEN, pos) >= 0:
            raise ParseError(ParseErrorKind.malformed, f"text before {LABEL_OPEN}", pos)
        raise ParseError(ParseErrorKind.no_label, f"no {LABEL_OPEN}…{LABEL_CLOSE} after the last step", pos)
    label, label_end = _parse_label(text, pos, criteria)
    end = _skip_glue(text, label_end)
    if end != len(text):
        raise ParseError(ParseErrorKind.trailing_text, f"text after {LABEL_CLOSE}", end)
    return Parsed(steps=steps, label=label, label_span=(pos, label_end))


def _skip_glue(text: str, pos: int) -> int:
    return _GLUE.match(text, pos).end()  # type: ignore[union-attr]  # \s* always matches


def _parse_step(text: str, pos: int, criteria: Criteria, index: int) -> ParsedStep:
    """The step element starting at ``pos``, which must be ``criteria.steps[index]``."""
    tag = _STEP_OPEN.match(text, pos)
    if tag is None:
        raise ParseError(ParseErrorKind.malformed, 'a step must open with <step id="…">', pos)
    step_id = tag.group(1)
    _check_step_id(text, pos, criteria, index, step_id)
    step = criteria.steps[index]
    close = text.find(STEP_CLOSE, tag.end())
    if close < 0:
        raise ParseError(ParseErrorKind.malformed, f"step '{step_id}' is not closed with {STEP_CLOSE}", pos)
    body = text[tag.end() : close]
    span = (pos, close + len(STEP_CLOSE))
    if step.verdicts is None:
        return ParsedStep(step_id, index, span, body.strip(), None)
    cut = body.rfind(VERDICT_KEY)
    verdict = body[cut + len(VERDICT_KEY) :].strip() if cut >= 0 else ""
    if not verdict:
        raise ParseError(ParseErrorKind.missing_verdict, f"step '{step_id}' must end with '{VERDICT_KEY} …'", close)
    if verdict not in step.verdicts:
        raise ParseError(
            ParseErrorKind.unknown_verdict,
            f"step '{step_id}' verdict {verdict!r} is not one of {step.verdicts}",
            tag.end() + cut,
        )
    return ParsedStep(step_id, index, span, body[:cut].strip(), verdict)


def _check_step_id(text: str, pos: int, criteria: Criteria, index: int, step_id: str) -> None:
    ids = [s.id for s in criteria.steps]
    if step_id not in ids:
        raise ParseError(ParseErrorKind.unknown_step, f"unknown step '{step_id}'; steps: {ids}", pos)
    if index < len(ids) and step_id == ids[index]:
        return
    if ids.index(step_id) < index:
        raise ParseError(ParseErrorKind.duplicate_step, f"step '{step_id}' appears twice", pos)
    expected = ids[index]
    if text.find(step_open(expected), pos) >= 0:
        raise ParseError(ParseErrorKind.out_of_order, f"step '{step_id}' comes before step '{expected}'", pos)
    raise ParseError(ParseErrorKind.missing_step, f"step '{expected}' is missing before '{step_id}'", pos)


def _parse_label(text: str, pos: int, criteria: Criteria) -> tuple[str, int]:
    """The label name of the ``<label>`` element at ``pos``, and the element's end."""
    start = pos + len(LABEL_OPEN)
    close = text.find(LABEL_CLOSE, start)
    if close < 0:
        raise ParseError(ParseErrorKind.malformed, f"{LABEL_OPEN} is not closed with {LABEL_CLOSE}", pos)
    name = text[start:close]
    if name not in criteria.label_names:
        raise ParseError(
            ParseErrorKind.unknown_label, f"label {name!r} is not one of {criteria.label_names}", start
        )
    return name, close + len(LABEL_CLOSE)
