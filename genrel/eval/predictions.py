"""``predictions.jsonl``: one JSON object per scored pair, written as scoring goes, readable after a crash.

A row holds what the scorer said and the gold it is judged against, so every metric can be
recomputed from this file alone (:func:`genrel.eval.report.metrics_from_predictions`):

``row_id``, ``qid``, ``docid`` (the input's, unchanged; null when absent), ``query`` (groups rows into
queries when ``qid`` is null), ``gold`` (label name or null), ``gold_verdicts`` (per-step gold verdicts
or null), ``label``, ``score`` (expected gain), ``probabilities`` (label name → p, criteria order),
``reasoning`` (text or null), ``verdicts`` (step id → verdict), ``format_error`` (kind or null),
``reasoning_tokens``.

The file is resumable by the rule of :mod:`genrel.data.resumable` (a last line without its newline is
torn: ignored when read, cut off before scoring resumes). This module knows nothing of metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genrel.criteria import Criteria
from genrel.data.pair import Pair
from genrel.data.resumable import read_rows, replace_rows
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
    return read_rows(path, what="predictions file")


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
    replace_rows(path, [by_id[row_id] for row_id in wanted])
