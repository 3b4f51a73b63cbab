"""The TRL adapter: ``GRPOTrainer`` with per-token advantages from Stepwise Advantage Masking.

:class:`SAMGRPOTrainer` overrides one hook, ``_generate_and_score_completions``: it calls TRL's, then
decodes the completions, parses them against the criteria, verifies each step against the gold label,
aligns step spans to completion tokens and replaces ``out["advantages"]`` ([B], one per completion) with
:func:`genrel.sam.sam_advantages` ([B, T]). TRL's ``_compute_loss`` multiplies the per-token ratios by
``advantages`` and only unsqueezes a [B] tensor, so a [B, T] tensor reaches the clipped surrogate
unchanged for the ``grpo``, ``dapo``, ``bnpo`` and ``dr_grpo`` loss types. No TRL method body is copied;
``tool_mask`` and the Liger loss are not used (both would change the loss).

The reward function wraps :func:`genrel.rewards.completion_reward`; metrics (``sam/``, ``steps/``,
``eval/label_accuracy``, ``format_error_rate``) go to TRL's log every step and, with TRL's own, to
``metrics.jsonl`` through :class:`MetricsFile`. Shape letters are those of :mod:`genrel.sam`.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback
from trl import GRPOTrainer

from genrel.criteria import Criteria
from genrel.grammar import Parsed, ParseError, try_parse
from genrel.rewards import RewardConfig, completion_reward
from genrel.sam import clip_advantages, masked_tokens, renormalize_kept, sam_advantages, token_step_index
from genrel.train.rl import GOLD_LABEL, GOLD_VERDICTS, SAMSettings
from genrel.verify import RIGHT, UNVERIFIABLE, WRONG, consistent, step_status


class SAMGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` + SAM. Extra keyword arguments: ``criteria``, ``sam`` (:class:`SAMSettings`) and
    ``advantage_clip`` (clamp TRL's advantages to ±this before masking; None: no clamp)."""

    def __init__(self, *args, criteria: Criteria, sam: SAMSettings | None = None,
                 advantage_clip: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.criteria = criteria
        self.sam = sam or SAMSettings()
        self.advantage_clip = advantage_clip

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        out = super()._generate_and_score_completions(inputs)
        out["advantages"] = clip_advantages(out["advantages"], self.advantage_clip)  # [B]
        batch = verify_completions(self.criteria, completion_texts(self.processing_class, out), inputs)
        masked = None
        if self.sam.mode != "off":
            out["advantages"], masked = self._sam_token_advantages(out, batch)
        self._log_batch_metrics(out, batch, masked)
        return out

    def _sam_token_advantages(self, out: dict[str, Any], batch: VerifiedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        advantages = out["advantages"]  # [B]
        mask = out["completion_mask"]  # [B, T]
        status = torch.tensor(batch.statuses, dtype=torch.long, device=advantages.device)  # [B, K]
        status = status.view(len(batch.statuses), len(self.criteria.steps))  # [B, K] even when B or K is 0
        token_step = self._token_steps(out["completion_ids"], mask, batch.spans)  # [B, T]
        masked = masked_tokens(advantages, token_step, status, self.sam.mode)  # [B, T]
        token_adv = sam_advantages(advantages, token_step, status, self.sam.mode, self.sam.alpha)  # [B, T]
        if self.sam.renormalize:
            token_adv = renormalize_kept(token_adv, ~masked, mask, self.loss_type)  # [B, T]
        return token_adv, masked

    def _token_steps(self, completion_ids: torch.Tensor, mask: torch.Tensor, spans: list) -> torch.Tensor:
        """:func:`token_step_index` over the completions that parsed; the others (no spans) are all -1,
        which early in training, when most completions do not parse yet, saves most of the alignment."""
        token_step = torch.full_like(completion_ids, -1, dtype=torch.long)  # [B, T]
        rows = [b for b, row in enumerate(spans) if any(span is not None for span in row)]
        if rows:
            index = torch.tensor(rows, device=completion_ids.device)
            token_step[index] = token_step_index(
                completion_ids[index], [spans[b] for b in rows], self.processing_class, mask[index]
            )  # [B', T]
        return token_step

    def _log_batch_metrics(self, out: dict[str, Any], batch: VerifiedBatch, masked: torch.Tensor | None) -> None:
        """Sum counts over processes, then log shares: one value per generation batch."""
        mask = out["completion_mask"].bool()  # [B, T]
        n_masked = (masked & mask).sum().item() if masked is not None else 0
        local = [n_masked, mask.sum().item(), *batch.counts(self.criteria)]
        device = self.accelerator.device
        totals = self.accelerator.gather(torch.tensor(local, dtype=torch.float64, device=device))
        totals = totals.view(-1, len(local)).sum(dim=0).tolist()
        metrics = self._metrics["train" if self.model.training else "eval"]
        for name, value in batch_metrics(self.criteria, totals).items():
            metrics[name].append(value)


@dataclass
class VerifiedBatch:
    """Per completion: parse result, gold label, step statuses [K] and step character spans [K]."""

    parsed: list[Parsed | ParseError]
    gold: list[str]
    statuses: list[list[int]]
    spans: list[list[tuple[int, int] | None]]

    def counts(self, criteria: Criteria) -> list[int]:
        """[completions, format errors, right labels, parsed, consistent, then (right, verified) per
        checked step], summable over processes."""
        parsed = [p for p in self.parsed if isinstance(p, Parsed)]
        right_labels = sum(isinstance(p, Parsed) and p.label == g for p, g in zip(self.parsed, self.gold))
        n_consistent = sum(consistent(criteria, p.verdicts, p.label) for p in parsed)
        out = [len(self.parsed), len(self.parsed) - len(parsed), right_labels, len(parsed), n_consistent]
        for k, step in enumerate(criteria.steps):
            if step.checked:
                column = [row[k] for row in self.statuses]
                out += [sum(s == RIGHT for s in column), sum(s in (RIGHT, WRONG) for s in column)]
        return out


def batch_metrics(criteria: Criteria, totals: list[float]) -> dict[str, float]:
    """Shares from summed :meth:`VerifiedBatch.counts` (preceded by masked and completion tokens)."""
    n_masked, n_tokens, n, format_errors, right_labels, n_parsed, n_consistent, *steps = totals
    metrics = {
        "sam/masked_token_share": _share(n_masked, n_tokens),
        "eval/label_accuracy": _share(right_labels, n),
        "format_error_rate": _share(format_errors, n),
        "steps/label_consistency": _share(n_consistent, n_parsed),
    }
    checked = [s for s in criteria.steps if s.checked]
    for i, step in enumerate(checked):
        metrics[f"steps/{step.id}_accuracy"] = _share(steps[2 * i], steps[2 * i + 1])
    return metrics


def _share(part: float, whole: float) -> float:
    return part / whole if whole else math.nan  # TRL's log skips NaN (nothing to measure this batch)


def completion_texts(tokenizer, out: dict[str, Any]) -> list[str]:
    """Each completion's valid tokens decoded without special tokens: the text spans refer to."""
    rows = [ids[m.bool()].tolist() for ids, m in zip(out["completion_ids"], out["completion_mask"])]
    return tokenizer.batch_decode(rows, skip_special_tokens=True)


def verify_completions(criteria: Criteria, texts: list[str], inputs: list[dict[str, Any]]) -> VerifiedBatch:
    """Parse (strictly) and verify every completion against its row's gold label and verdicts. An
    unparseable completion has no spans and every step unverifiable, so SAM leaves it alone."""
    parsed, gold, statuses, spans = [], [], [], []
    for text, row in zip(texts, inputs, strict=True):
        result = try_parse(text, criteria)
        label, verdicts = row[GOLD_LABEL], gold_verdicts(row.get(GOLD_VERDICTS))
        row_spans: list[tuple[int, int] | None] = [None] * len(criteria.steps)
        if isinstance(result, Parsed):
            for step in result.steps:
                row_spans[step.index] = step.span
            row_status = step_status(criteria, result.verdicts, label, verdicts)
        else:
            row_status = [UNVERIFIABLE] * len(criteria.steps)
        parsed.append(result)
        gold.append(label)
        statuses.append(row_status)
        spans.append(row_spans)
    return VerifiedBatch(parsed, gold, statuses, spans)


def gold_verdicts(value: str | dict | None) -> dict[str, str] | None:
    """The dataset's per-step gold verdicts (JSON text, a dict, or nothing)."""
    if not value:
        return None
    verdicts = json.loads(value) if isinstance(value, str) else dict(value)
    return verdicts or None


def completion_text(completion: str | list[dict[str, str]]) -> str:
    """TRL passes plain text, or for chat prompts ``[{"role": "assistant", "content": …}]``."""
    return completion if isinstance(completion, str) else completion[-1]["content"]


def label_reward(
    completions: list, gold_label: list[str], gold_verdicts: list[str] | None = None, *,
    criteria: Criteria, reward_config: RewardConfig, **_: Any,
) -> list[float]:
    """The outcome reward of each completion (:func:`genrel.rewards.completion_reward`), strict parsing."""
    verdict_rows = gold_verdicts or [None] * len(completions)
    return [
        completion_reward(try_parse(completion_text(c), criteria), gold, criteria, reward_config,
                          _gold_verdicts(v))
        for c, gold, v in zip(completions, gold_label, verdict_rows, strict=True)
    ]


_gold_verdicts = gold_verdicts  # label_reward's keyword argument shadows the function name


def reward_functions(criteria: Criteria, reward_config: RewardConfig) -> list:
    """TRL reward functions; a ``functools.partial`` keeps the function's name in TRL's logs."""
    return [functools.partial(label_reward, criteria=criteria, reward_config=reward_config)]


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
        from genrel.score.progress import progress_bar

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
