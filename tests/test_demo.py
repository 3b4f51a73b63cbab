"""``genrel demo``: every stage runs end to end, writes its report, and a rerun resumes instead of redoing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from genrel.demo.pipeline import DemoConfig, run_demo
from genrel.errors import ConfigError

STAGES = ("data", "traces", "sft", "rl", "eval-sft", "eval-rl", "labels", "student", "eval-student")


def test_quick_shrinks_every_stage_and_keeps_an_explicit_folder():
    full, quick = DemoConfig(), DemoConfig().quick()
    assert quick.out_dir == "runs/demo-quick"
    assert quick.sft_steps < full.sft_steps and quick.rl_steps <= full.rl_steps and not quick.zero_shot
    assert DemoConfig(out_dir="elsewhere").quick().out_dir == "elsewhere"


def test_whole_pipeline_on_a_tiny_model_then_resumes(tiny_model_dir, tmp_path):
    cfg = DemoConfig(out_dir=str(tmp_path / "demo"), model=str(tiny_model_dir)).quick()
    # the tiny tokenizer spends a token per byte or two: longer prompts than SmolLM2's
    cfg = cfg.model_copy(update={"max_new_tokens": 16, "max_length": 2040, "zero_shot": True, "lora_layers": 1})
    lines: list[str] = []
    summary = run_demo(cfg, echo=lines.append)

    out = tmp_path / "demo"
    for stage in (*STAGES, "eval-zero-shot"):
        assert (out / f".{stage}.done").is_file(), stage
    assert [row["model"] for row in summary["rows"]] == [
        "zero-shot", "warm-up SFT", "GRPO+SAM (hard)", "student (cross-encoder)"
    ]
    for row in summary["rows"]:
        report = json.loads((Path(row["dir"]) / "report.json").read_text())
        assert report["n"] == row["n"] == cfg.eval_pairs
        assert 0.0 <= row["accuracy"] <= 1.0 and row["pairs_per_second"] > 0
    assert (out / "compare" / "compare.md").is_file()
    labels = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    assert len(labels) == cfg.label_pairs and all(abs(sum(r["soft_label"].values()) - 1) < 1e-6 for r in labels)
    assert json.loads((out / "student" / "genrel_model.json").read_text())["kind"] == "cross-encoder"
    assert json.loads((out / "summary.json").read_text())["rows"] == summary["rows"]
    # each later model carries its paired difference to zero-shot, with an interval around it
    assert summary["baseline"] == "zero-shot" and "vs_first" not in summary["rows"][0]
    for row in summary["rows"][1:]:
        paired = row["vs_first"]["accuracy"]
        assert paired["mean"] == pytest.approx(row["accuracy"] - summary["rows"][0]["accuracy"])
        assert paired["interval"][0] <= paired["mean"] <= paired["interval"][1]
    # one line per stage saying what it did; the RL stage's curves beside the table
    assert [s["stage"] for s in summary["stages"]] == ["data", "eval-zero-shot", *STAGES[1:]]
    assert all(s["what"] and s["seconds"] >= 0 for s in summary["stages"])
    assert (out / "rl-curves.png").read_bytes()[:4] == b"\x89PNG" and summary["reward_curve"].endswith("rl-curves.png")
    train_queries = {json.loads(line)["query"] for line in (out / "data" / "train.jsonl").read_text().splitlines()}
    dev_queries = {json.loads(line)["query"] for line in (out / "data" / "dev.jsonl").read_text().splitlines()}
    assert dev_queries and not dev_queries & train_queries

    lines.clear()
    again = run_demo(cfg, echo=lines.append)
    assert all(any(f"[{stage}] done already" in line for line in lines) for stage in STAGES)
    assert [row["accuracy"] for row in again["rows"]] == [row["accuracy"] for row in summary["rows"]]

    with pytest.raises(ConfigError, match="other settings \\(sft_steps\\)"):
        run_demo(cfg.model_copy(update={"sft_steps": 5}), echo=lines.append)


@pytest.mark.slow
def test_demo_quick_on_the_embedded_model(tmp_path):
    """The README's command in its smoke size, on the real SmolLM2-135M and MiniLM (a few minutes)."""
    out = tmp_path / "demo-quick"
    cmd = [sys.executable, "-m", "genrel", "demo", "--quick", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "genrel demo" in proc.stdout and "warm-up SFT" in proc.stdout and "genrel serve --model" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert {row["model"] for row in summary["rows"]} == {"warm-up SFT", "GRPO+SAM (hard)", "student (cross-encoder)"}
    assert all(row["n"] == 4 for row in summary["rows"])
