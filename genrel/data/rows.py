"""Turn one raw record (a dict of column → value) into a :class:`Pair`, or into the problems that stop it.

Shared by every reader: label mapping (name, integer id, numeric grade through ``grade_bins``), per-step
verdict checks, value coercion, and the fail/skip policy. Readers only find records and their lines.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from genrel.criteria import Criteria
from genrel.data.mapping import ResolvedColumns
from genrel.data.pair import Pair
from genrel.errors import DataError

OnError = Literal["fail", "skip"]


@dataclass(frozen=True)
class RowProblem:
    """Why one row was not loaded: ``source`` is ``file:line``, ``field`` the part of the pair."""

    source: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.field}: {self.message}"


@dataclass
class LoadResult:
    """Pairs that loaded and the problems of the rows that did not (empty with ``on_error="fail"``)."""

    pairs: list[Pair] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def bad_rows(self) -> int:
        return len({p.source for p in self.problems})


def finish(result: LoadResult, on_error: OnError) -> LoadResult:
    """Apply the policy: ``fail`` raises on the first problem (with the count), ``skip`` keeps them listed."""
    if on_error not in ("fail", "skip"):
        raise DataError(f"on_error must be 'fail' or 'skip', not '{on_error}'")
    if result.problems and on_error == "fail":
        first = result.problems[0]
        raise DataError(
            f"{first.field}: {first.message}",
            where=first.source,
            hint=f"{result.bad_rows} bad row(s) in all; skip them with on_error='skip' (--on-error skip)",
        )
    return result


def label_name(value: Any, criteria: Criteria) -> str:
    """The label name for a raw gold value: a name (any case), an integer id, or a numeric grade
    binned by ``criteria.grade_bins`` (which then applies to every number). Raises ValueError."""
    if isinstance(value, str):
        text = value.strip()
        by_name = _label_by_name(text, criteria)
        if by_name is not None:
            return by_name
        number = _number(text)
        if number is None:
            raise ValueError(f"unknown label '{text}' ({_valid_labels(criteria)})")
        value = number
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"unknown label {value!r} ({_valid_labels(criteria)})")
    if criteria.grade_bins:
        return _binned(float(value), criteria)
    if float(value).is_integer():
        label = criteria.label_by_id(int(value))
        if label is not None:
            return label.name
    raise ValueError(f"unknown label {_plain(value)} ({_valid_labels(criteria)})")


def _label_by_name(text: str, criteria: Criteria) -> str | None:
    if text in criteria.label_names:
        return text
    folded = [n for n in criteria.label_names if n.casefold() == text.casefold()]
    return folded[0] if len(folded) == 1 else None


def _binned(grade: float, criteria: Criteria) -> str:
    bins = criteria.grade_bins or []
    matched = [label for low, label in bins if grade >= low]
    if not matched:
        raise ValueError(f"grade {_plain(grade)} is below the lowest grade bin {_plain(bins[0][0])}")
    return matched[-1]


def _valid_labels(criteria: Criteria) -> str:
    text = "labels: " + ", ".join(criteria.label_names)
    if criteria.grade_bins:
        return text + "; or a numeric grade >= " + _plain(criteria.grade_bins[0][0])
    return text + "; or ids " + ", ".join(str(lab.id) for lab in criteria.labels)


def _number(text: str) -> float | int | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def _plain(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def as_text(value: Any) -> str | None:
    """A cell as text: None for missing (None, NaN, ''), integral floats without '.0'."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return _plain(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    return text if text != "" else None


class RowConverter:
    """Builds pairs from records of one file, given its resolved columns."""

    def __init__(self, criteria: Criteria, columns: ResolvedColumns, require_label: bool = True):
        self.criteria = criteria
        self.columns = columns
        self.require_label = require_label
        self.steps = {s.id: s for s in criteria.steps}

    def convert(self, record: dict[str, Any], source: str, line: int) -> Pair | list[RowProblem]:
        """A pair, or every problem found in this row."""
        c = self.columns
        problems: list[RowProblem] = []

        def problem(part: str, message: str) -> None:
            problems.append(RowProblem(source, part, message))

        query = as_text(record.get(c.query))
        text = as_text(record.get(c.text))
        for part, column, value in (("query", c.query, query), ("text", c.text, text)):
            if value is None or not value.strip():
                problem(part, f"empty (column '{column}')")
        label = self._label(record, problem)
        verdicts = self._verdicts(record, problem)
        fields = self._fields(record, problem)
        if problems:
            return problems
        row_id = as_text(record.get(c.id)) if c.id else None
        return Pair(
            row_id=row_id if row_id is not None else str(line),
            query=query,
            text=text,
            title=as_text(record.get(c.title)) if c.title else None,
            fields=fields,
            qid=as_text(record.get(c.qid)) if c.qid else None,
            docid=as_text(record.get(c.docid)) if c.docid else None,
            label=label,
            verdicts=verdicts,
            source=source,
        )

    def _label(self, record: dict, problem) -> str | None:
        column = self.columns.label
        if column is None:  # load_pairs refuses a file without one when labels are required
            return None
        value = record.get(column)
        if as_text(value) is None or (isinstance(value, str) and not value.strip()):
            if self.require_label:
                problem("label", f"missing (column '{column}')")
            return None
        try:
            return label_name(value, self.criteria)
        except ValueError as exc:
            problem("label", f"{exc} (column '{column}')")
            return None

    def _verdicts(self, record: dict, problem) -> dict[str, str] | None:
        raw: dict[str, Any] = {}
        column = self.columns.verdicts
        if column is not None and as_text(record.get(column)) is not None:
            value = record[column]
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    value = None
            if not isinstance(value, dict):
                problem("verdicts", f"column '{column}' must hold a JSON object of step id → verdict")
                return None
            raw.update(value)
        for step_id, col in self.columns.verdict_columns.items():
            if as_text(record.get(col)) is not None:
                raw[step_id] = record[col]
        verdicts = {}
        for step_id, value in raw.items():
            checked = self._verdict(str(step_id), value, problem)
            if checked is not None:
                verdicts[str(step_id)] = checked
        return verdicts or None

    def _verdict(self, step_id: str, value: Any, problem) -> str | None:
        part = f"verdicts.{step_id}"
        step = self.steps.get(step_id)
        if step is None:
            problem(part, f"unknown step '{step_id}' (steps: {', '.join(self.steps)})")
            return None
        if not step.checked:
            problem(part, f"step '{step_id}' is a free step and takes no verdict")
            return None
        word = ("yes" if value else "no") if isinstance(value, bool) else as_text(value)
        if word is None:
            return None
        if word not in step.verdicts:
            problem(part, f"unknown verdict '{word}' (verdicts: {', '.join(step.verdicts)})")
            return None
        return word

    def _fields(self, record: dict, problem) -> dict[str, str]:
        fields: dict[str, str] = {}
        column = self.columns.fields_dict
        if column is not None and as_text(record.get(column)) is not None:
            value = record[column]
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    value = None
            if not isinstance(value, dict):
                problem("fields", f"column '{column}' must hold a JSON object of name → value")
            else:
                fields.update({str(k): t for k, v in value.items() if (t := as_text(v)) is not None})
        for col in self.columns.fields:
            text = as_text(record.get(col))
            if text is not None:
                fields[col] = text
        return fields
