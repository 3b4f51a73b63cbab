"""``genrel plot RUN_DIR``: metrics.jsonl of a training run → one PNG of learning curves."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from genrel.cli import app
from genrel.eval.curves import PANELS, panel_keys, read_series

runner = CliRunner()


def test_plot_writes_the_panels_that_have_data(tmp_path):
    records = [
        {"step": s, "loss": 1.0 / s, "reward": 0.1 * s, "reward_std": 0.2, "rewards/label_reward/mean": 0.1 * s,
         "sam/masked_token_share": 0.3, "eval/label_accuracy": 0.5, "steps/topic_accuracy": None if s == 1 else 0.6,
         "learning_rate": 1e-3}
        for s in range(1, 6)
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 6, "lo')
    series = read_series(tmp_path / "metrics.jsonl")
    assert series["loss"][0] == (1.0, 1.0) and len(series["loss"]) == 5  # the torn last line is ignored
    assert panel_keys(series, PANELS["reward"]) == ["reward", "rewards/label_reward/mean"]
    assert panel_keys(series, PANELS["label / step accuracy"]) == ["eval/label_accuracy", "steps/topic_accuracy"]
    result = runner.invoke(app, ["plot", str(tmp_path)])
    assert result.exit_code == 0, result.output
    png = (tmp_path / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_plot_without_metrics_is_one_clear_error(tmp_path):
    result = runner.invoke(app, ["plot", str(tmp_path)])
    assert result.exit_code != 0 and "no metrics.jsonl here" in str(result.exception)
