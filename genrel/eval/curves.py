"""Learning curves of a training run folder: its ``metrics.jsonl`` read into series and drawn to PNG.

Every training stage (SFT, RL, cross-encoder and LM students) appends one JSON record per logged step
to ``RUN_DIR/metrics.jsonl``; this module knows only that file's keys, grouped into panels below. A
panel without data is left out; null (NaN) values are gaps. ``genrel plot RUN_DIR`` calls
:func:`plot_run`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from genrel.errors import DataError

METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"
# Panel title → the metric keys it draws (a key ending in '*' matches by prefix).
PANELS: dict[str, tuple[str, ...]] = {
    "loss": ("loss", "train_loss", "eval_loss", "dev_loss", "kl", "dev/nll"),
    "reward": ("reward", "rewards/*"),
    "label / step accuracy": ("eval/label_accuracy", "mean_token_accuracy", "dev/accuracy", "steps/*"),
    "masked share (SAM)": ("sam/masked_token_share",),
}
_SKIPPED_SUFFIXES = ("/std", "_std")


def read_series(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """metric key → [(step, value)] for every numeric value of the file; a torn last line is ignored."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no metrics.jsonl here", where=str(path.parent), hint="pass a training run folder")
    series: dict[str, list[tuple[float, float]]] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                continue
            raise DataError("invalid JSON", where=f"{path}:{number}") from None
        step = record.get("step", number)
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                series.setdefault(key, []).append((float(step), float(value)))
    return series


def panel_keys(series: dict[str, list], keys: tuple[str, ...]) -> list[str]:
    found = []
    for key in keys:
        if key.endswith("*"):
            found += sorted(k for k in series if k.startswith(key[:-1]) and not k.endswith(_SKIPPED_SUFFIXES))
        elif key in series:
            found.append(key)
    return [k for k in dict.fromkeys(found) if any(not math.isnan(v) for _, v in series[k])]


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draw ``run_dir/metrics.jsonl`` to ``out`` (default ``run_dir/curves.png``); returns the path."""
    from genrel.eval.plots import curves_png

    run_dir = Path(run_dir)
    series = read_series(run_dir / METRICS_FILE)
    panels = {title: {k: series[k] for k in panel_keys(series, keys)} for title, keys in PANELS.items()}
    panels = {title: lines for title, lines in panels.items() if lines}
    if not panels:
        raise DataError("no loss, reward, accuracy or masked-share values to plot", where=str(run_dir / METRICS_FILE))
    return curves_png(panels, Path(out) if out else run_dir / CURVES_FILE, title=run_dir.name)
