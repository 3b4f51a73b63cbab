"""``genrel score`` on a first-stage TREC run (labels optional), resumable, writing a TREC run file that
ir-measures reads back; ``genrel eval --trec-run`` on a BEIR folder."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from genrel.cli import app
from test_data_sources import beir_folder, write

runner = CliRunner()
ir_measures = pytest.importorskip("ir_measures")


@pytest.fixture
def trec_parts(tmp_path):
    write(tmp_path / "docs.tsv", "d1\tAdult fleas live up to a year on a host.\nd2\tFlea collars in five colours.\n"
                                 "d3\tTicks are arachnids.\nd4\tHow long fleas live depends on the host.\n")
    write(tmp_path / "queries.tsv", "1\thow long do fleas live\n2\tticks\n")
    write(tmp_path / "qrels.txt", "1 0 d1 3\n1 0 d2 0\n2 0 d3 2\n")
    write(tmp_path / "first-stage.run", "1 Q0 d2 1 9.0 bm25\n1 Q0 d1 2 8.0 bm25\n1 Q0 d4 3 7.0 bm25\n"
                                        "2 Q0 d3 1 5.0 bm25\n2 Q0 d4 2 4.0 bm25\n")
    return tmp_path


def test_score_a_run_file_writes_a_trec_run_ir_measures_reads(trec_parts):
    tmp = trec_parts
    out = tmp / "scored"
    args = ["score", "--model", "bm25", "-c", "trec-dl", "--run", str(tmp / "first-stage.run"),
            "--docs", str(tmp / "docs.tsv"), "--queries", str(tmp / "queries.tsv"), "--out", str(out), "--tag", "genrel bm25"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "5 pairs of 2 queries scored (0 judged)" in result.output
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [(r["qid"], r["docid"], r["gold"]) for r in rows] == [
        ("1", "d2", None), ("1", "d1", None), ("1", "d4", None), ("2", "d3", None), ("2", "d4", None)]
    run = list(ir_measures.read_trec_run(str(out / "run.trec")))
    assert len(run) == 5 and {d.query_id for d in run} == {"1", "2"}
    by_pair = {(r["qid"], r["docid"]): r["score"] for r in rows}
    assert all(d.score == pytest.approx(by_pair[(d.query_id, d.doc_id)], abs=1e-6) for d in run)
    lines = (out / "run.trec").read_text().splitlines()
    q1 = [line.split() for line in lines if line.startswith("1 ")]
    assert [int(x[3]) for x in q1] == [1, 2, 3] and [float(x[4]) for x in q1] == sorted((float(x[4]) for x in q1),
                                                                                       reverse=True)
    assert all(x[5] == "genrel_bm25" for x in q1)
    qrels = list(ir_measures.read_trec_qrels(str(tmp / "qrels.txt")))
    ndcg = ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)[ir_measures.nDCG @ 10]
    assert 0.0 < ndcg <= 1.0

    # Resume: a row already in the file is kept as it is, not scored again.
    rows[0]["score"] = 99.0
    (out / "predictions.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert runner.invoke(app, args).exit_code == 0
    again = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(again) == 5 and again[0]["score"] == 99.0
    first = (out / "run.trec").read_text().splitlines()[0].split()
    assert first[2:4] == ["d2", "1"] and float(first[4]) == 99.0


def test_score_with_qrels_and_depth_through_a_source_file(trec_parts):
    tmp = trec_parts
    write(tmp / "rerank.yaml", "docs: docs.tsv\nqueries: queries.tsv\nqrels: qrels.txt\nrun: first-stage.run\n"
                               "depth: 1\n")
    result = runner.invoke(app, ["score", "--model", "bm25", "-c", "trec-dl", "--data", str(tmp / "rerank.yaml"),
                                 "--out", str(tmp / "top1")])
    assert result.exit_code == 0, result.output
    assert "2 pairs of 2 queries scored (2 judged)" in result.output  # d2 (0) and d3 (2)
    assert len((tmp / "top1" / "run.trec").read_text().splitlines()) == 2


def test_eval_on_a_beir_folder_writes_a_trec_run(tmp_path):
    root = beir_folder(tmp_path / "beir")
    run_file = tmp_path / "eval.trec"
    result = runner.invoke(app, ["eval", "--model", "bm25", "-c", "trec-dl", "--data", str(root), "--out",
                                 str(tmp_path / "ev"), "--trec-run", str(run_file)])
    assert result.exit_code == 0, result.output
    run = list(ir_measures.read_trec_run(str(run_file)))
    assert sorted((d.query_id, d.doc_id) for d in run) == [("q1", "d1"), ("q1", "d2"), ("q2", "d3")]
    assert json.loads((tmp_path / "ev" / "report.json").read_text())["n_judged"] == 3
