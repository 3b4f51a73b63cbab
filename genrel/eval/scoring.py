"""Score candidates that have no judgments (a first-stage run, a query log) into a run folder.

``score_candidates`` is ``evaluate`` without the metrics: the same resumable ``predictions.jsonl``
(:func:`genrel.eval.report.score_into_run`) plus ``run.trec``, a standard TREC run file that
``trec_eval``, ``ir-measures`` or the next stage of a search stack reads. Labels are optional; judged
rows keep their gold in the predictions so ``genrel eval`` metrics can be computed from the file later.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genrel.criteria import Criteria, load_criteria
from genrel.data.pair import Pair
from genrel.eval.predictions import read_predictions
from genrel.eval.report import score_into_run
from genrel.score.base import Scorer, ranking

TREC_RUN_FILE = "run.trec"


def score_candidates(
    scorer: Scorer,
    pairs: Sequence[Pair],
    criteria: Criteria | str,
    out_dir: str | Path,
    *,
    batch_size: int = 16,
    explain: bool = False,
    data: str | None = None,
    run_tag: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``pairs`` into ``out_dir`` (resuming) and write ``run.trec``; returns counts and paths."""
    criteria = load_criteria(criteria)
    out_dir = Path(out_dir)
    path = score_into_run(scorer, pairs, criteria, out_dir, batch_size=batch_size, explain=explain, data=data,
                          progress=progress)
    rows = read_predictions(path)
    run_file = write_trec_run(rows, out_dir / TREC_RUN_FILE, run_tag or scorer.name)
    return {
        "pairs": len(rows),
        "queries": len({_qid(r, {}) for r in rows}) if rows else 0,
        "judged": sum(r.get("gold") is not None for r in rows),
        "predictions": path,
        "trec_run": run_file,
    }


def write_trec_run(rows: Sequence[dict[str, Any]], path: str | Path, tag: str) -> Path:
    """``qid Q0 docid rank score tag`` for every prediction row, each query best first (ties keep the
    rows' order). A row without ``qid`` gets ``q1``, ``q2``… by its query text's first appearance; without
    ``docid``, its ``row_id``. Whitespace in ids and the tag becomes ``_`` (TREC fields are blank-separated)."""
    path = Path(path)
    numbers: dict[str, str] = {}
    by_query: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_query.setdefault(_qid(row, numbers), []).append(row)
    lines = []
    for qid, members in by_query.items():
        for rank, i in enumerate(ranking([float(r["score"]) for r in members]), start=1):
            row = members[i]
            docid = row.get("docid") if row.get("docid") is not None else row["row_id"]
            lines.append(f"{_field(qid)} Q0 {_field(str(docid))} {rank} {float(row['score']):.6f} {_field(tag)}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _qid(row: dict[str, Any], numbers: dict[str, str]) -> str:
    if row.get("qid") is not None:
        return str(row["qid"])
    query = row.get("query") or ""
    return numbers.setdefault(query, f"q{len(numbers) + 1}")


def _field(text: str) -> str:
    return "_".join(text.split()) or "_"
