"""genrel.data.resumable: the one torn-line rule and row-id check that traces, predictions and labels share."""

from __future__ import annotations

import json

import pytest

from genrel.data import Pair
from genrel.data.resumable import append_rows, check_unique_row_ids, open_append, read_rows, resume_rows
from genrel.distill.labels_file import labelled_ids
from genrel.errors import DataError
from genrel.eval.predictions import read_predictions
from genrel.train.teacher import completed_keys, read_traces


def _file(tmp_path, tail: str):
    path = tmp_path / "rows.jsonl"
    rows = [{"row_id": "a", "sample": 0}, {"row_id": "b", "sample": 0}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail, encoding="utf-8")
    return path


@pytest.mark.parametrize("tail", ['{"row_id": "c", "sa', '{"row_id": "c", "sample": 0}'])
def test_a_last_line_without_its_newline_is_torn_for_every_file_kind(tmp_path, tail):
    """Cut mid-write or complete JSON: without its newline the last line is left out by every reader,
    and cut off (to be written again) by every resume."""
    for read in (read_rows, read_traces, read_predictions):
        assert [r["row_id"] for r in read(_file(tmp_path, tail))] == ["a", "b"]
    for resume, done in ((resume_rows, None), (labelled_ids, {"a", "b"}), (completed_keys, {("a", 0), ("b", 0)})):
        path = _file(tmp_path, tail)
        result = resume(path)
        assert done is None or result == done
        assert path.read_text(encoding="utf-8").endswith('"sample": 0}\n') and '"c"' not in path.read_text()
    with open_append(path) as f:
        append_rows(f, [{"row_id": "c", "sample": 0}])
    assert [r["row_id"] for r in read_rows(path)] == ["a", "b", "c"]


def test_a_bad_line_before_the_last_is_an_error_naming_it(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"row_id": "a"}\nnot json\n{"row_id": "b"}\n', encoding="utf-8")
    for read in (read_rows, read_traces, read_predictions, resume_rows, labelled_ids):
        with pytest.raises(DataError, match=r"rows\.jsonl:2"):
            read(path)
    path.write_text('{"row_id": "a"}\n{"no_id": 1}\n', encoding="utf-8")  # complete, but not a row
    with pytest.raises(DataError, match=r"rows\.jsonl:2: not a row"):
        read_rows(path)


def test_resume_creates_a_missing_file_and_row_ids_must_be_unique(tmp_path):
    path = tmp_path / "new" / "rows.jsonl"
    assert resume_rows(path) == [] and path.is_file()
    pairs = [Pair(row_id=i, query="q", text="t", source=f"d.jsonl:{n}") for n, i in enumerate(["x", "y", "x"], 1)]
    with pytest.raises(DataError, match=r"row id 'x' appears twice \(d\.jsonl:1 and d\.jsonl:3\)"):
        check_unique_row_ids(pairs)
    check_unique_row_ids(pairs[:2])
