"""Ranking metrics exactly as ``trec_eval`` computes them, through ``ir-measures`` on ``pytrec_eval``.

genrel's own rows are turned into TREC qrels and a TREC run over the *judged pool* (every judged row is
both a qrel and a run entry, nothing else), and the pytrec_eval provider of ir-measures computes:

* ``ndcg@5``, ``ndcg@10``: trec_eval's ``ndcg_cut``; the gain of a row is the criteria ``gain`` of its
  gold label (linear gain, discount log2(rank + 1), ideal DCG from the query's judged rows). trec_eval
  takes integer relevance, so the gains are multiplied by the smallest power of ten that makes them
  all integers (nDCG does not change when every gain is scaled);
* ``map`` (``AP``), ``mrr@10`` (``RR``) and ``recall@10`` (``R@10``): binary relevance, relevant = gold
  label at or above the report's threshold label (for ``trec-dl`` that is ``highly``, the TREC DL
  track's binary cut). pytrec_eval's ``recip_rank`` has no depth, so MRR@10 is computed on the run
  cut to each query's top 10 (what ``trec_eval -M 10 -m recip_rank`` does).

Ties: trec_eval orders a query's documents by score descending, then by document id descending
(string comparison); pytrec_eval does the same, and so does :func:`trec_order` (used for the MRR@10
cut and the run file). The document id is the row's ``docid`` when every row of the query has a
distinct one, else its ``row_id``. Every query with a judged row counts, including one whose judged
rows are all irrelevant: it scores 0 on every measure (trec_eval's mean over the queries in both
qrels and run). This module knows no files beyond writing a run file.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from genrel.errors import ConfigError, MissingExtraError

NDCG_CUTOFFS = (5, 10)
MRR_DEPTH = 10
RECALL_DEPTH = 10
MEASURES = ("ndcg@5", "ndcg@10", "map", "mrr@10", "recall@10")


def doc_ids(rows: Sequence[dict[str, Any]], queries: Sequence[str]) -> list[str]:
    """Per row, the document id used for ties and in run files (see the module docstring)."""
    by_query: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        by_query.setdefault(q, []).append(i)
    out = [""] * len(rows)
    for members in by_query.values():
        ids = [rows[i].get("docid") for i in members]
        use_docid = None not in ids and len(set(map(str, ids))) == len(ids)
        for i in members:
            out[i] = str(rows[i]["docid"]) if use_docid else str(rows[i]["row_id"])
    return out


def integer_gains(gains: Sequence[float]) -> list[int]:
    """The gains times the smallest power of ten (up to 10⁶) that makes every one an integer."""
    if any(g < 0 for g in gains):
        raise ConfigError("nDCG needs non-negative gains; give every label a gain >= 0 in the criteria",
                          where="criteria.labels")
    for power in range(7):
        scaled = [Fraction(str(g)) * 10**power for g in gains]
        if all(s.denominator == 1 for s in scaled):
            return [int(s) for s in scaled]
    raise ConfigError(f"gains {list(gains)} need more than 6 decimals", where="criteria.labels")


def trec_order(entries: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """(doc id, score) in trec_eval's order: score descending, then doc id descending."""
    return sorted(entries, key=lambda e: (e[1], e[0]), reverse=True)


def per_query_measures(
    queries: Sequence[str], docs: Sequence[str], gold: Sequence[int], scores: Sequence[float],
    gains: Sequence[float], threshold: int,
) -> dict[str, dict[str, float]]:
    """Measure name (:data:`MEASURES`) → query → value, for judged rows given as parallel lists:
    query key, doc id, gold label index, score; ``gains`` per label index; ``threshold`` the lowest
    label index counted relevant."""
    try:
        import ir_measures
        from ir_measures import AP, RR, R, nDCG
    except ImportError:
        raise MissingExtraError("ir-measures", "eval") from None
    if not len(queries):
        return {name: {} for name in MEASURES}
    int_gain = integer_gains(gains)
    graded = [ir_measures.Qrel(q, d, int_gain[g]) for q, d, g in zip(queries, docs, gold)]
    binary = [ir_measures.Qrel(q, d, int(g >= threshold)) for q, d, g in zip(queries, docs, gold)]
    run: dict[str, list[tuple[str, float]]] = {}
    for q, d, s in zip(queries, docs, scores):
        run.setdefault(q, []).append((d, float(s)))
    full = [ir_measures.ScoredDoc(q, d, s) for q, entries in run.items() for d, s in entries]
    top = [ir_measures.ScoredDoc(q, d, s) for q, entries in run.items() for d, s in trec_order(entries)[:MRR_DEPTH]]
    out: dict[str, dict[str, float]] = {name: {} for name in MEASURES}
    names = {nDCG @ 5: "ndcg@5", nDCG @ 10: "ndcg@10", AP: "map", R @ RECALL_DEPTH: "recall@10", RR: "mrr@10"}
    jobs = (([nDCG @ 5, nDCG @ 10], graded, full), ([AP, R @ RECALL_DEPTH], binary, full), ([RR], binary, top))
    for measures, qrels, scored in jobs:
        evaluator = ir_measures.pytrec_eval.evaluator(measures, qrels)
        for metric in evaluator.iter_calc(scored):
            out[names[metric.measure]][metric.query_id] = float(metric.value)
    return out


def mean_measures(per_query: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each measure's mean over its queries (each query weighs the same; nan when there are none)."""
    return {name: float(np.mean(list(v.values()))) if v else float("nan") for name, v in per_query.items()}


def write_run_file(path: str | Path, queries: Sequence[str], docs: Sequence[str], scores: Sequence[float],
                   run_name: str) -> Path:
    """A standard TREC run file: ``qid Q0 docid rank score run_name``, each query's rows in
    :func:`trec_order`, rank from 1; the score printed with 17 significant digits (round-trips).
    Whitespace inside an id or the run name becomes ``_`` (TREC fields are blank-separated)."""
    path = Path(path)
    by_query: dict[str, list[tuple[str, float]]] = {}
    for q, d, s in zip(queries, docs, scores):
        by_query.setdefault(q, []).append((d, float(s)))
    tag = _run_field(run_name) if run_name.strip() else "genrel"
    lines = []
    for q, entries in by_query.items():
        for rank, (d, s) in enumerate(trec_order(entries), start=1):
            lines.append(f"{_run_field(q)} Q0 {_run_field(d)} {rank} {s:.17g} {tag}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _run_field(text: str) -> str:
    return "_".join(text.split()) or "_"
