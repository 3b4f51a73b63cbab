"""bench/quality.py end to end on the shared data, BM25 rows only (seconds; BM25 runs on the full
evaluation sets, the samples are for the zero-shot rows): the table file, the run
folders, the compare tables, and that a second run reuses the finished runs instead of scoring again."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_quality_bench_bm25_rows_and_reuse(shared_data, tmp_path):
    out, table = tmp_path / "quality", tmp_path / "quality.md"
    command = [sys.executable, str(REPO / "bench" / "quality.py"), "--out", str(out), "--table", str(table),
               "--only", "bm25", "--limit", "30"]
    env = {**os.environ, "GENREL_SHARED_DATA": str(shared_data)}
    first = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]

    lines = [line for line in table.read_text().splitlines() if line.startswith("| bm25 ")]
    assert [line.split("|")[2:4] for line in lines] == [
        [" trec-dl20 ", " dev "],
        [" homedepot ", " test2000 "],
        [" qbqtc ", " dev "],
    ]
    dev = json.loads((out / "trec-dl20" / "dev" / "bm25" / "report.json").read_text())
    assert dev["n"] == 1334 and dev["model"] == "bm25" and dev["ndcg@10"] is not None
    assert dev["map"] is not None and dev["mrr@10"] is not None

    second = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stderr.count("finished run reused") == 3
    assert "scoring" not in second.stderr
