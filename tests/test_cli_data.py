"""``genrel data check|split`` and ``genrel prompt`` on small files; the shared real data when present."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from genrel.cli import app

runner = CliRunner()


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def good(tmp_path):
    rows = [
        {"qid": str(q), "query": f"query {q}", "text": f"text {q}-{d}", "label": (q + d) % 4}
        for q in range(10)
        for d in range(3)
    ]
    return _write(tmp_path / "good.jsonl", rows)


@pytest.fixture
def bad(tmp_path):
    rows = [{"query": "q", "text": "t", "label": "perfect"}, {"query": "q", "text": "t", "label": "great"}]
    return _write(tmp_path / "bad.jsonl", rows)


def test_check_prints_label_counts(good):
    result = runner.invoke(app, ["data", "check", str(good), "--criteria", "trec-dl"])
    assert result.exit_code == 0, result.output
    for name in ("irrelevant", "related", "highly", "perfect"):
        assert name in result.output
    assert "30" in result.output and "10 queries" in result.output and "no problems" in result.output


def test_check_lists_bad_rows_and_fails(bad):
    result = runner.invoke(app, ["data", "check", str(bad), "--criteria", "trec-dl"])
    assert result.exit_code == 1
    assert f"{bad}:2: label: unknown label 'great'" in result.output
    assert "Traceback" not in result.output
    skipped = runner.invoke(app, ["data", "check", str(bad), "--criteria", "trec-dl", "--on-error", "skip"])
    assert skipped.exit_code == 1 and f"{bad}:2" in skipped.output  # any bad row fails the check


def test_check_with_column_map(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("q,doc,stars,brand\nq1,t1,3,Acme\n", encoding="utf-8")
    args = ["data", "check", str(path), "-c", "trec-dl", "--map", "query=q", "--map", "text=doc", "-m", "label=stars"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "perfect" in result.output


def test_file_errors_are_one_line_without_traceback(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("question,text,label\nq,t,1\n", encoding="utf-8")
    cmd = [sys.executable, "-c", "from genrel.cli import main; main()", "data", "check", str(path), "-c", "trec-dl"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4
    assert "Traceback" not in proc.stderr
    assert f"{path}: no query column found" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_usage_errors_show_usage_not_an_internal_error():
    cmd = [sys.executable, "-m", "genrel", "sft"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Missing option '--config'" in proc.stderr and "internal error" not in proc.stderr


def test_split_writes_query_disjoint_files(good, tmp_path):
    out = tmp_path / "splits"
    result = runner.invoke(app, ["data", "split", str(good), "-c", "trec-dl", "--out", str(out), "--dev", "0.3"])
    assert result.exit_code == 0, result.output
    rows = {n: [json.loads(x) for x in (out / f"{n}.jsonl").read_text().splitlines()] for n in ("train", "dev")}
    qids = {name: {r["qid"] for r in part} for name, part in rows.items()}
    assert len(qids["dev"]) == 3 and len(qids["train"]) == 7 and not qids["dev"] & qids["train"]
    again = runner.invoke(app, ["data", "check", str(out / "dev.jsonl"), "-c", "trec-dl"])
    assert again.exit_code == 0, again.output


def test_prompt_command(good):
    args = ["prompt", "-c", "trec-dl", "--query", "fleas", "--text", "Fleas jump.", "--title", "F"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Query: fleas" in result.output and "Title: F" in result.output and "<label>" in result.output
    result = runner.invoke(app, ["prompt", "-c", "trec-dl", "--data", str(good), "--row", "4", "--json"])
    messages = json.loads(result.output)
    assert [m["role"] for m in messages] == ["system", "user"] and "Query: query 1" in messages[1]["content"]


@pytest.mark.slow
def test_shared_data_check(shared_data):
    """The real files, by path: every row loads and every label of the scale occurs."""
    cases = [
        (shared_data / "trec-dl20" / "train.jsonl", "trec-dl", ["irrelevant", "related", "highly", "perfect"]),
        (shared_data / "homedepot" / "train.csv", "homedepot", ["irrelevant", "partial", "perfect"]),
    ]
    for path, criteria, labels in cases:
        if not path.is_file():
            pytest.skip(f"{path} not found")
        result = runner.invoke(app, ["data", "check", str(path), "--criteria", criteria])
        assert result.exit_code == 0, result.output
        assert "no problems" in result.output
        for label in labels:
            assert label in result.output
