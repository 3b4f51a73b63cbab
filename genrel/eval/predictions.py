"""``predictions.jsonl``: one JSON object per scored pair, written as scoring goes, readable after a crash.

A row holds what the scorer said and the gold it is judged against, so every metric can be
recomputed from this file alone (:func:`genrel.eval.report.metrics_from_predictions`):

``row_id``, ``qid``, ``docid`` (the input's, unchanged; null when absent), ``query`` (groups rows into
queries when ``qid`` is null), ``gold`` (label name or null), ``gold_verdicts`` (per-step gold verdicts
or null), ``label``, ``score`` (expected gain), ``probabilities`` (label name → p, criteria order),
``reasoning`` (text or null), ``verdicts`` (step id → verdict), ``format_error`` (kind or null),
``reasoning_tokens``.

A crash can leave a torn last line (no newline, or not JSON); readers ignore it and
:func:`open_for_append` cuts it off before scoring resumes. This module knows nothing of metrics.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genrel.criteria import Criteria
from genrel.data.pair import Pair
from genrel.errors import DataError
from genrel.score.base import Scored

log = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.jsonl"


def prediction_row(pair: Pair, scored: Scored, criteria: Criteria) -> dict[str, Any]:
    """The row for one scored pair; probabilities are listed for every label, in criteria order."""
    return {
        "row_id": pair.row_id,
        "qid": pair.qid,
        "docid": pair.docid,
        "query": pair.query,
        "gold": pair.label,
        "gold_verdicts": pair.verdicts,
        "label": scored.label,
        "score": float(scored.score),
        "probabilities": {name: float(scored.probabilities.get(name, 0.0)) for name in criteria.label_names},
        "reasoning": scored.reasoning,
        "verdicts": dict(scored.verdicts or {}),
        "format_error": scored.format_error,
        "reasoning_tokens": int(scored.reasoning_tokens or 0),
    }


def query_key(row: dict[str, Any]) -> str:
    """Grouping key of a row for per-query metrics: its qid, else its query text (as :class:`Pair`)."""
    return row["qid"] if row.get("qid") is not None else row.get("query") or ""


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """Every complete row of a predictions file, in file order; a torn last line is ignored, a bad
    line elsewhere is a :class:`DataError` naming it."""
    rows, _ = _read_complete(Path(path))
    return rows


def _read_complete(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Complete rows and the byte length of the file up to the end of the last complete row.

    The last non-empty line is torn when it has no newline or is not a row; it is left out."""
    if not path.is_file():
        raise DataError("predictions file not found", where=str(path))
    lines = path.read_bytes().split(b"\n")  # the last item is what follows the last newline
    last = max((i for i, raw in enumerate(lines) if raw.strip()), default=-1)
    rows: list[dict[str, Any]] = []
    good_end = 0
    for i, raw in enumerate(lines[: last + 1]):
        row = _parse_row(raw) if raw.strip() else None
        if i == last and (row is None or i == len(lines) - 1):
            log.warning("%s:%d: ignoring a torn last line", path, i + 1)
            break
        if raw.strip() and row is None:
            raise DataError(
                "not a prediction row (invalid JSON or no row_id)",
                where=f"{path}:{i + 1}",
                hint="only the last line may be torn; remove the file to score again",
            )
        if row is not None:
            rows.append(row)
        good_end += len(raw) + 1
    return rows, good_end


def _parse_row(raw: bytes) -> dict[str, Any] | None:
    try:
        row = json.loads(raw)
    except ValueError:
        return None
    return row if isinstance(row, dict) and "row_id" in row else None


def open_for_append(path: Path):
    """Open a predictions file to append to, after cutting off a torn last line; returns the file and
    the rows already complete in it (empty for a new file)."""
    rows: list[dict[str, Any]] = []
    if path.is_file():
        rows, good_end = _read_complete(path)
        if good_end < path.stat().st_size:
            with path.open("r+b") as f:
                f.truncate(good_end)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a", encoding="utf-8"), rows


def write_rows(handle, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows in one write and flush, so a crash tears at most the last line."""
    handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    handle.flush()


def put_in_input_order(path: Path, pairs: Sequence[Pair]) -> None:
    """Rewrite the file so it holds exactly one row per input pair, in input order, when it does not
    already (a resume on different input, e.g. another ``--limit``); rows of other pairs are dropped."""
    rows = read_predictions(path)
    wanted = [p.row_id for p in pairs]
    if [r["row_id"] for r in rows] == wanted:
        return
    by_id = {r["row_id"]: r for r in rows}
    dropped = len(set(by_id) - set(wanted))
    if dropped:
        log.warning("%s: dropping %d row(s) of pairs not in this evaluation's input", path, dropped)
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        write_rows(f, [by_id[row_id] for row_id in wanted])
    os.replace(tmp, path)
