"""Training callbacks shared by every stage (SFT, RL): the metrics file, and the progress bars that
replace TRL's printing. One module, so a stage never imports another stage's trainer for them."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from genrel.progress import progress_bar


class MetricsFile(TrainerCallback):
    """Appends every log record, with its step, to ``metrics.jsonl`` (main process only)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"step": state.global_step, **{k: _jsonable(v) for k, v in logs.items()}}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


class RLProgress(TrainerCallback):
    """One progress bar with reward, label accuracy, format-error rate and seconds per step, in place of
    TRL's bar that also prints every log record as a dict (hidden off a terminal, like every bar here)."""

    SHOWN = {"reward": "reward", "eval/label_accuracy": "acc", "format_error_rate": "fmt_err", "step_time": "s/step"}

    def __init__(self):
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = progress_bar(state.max_steps, "rl", unit="step")
            self.bar.update(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs:
            shown = {name: logs[key] for key, name in self.SHOWN.items() if isinstance(logs.get(key), (int, float))}
            self.bar.set_postfix({name: f"{value:.3g}" for name, value in shown.items()})

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def throughput_callback():
    """A :class:`Throughput` callback (the SFT stage's bar and ``tokens_per_s``)."""
    return Throughput()


class Throughput(TrainerCallback):
    """Adds ``tokens_per_s`` (tokens seen since the last log ÷ seconds) to each log record and shows a
    progress bar with the loss and tokens/s (hidden off a terminal)."""

    def __init__(self):
        self.bar = None
        self.last_time, self.last_tokens = 0.0, 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = progress_bar(state.max_steps, "sft", unit="step")
            self.bar.update(state.global_step)
        self.last_time, self.last_tokens = time.perf_counter(), 0.0

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "num_tokens" not in logs:
            return
        now, tokens = time.perf_counter(), float(logs["num_tokens"])
        # TRL's count restarts at 0 in a resumed run.
        seen = tokens - self.last_tokens if tokens >= self.last_tokens else tokens
        logs["tokens_per_s"] = round(seen / max(now - self.last_time, 1e-9), 1)
        self.last_time, self.last_tokens = now, tokens
        if self.bar is not None and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", tok_s=f"{logs['tokens_per_s']:.0f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
