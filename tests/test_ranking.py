"""Ranking metrics equal trec_eval's (ir-measures on pytrec_eval), ties and all-irrelevant queries included."""

from __future__ import annotations

import json
import math

import ir_measures
import pytest
from ir_measures import AP, RR, R, nDCG

from genrel.criteria import load_criteria
from genrel.errors import ConfigError
from genrel.eval import ranking
from genrel.eval.report import metrics_from_predictions, write_trec_run

NAMES = ["irrelevant", "related", "highly", "perfect"]
# (qid, docid, gold, score): q1 has a three-way tie at 0.7; q2's judged documents are all irrelevant;
# q3 has its only relevant document at rank 11 (outside MRR@10 and recall@10).
CASE = [
    ("q1", "d1", "perfect", 0.7), ("q1", "d2", "irrelevant", 0.7), ("q1", "d3", "highly", 0.7),
    ("q1", "d4", "related", 0.9), ("q1", "d5", "irrelevant", 0.1),
    ("q2", "e1", "irrelevant", 0.5), ("q2", "e2", "irrelevant", 0.5), ("q2", "e3", "irrelevant", 0.2),
    *[("q3", f"f{i:02d}", "irrelevant", 1.0 - i / 100) for i in range(10)], ("q3", "z", "highly", 0.0),
]


def _rows():
    return [{"row_id": f"r{i}", "qid": q, "docid": d, "query": q, "gold": g, "gold_verdicts": None, "label": g,
             "score": s, "probabilities": {n: float(n == g) for n in NAMES}, "reasoning": None, "verdicts": {},
             "format_error": None, "reasoning_tokens": 0} for i, (q, d, g, s) in enumerate(CASE)]


@pytest.fixture
def predictions(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    return path


def _ir_measures_reference():
    """The same case straight through ir-measures' pytrec_eval provider, built independently."""
    gains = {n: i for i, n in enumerate(NAMES)}  # trec-dl gains equal the label index
    graded = [ir_measures.Qrel(q, d, gains[g]) for q, d, g, _ in CASE]
    binary = [ir_measures.Qrel(q, d, int(gains[g] >= 2)) for q, d, g, _ in CASE]
    run = [ir_measures.ScoredDoc(q, d, s) for q, d, _, s in CASE]
    ev = ir_measures.pytrec_eval
    out = {**ev.calc_aggregate([nDCG @ 5, nDCG @ 10], graded, run), **ev.calc_aggregate([AP, R @ 10], binary, run)}
    return {"ndcg@5": out[nDCG @ 5], "ndcg@10": out[nDCG @ 10], "map": out[AP], "recall@10": out[R @ 10]}


def test_report_ranking_metrics_equal_ir_measures(predictions):
    report = metrics_from_predictions(predictions, "trec-dl")
    for key, value in _ir_measures_reference().items():
        assert report[key] == pytest.approx(value, abs=1e-12), key
    assert report["ndcg_queries"] == 3  # q2 (all irrelevant) counts, with 0


def test_ties_break_by_docid_descending_as_trec_eval(predictions):
    report = metrics_from_predictions(predictions, "trec-dl")
    # q1 in trec_eval order: d4 (0.9), then the tie at 0.7 by docid descending: d3, d2, d1; then d5.
    dcg = 1 / math.log2(2) + 2 / math.log2(3) + 0 + 3 / math.log2(5)
    idcg = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    per_query = ranking.per_query_measures(*_parallel(), [0, 1, 2, 3], 2)
    assert per_query["ndcg@10"]["q1"] == pytest.approx(dcg / idcg)
    assert per_query["ndcg@10"]["q2"] == 0.0 and per_query["map"]["q2"] == 0.0
    # first relevant (highly or better) of q1 is d3 at rank 2; q3's is at rank 11, outside the top 10
    assert per_query["mrr@10"] == {"q1": 0.5, "q2": 0.0, "q3": 0.0}
    assert report["mrr@10"] == pytest.approx(0.5 / 3)
    assert per_query["map"]["q3"] == pytest.approx(1 / 11)  # MAP has no depth cut


def _parallel():
    return [c[0] for c in CASE], [c[1] for c in CASE], [NAMES.index(c[2]) for c in CASE], [c[3] for c in CASE]


def test_trec_run_file_round_trips_through_ir_measures(predictions, tmp_path):
    path = write_trec_run(predictions, tmp_path / "run.trec", "my run")
    lines = path.read_text().splitlines()
    assert lines[0].split() == ["q1", "Q0", "d4", "1", "0.90000000000000002", "my_run"]
    assert [line.split()[2] for line in lines[1:4]] == ["d3", "d2", "d1"]
    run = list(ir_measures.read_trec_run(str(path)))
    graded = [ir_measures.Qrel(q, d, NAMES.index(g)) for q, d, g, _ in CASE]
    from_file = ir_measures.pytrec_eval.calc_aggregate([nDCG @ 10], graded, run)[nDCG @ 10]
    assert from_file == pytest.approx(metrics_from_predictions(predictions, "trec-dl")["ndcg@10"], abs=1e-12)


def test_fractional_gains_are_scaled_to_integers():
    assert ranking.integer_gains(load_criteria("esci").gains) == [0, 1, 10, 100]
    with pytest.raises(ConfigError, match="non-negative"):
        ranking.integer_gains([0, -1])


def test_docid_falls_back_to_row_id_when_not_unique():
    rows = [{"row_id": "a", "docid": "x"}, {"row_id": "b", "docid": "x"}, {"row_id": "c", "docid": "y"}]
    assert ranking.doc_ids(rows, ["q", "q", "p"]) == ["a", "b", "y"]
