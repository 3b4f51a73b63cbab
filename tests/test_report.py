"""evaluate(): files, row identity, resume after a torn line, and agreement with metrics_from_predictions."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from genrel.criteria import load_criteria
from genrel.data.pair import Pair
from genrel.errors import ConfigError, DataError
from genrel.eval import evaluate, metrics_from_predictions, read_predictions
from genrel.eval import metrics as m
from genrel.score.base import Scored, Scorer, argmax_label, expected_gain

CRIT = load_criteria("trec-dl")
NAMES = CRIT.label_names

# docid → (probabilities over irrelevant, related, highly, perfect; verdicts; format error)
TABLE = {
    "d1": ([0.05, 0.05, 0.2, 0.7], {"topic": "yes", "answer": "yes", "exact": "yes"}, None),
    "d2": ([0.1, 0.6, 0.2, 0.1], {"topic": "yes", "answer": "no", "exact": "no"}, None),
    "d3": ([0.8, 0.1, 0.05, 0.05], {"topic": "no", "answer": "no", "exact": "no"}, None),
    "d4": ([0.1, 0.2, 0.6, 0.1], {}, "no_label"),  # malformed text, still a distribution
    "d5": ([0.3, 0.4, 0.2, 0.1], {"topic": "yes", "answer": "no", "exact": "no"}, None),
    "d6": ([0.1, 0.1, 0.3, 0.5], {"topic": "yes", "answer": "yes", "exact": "no"}, None),
    "d7": ([0.6, 0.3, 0.05, 0.05], {"topic": "no", "answer": "no", "exact": "no"}, None),
}


class TableScorer(Scorer):
    """Deterministic: probabilities, verdicts and format errors looked up by docid (or row id)."""

    name = "table"

    def __init__(self, fail_after: int | None = None):
        self.criteria = CRIT
        self.calls: list[list[str]] = []
        self.fail_after = fail_after

    def score_pairs(self, pairs, *, explain=False):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls.append([p.row_id for p in pairs])
        out = []
        for pair in pairs:
            values, verdicts, error = TABLE[pair.docid or pair.row_id]
            probs = dict(zip(NAMES, values))
            out.append(Scored(label=argmax_label(probs, CRIT), score=expected_gain(CRIT, probs), probabilities=probs,
                              reasoning="<step id=\"need\">…" if explain else None, verdicts=verdicts,
                              format_error=error, reasoning_tokens=12 if explain else 0))
        return out


def _pairs() -> list[Pair]:
    spec = [  # row_id, qid, docid, gold
        ("r1", "q1", "d1", "perfect"), ("r2", "q1", "d2", "related"), ("r3", "q1", "d3", "irrelevant"),
        ("r4", "q2", "d4", "highly"), ("r5", "q2", "d5", "highly"), ("r6", "q2", "d6", "perfect"),
        ("d7", None, None, "irrelevant"),  # no qid, no docid: grouped by query text
    ]
    return [Pair(row_id=r, query=f"query of {q}", text="t", qid=q, docid=d, label=g) for r, q, d, g in spec]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One evaluation shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("eval") / "run"
    report = evaluate(TableScorer(), _pairs(), CRIT, out, batch_size=3, data="dev.jsonl", progress=False)
    return out, report


def test_evaluate_writes_every_file(run):
    out, report = run
    for name in ("predictions.jsonl", "report.json", "report.md", "run.json", "confusion.png",
                 "reliability.png", "per_step.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "![confusion matrix](confusion.png)" in md and "![per-step accuracy](per_step.png)" in md
    assert "## Headline" in md and "Accuracy" in md and "## Per label" in md
    for key in ("accuracy", "macro_f1", "ndcg@10", "ndcg@5", "ece", "format_error_rate", "pairs_per_second", "n",
                "qwk", "mae", "per_class", "binary", "per_step_accuracy", "mean_reasoning_tokens", "confusion",
                "model", "criteria", "data"):
        assert key in report, key
    assert report["model"] == "table" and report["criteria"] == "trec-dl" and report["data"] == "dev.jsonl"
    assert report["pairs_per_second"] > 0


def test_prediction_rows_carry_input_identity_in_order(run):
    out, _ = run
    rows = read_predictions(out / "predictions.jsonl")
    assert [(r["row_id"], r["qid"], r["docid"], r["gold"]) for r in rows] == [
        (p.row_id, p.qid, p.docid, p.label) for p in _pairs()
    ]
    assert rows[-1]["qid"] is None and rows[-1]["docid"] is None
    row = rows[3]
    assert row["format_error"] == "no_label" and row["label"] == "highly"
    assert list(row["probabilities"]) == NAMES and sum(row["probabilities"].values()) == pytest.approx(1.0)
    assert row["score"] == pytest.approx(0.2 + 1.2 + 0.3)
    assert rows[0]["reasoning"].startswith("<step") and rows[0]["reasoning_tokens"] == 12


def test_report_values(run):
    _, report = run
    gold = [3, 1, 0, 2, 2, 3, 0]
    pred = [3, 1, 0, 2, 1, 3, 0]
    assert report["n"] == 7 and report["n_queries"] == 3
    assert report["accuracy"] == pytest.approx(6 / 7)
    assert report["macro_f1"] == pytest.approx(m.macro_f1(gold, pred))
    assert report["format_error_rate"] == pytest.approx(1 / 7)  # the malformed pair still counts as correct
    assert report["format_errors"] == {"no_label": 1}
    assert report["mean_reasoning_tokens"] == 12
    assert report["binary"]["threshold"] == "highly"
    assert report["confusion"]["matrix"][2] == [0, 1, 1, 0]
    assert report["ndcg_queries"] == 3  # every query counts; the lone irrelevant pair scores 0
    # r5 (gold highly) says answer=no, r6 (gold perfect) exact=no: wrong; d4 gave no verdicts
    assert report["per_step_counts"] == {"topic": [6, 6], "answer": [5, 6], "exact": [5, 6]}
    assert report["step_accuracy"] == pytest.approx(16 / 18)


def test_report_json_equals_metrics_from_predictions(run):
    out, report = run
    on_disk = json.loads((out / "report.json").read_text())
    recomputed = metrics_from_predictions(out / "predictions.jsonl", "trec-dl")
    assert on_disk == recomputed == json.loads(json.dumps(report))


def test_resume_after_crash_and_torn_line(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        evaluate(TableScorer(fail_after=1), _pairs(), CRIT, out, batch_size=2, progress=False)
    path = out / "predictions.jsonl"
    assert len(read_predictions(path)) == 3  # the first chunk: query q1, whole
    with path.open("a") as f:
        f.write('{"row_id": "r4", "qid": "q2", "do')  # torn mid-write
    assert len(read_predictions(path)) == 3
    scorer = TableScorer()
    report = evaluate(scorer, _pairs(), CRIT, out, batch_size=2, progress=False)
    assert scorer.calls == [["r4", "r5", "r6"], ["d7"]]
    rows = read_predictions(path)
    assert [r["row_id"] for r in rows] == [p.row_id for p in _pairs()]
    clean = evaluate(TableScorer(), _pairs(), CRIT, tmp_path / "clean", progress=False)
    strip = {"pairs_per_second"}
    assert {k: v for k, v in report.items() if k not in strip} == {k: v for k, v in clean.items() if k not in strip}


def test_finished_run_is_not_rescored_and_bad_middle_line_is_an_error(run, tmp_path):
    out, report = tmp_path / "run", run[1]
    shutil.copytree(run[0], out)
    scorer = TableScorer()
    again = evaluate(scorer, _pairs(), CRIT, out, data="dev.jsonl", progress=False)
    assert scorer.calls == [] and again == report
    path = out / "predictions.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "not json\n" + "".join(lines[1:]))
    with pytest.raises(DataError, match="predictions.jsonl:2"):
        read_predictions(path)


def test_resume_refuses_another_model(run):
    out, _ = run
    other = TableScorer()
    other.name = "other"
    with pytest.raises(ConfigError, match="model 'table'"):
        evaluate(other, _pairs(), CRIT, out, progress=False)


def test_threshold_and_duplicate_row_ids(tmp_path):
    report = evaluate(TableScorer(), _pairs(), CRIT, tmp_path / "a", threshold_label="related", progress=False)
    assert report["binary"]["threshold"] == "related" and report["binary"]["positives"] == 5
    with pytest.raises(ConfigError, match="great"):
        evaluate(TableScorer(), _pairs(), CRIT, tmp_path / "b", threshold_label="great", progress=False)
    pairs = _pairs()
    pairs[1] = pairs[1].model_copy(update={"row_id": "r1"})
    with pytest.raises(DataError, match="r1"):
        evaluate(TableScorer(), pairs, CRIT, tmp_path / "c", progress=False)


def test_cli_eval_with_a_stand_in_scorer(tmp_path, monkeypatch):
    from genrel.cli import app, eval_cmd

    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"id": p.row_id, "qid": p.qid, "docid": p.docid, "query": p.query,
                                        "text": p.text, "label": p.label}) + "\n" for p in _pairs()))
    monkeypatch.setattr(eval_cmd, "resolve_scorer", lambda model, backend, criteria, **options: TableScorer())
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["eval", "--model", "bm25", "--data", str(data), "--criteria", "trec-dl",
                                      "--out", str(out), "--limit", "4", "--threshold", "perfect"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["n"] == 4 and report["binary"]["threshold"] == "perfect"
    assert "Accuracy" in result.output


def test_chunks_hold_whole_queries_and_the_file_keeps_input_order(tmp_path):
    pairs = _pairs()
    interleaved = [pairs[i] for i in (0, 3, 1, 4, 6, 2, 5)]  # q1, q2, q1, q2, -, q1, q2
    scorer = TableScorer()
    evaluate(scorer, interleaved, CRIT, tmp_path / "run", batch_size=1, progress=False)
    assert scorer.calls == [["r1", "r2", "r3"], ["r4", "r5", "r6"], ["d7"]]
    rows = read_predictions(tmp_path / "run" / "predictions.jsonl")
    assert [r["row_id"] for r in rows] == [p.row_id for p in interleaved]
