"""The teacher-labels file: one JSON object per labelled pair, written as labelling goes, read by students.

A row holds the pair (``row_id, qid, docid, query, text, title, fields``), the pool's own label as
``gold`` (kept for reporting, never taught from the pool), and what the teacher said over its samples:

- ``probabilities``: mean over samples of the label distribution read at the label position;
- ``soft_label``: the teaching target, equal to ``probabilities`` (sums to 1 for every row);
- ``votes``: share of the *parseable* samples per label (``null`` when no sample parsed);
- ``n_samples``, ``n_unparseable`` and ``format_errors`` (error kind → count);
- ``reasoning`` (one kept explanation, ``null`` when none qualified) and ``reasoning_label``, the
  label it led to.

This module only reads and writes that format; resuming follows :mod:`genrel.data.resumable` (a last
line without its newline is torn: skipped when read, cut off when the file is reopened; any other bad
line is a :class:`DataError` naming ``file:line``). It imports no torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genrel.criteria import Criteria
from genrel.data.pair import Pair
from genrel.data.resumable import append_rows, iter_rows, open_append, resume_rows
from genrel.errors import DataError

PAIR_KEYS = ("row_id", "qid", "docid", "query", "text", "title", "fields")


@dataclass
class TeacherLabel:
    """One row of a labels file, as students read it. ``pair.label`` is None: the pool's label is in
    ``gold`` and is not a teaching target."""

    pair: Pair
    soft_label: dict[str, float]
    gold: str | None
    reasoning: str | None
    reasoning_label: str | None


def label_record(pair: Pair, teacher: dict[str, Any]) -> dict[str, Any]:
    """The JSON object of one labelled pair: the pair's fields, its gold label, then ``teacher``."""
    record: dict[str, Any] = {key: getattr(pair, key) for key in PAIR_KEYS}
    record["gold"] = pair.label
    record.update(teacher)
    return record


def labelled_ids(path: str | Path) -> set[str]:
    """Prepare ``path`` for appending (:func:`genrel.data.resumable.resume_rows`) and return the row ids
    already labelled in it."""
    return {str(row["row_id"]) for row in resume_rows(path)}


def append_records(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Append rows (UTF-8, one object per line) and flush them."""
    with open_append(path) as f:
        append_rows(f, records)


def read_labels(path: str | Path, criteria: Criteria) -> list[TeacherLabel]:
    """Every row of a labels file, checked against the criteria (a torn last line is skipped)."""
    return list(_iter_labels(Path(path), criteria))


def _iter_labels(path: Path, criteria: Criteria) -> Iterator[TeacherLabel]:
    names = set(criteria.label_names)
    for number, record in iter_rows(path, what="labels file", hint="write one with `genrel label`"):
        where = f"{path}:{number}"
        soft = record.get("soft_label")
        if not isinstance(soft, dict) or not soft:
            raise DataError("field 'soft_label': missing or not a mapping of label → probability", where=where)
        unknown = sorted(set(soft) - names)
        if unknown:
            raise DataError(
                f"field 'soft_label': labels {unknown} are not in criteria '{criteria.name}'",
                where=where,
                hint="label and distil with the same --criteria",
            )
        try:
            pair = Pair(**{k: record.get(k) for k in PAIR_KEYS if record.get(k) is not None}, source=where)
        except Exception as exc:  # pydantic's report, one line
            raise DataError(f"not a pair: {exc}".splitlines()[0], where=where) from None
        yield TeacherLabel(
            pair=pair,
            soft_label={n: float(soft.get(n, 0.0)) for n in criteria.label_names},
            gold=record.get("gold"),
            reasoning=record.get("reasoning"),
            reasoning_label=record.get("reasoning_label"),
        )
