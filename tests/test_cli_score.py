"""``genrel train cross-encoder`` and ``genrel export onnx`` end to end on a tiny encoder."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from genrel.cli import app
from score_helpers import save_tiny_encoder

runner = CliRunner()


def test_train_then_export(tmp_path):
    pytest.importorskip("onnxruntime")
    rows = [
        {"qid": str(q), "query": "red running shoes", "text": "red running shoes size" if d % 2 else "garden hose",
         "label": 3 if d % 2 else 0}
        for q in range(6) for d in range(4)
    ]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = save_tiny_encoder(tmp_path / "base")
    out = tmp_path / "ce"
    result = runner.invoke(app, [
        "train", "cross-encoder", "--data", str(data), "--criteria", "trec-dl", "--out", str(out),
        "--base", str(base), "--dev-fraction", "0.5", "--epochs", "2", "--batch-size", "4", "--max-length", "32",
    ])
    assert result.exit_code == 0, result.output
    assert "training on 12 pairs, dev 12 pairs" in result.output and "dev: accuracy" in result.output
    assert json.loads((out / "genrel_model.json").read_text())["kind"] == "cross-encoder"

    result = runner.invoke(app, ["export", "onnx", str(out), "--out", str(tmp_path / "onnx"), "--int8"])
    assert result.exit_code == 0, result.output
    assert "max |Δ logit| vs torch" in result.output and "model.int8.onnx" in result.output


def test_train_reports_bad_data_as_one_line(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"query": "q", "text": "t", "label": "great"}) + "\n")
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-c", "from genrel.cli import main; main()", "train", "cross-encoder", "--data", str(data),
         "--criteria", "trec-dl", "--out", str(tmp_path / "ce")],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 4, r.stderr
    assert "bad.jsonl:1" in r.stderr and "Traceback" not in r.stderr
