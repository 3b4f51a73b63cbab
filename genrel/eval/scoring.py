"""Score candidates that have no judgments (a first-stage run, a query log) into a run folder.

``score_candidates`` is ``evaluate`` without the metrics: the same resumable ``predictions.jsonl``
(:func:`genrel.eval.report.score_into_run`) plus ``run.trec``, the TREC run file of
:func:`genrel.eval.report.write_trec_run` (trec_eval's order), which ``trec_eval``, ``ir-measures`` or the next stage of a search stack reads. Labels are optional; judged
rows keep their gold in the predictions so ``genrel eval`` metrics can be computed from the file later.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genrel.criteria import Criteria, load_criteria
from genrel.data.pair import Pair
from genrel.eval.predictions import query_key, read_predictions
from genrel.eval.report import score_into_run, write_trec_run
from genrel.score.base import Scorer

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
    run_file = write_trec_run(path, out_dir / TREC_RUN_FILE, run_tag or scorer.name)
    return {
        "pairs": len(rows),
        "queries": len({query_key(r) for r in rows}),
        "judged": sum(r.get("gold") is not None for r in rows),
        "predictions": path,
        "trec_run": run_file,
    }

