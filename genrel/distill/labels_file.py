"""The teacher-labels file: one JSON object per labelled pair, written as labelling goes, read by students.

A row holds the pair (``row_id, qid, docid, query, text, title, fields``), the pool's own label as
``gold`` (kept for reporting, never taught from the pool), and what the teacher said over its samples:

- ``probabilities``: mean over samples of the label distribution read at the label position;
- ``soft_label``: the teaching target, equal to ``probabilities`` (sums to 1 for every row);
- ``votes``: share of the *parseable* samples per label (``null`` when no sample parsed);
- ``n_samples``, ``n_unparseable`` and ``format_errors`` (error kind → count);
- ``reasoning`` (one kept explanation, ``null`` when none qualified) and ``reasoning_label``, the
  label it led to.

This module only reads and writes that format. Appending is line-atomic enough for resuming: a torn
last line (a run killed mid-write) is cut off when the file is reopened; any other bad line is a
:class:`DataError` naming ``file:line``. It imports no torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genrel.criteria import Criteria
from genrel.data.pair import Pair
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


def open_for_append(path: str | Path) -> set[str]:
    """Prepare ``path`` for appending and return the row ids already in it: a missing file is
    created empty; a torn last line is cut off; any other unreadable line raises DataError."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.touch()
        return set()
    done: set[str] = set()
    keep_bytes, last = 0, b"\n"
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            record = _decode(raw) if raw.strip() else {}
            if record is None:
                if raw.endswith(b"\n") or f.read(1):
                    raise DataError("unreadable JSON line in the middle of the file", where=f"{path}:{number}")
                break  # the last line was torn: drop it and append after the good ones
            if record:
                done.add(str(record["row_id"]))
            keep_bytes, last = keep_bytes + len(raw), raw
    with open(path, "r+b") as f:
        f.truncate(keep_bytes)
        if not last.endswith(b"\n"):  # a complete last row whose newline was never written
            f.seek(keep_bytes)
            f.write(b"\n")
    return done


def append_records(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Append rows (UTF-8, one object per line) and flush them to disk."""
    with open(path, "a", encoding="utf-8", newline="\n") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()


def read_labels(path: str | Path, criteria: Criteria) -> list[TeacherLabel]:
    """Every row of a labels file, checked against the criteria (a torn last line is skipped)."""
    return list(_iter_labels(Path(path), criteria))


def _iter_labels(path: Path, criteria: Criteria) -> Iterator[TeacherLabel]:
    if not path.is_file():
        raise DataError("labels file not found", where=str(path), hint="write one with `genrel label`")
    names = set(criteria.label_names)
    lines = path.read_bytes().splitlines(keepends=True)
    for number, raw in enumerate(lines, start=1):
        where = f"{path}:{number}"
        if not raw.strip():
            continue
        record = _decode(raw)
        if record is None:
            if number == len(lines) and not raw.endswith(b"\n"):
                continue  # torn last line of an interrupted run
            raise DataError("unreadable JSON line", where=where)
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


def _decode(raw: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and "row_id" in record else None
