"""Resumable JSON-lines files: teacher traces, eval predictions and teacher labels are all written a row
at a time as a stage goes, and a rerun continues where a killed run stopped. One rule for all of them:

- a row is one JSON object with a ``row_id``, on one line ending in a newline;
- a last line without its newline is **torn** (the run was killed mid-write): readers leave it out and
  :func:`resume_rows` cuts it off, so the row is written again by the rerun;
- any other line that is not a row is a :class:`~genrel.errors.DataError` naming ``file:line``;
- the inputs of a resumable stage have unique row ids (:func:`check_unique_row_ids`), since resuming
  matches rows by id.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from genrel.data.pair import Pair
from genrel.errors import DataError

log = logging.getLogger(__name__)


def iter_rows(path: str | Path, *, what: str = "rows file", hint: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for every complete row of ``path``, in file order; a torn last line is left
    out. A missing file is a DataError about ``what`` (with ``hint``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found", where=str(path), hint=hint)
    lines = path.read_bytes().split(b"\n")  # the last item is what follows the last newline: torn unless empty
    for number, raw in enumerate(lines[:-1], start=1):
        if not raw.strip():
            continue
        row = _decode(raw)
        if row is None:
            raise DataError(
                "not a row (invalid JSON, or no row_id)",
                where=f"{path}:{number}",
                hint="only a last line without its newline may be torn; fix or remove this line",
            )
        yield number, row
    if lines[-1].strip():
        log.warning("%s:%d: ignoring a torn last line (%d bytes)", path, len(lines), len(lines[-1]))


def read_rows(path: str | Path, *, what: str = "rows file", hint: str | None = None) -> list[dict[str, Any]]:
    """Every complete row of ``path`` (:func:`iter_rows` without the line numbers)."""
    return [row for _, row in iter_rows(path, what=what, hint=hint)]


def resume_rows(path: str | Path) -> list[dict[str, Any]]:
    """Prepare ``path`` for appending and return its complete rows: the folder and an empty file are
    created when missing; a torn last line is cut off; any other bad line raises DataError."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.touch()
        return []
    rows = read_rows(path)
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
        with path.open("r+b") as f:
            f.truncate(keep)
    return rows


def open_append(path: str | Path) -> IO[str]:
    """``path`` opened to append rows (UTF-8, ``\\n`` line ends)."""
    return open(path, "a", encoding="utf-8", newline="\n")


def append_rows(handle: IO[str], rows: Iterable[dict[str, Any]], *, fsync: bool = False) -> None:
    """Append rows in one write and flush (and with ``fsync`` sync to disk), so a crash tears at most
    the last line."""
    handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    handle.flush()
    if fsync:
        os.fsync(handle.fileno())


def replace_rows(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write ``rows`` as the whole of ``path`` through a temporary file, so a kill leaves the old file
    (or none), never half a file; parent folders are created. The temporary file is this process's own,
    so two processes writing the same file race only on the final rename, never on half-written bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as f:
            append_rows(f, rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def check_unique_row_ids(pairs: Sequence[Pair]) -> None:
    """Resuming matches rows by id: a DataError naming the first repeated one and both places."""
    seen: dict[str, Pair] = {}
    for pair in pairs:
        if pair.row_id in seen:
            raise DataError(
                f"row id '{pair.row_id}' appears twice ({seen[pair.row_id].source or '?'} and {pair.source or '?'})",
                where=pair.source,
                hint="resuming needs unique row ids: fix the id column, or map none so line numbers are used",
            )
        seen[pair.row_id] = pair


def _decode(raw: bytes) -> dict[str, Any] | None:
    try:
        row = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return row if isinstance(row, dict) and "row_id" in row else None
