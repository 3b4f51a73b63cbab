"""The TRL adapter: ``GRPOTrainer`` with per-token advantages from Stepwise Advantage Masking.

:class:`SAMGRPOTrainer` overrides one hook, ``_generate_and_score_completions``: it calls TRL's, then
decodes the completions, takes their parse and step statuses from :class:`VerifiedCompletions` (filled
by the reward function, so each completion is parsed and verified once per batch), aligns step spans to
completion tokens and replaces ``out["advantages"]`` ([B], one per completion) with SAM's [B, T]
advantages (:mod:`genrel.sam.masking`, the mask computed once). TRL's ``_compute_loss`` multiplies the
per-token ratios by ``advantages`` and only unsqueezes a [B] tensor, so a [B, T] tensor reaches the clipped surrogate
unchanged for the ``grpo``, ``dapo``, ``bnpo`` and ``dr_grpo`` loss types. No TRL method body is copied;
``tool_mask`` and the Liger loss are not used (both would change the loss).

The reward function wraps :func:`genrel.rewards.completion_reward`; metrics (``sam/``, ``steps/``,
``eval/label_accuracy``, ``format_error_rate``) go to TRL's log every step and, with TRL's own, to
``metrics.jsonl`` through :class:`genrel.train.callbacks.MetricsFile`. Shape letters are those of :mod:`genrel.sam`.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any

import torch
from trl import GRPOTrainer

from genrel.criteria import Criteria
from genrel.grammar import Parsed, ParseError, try_parse
from genrel.rewards import RewardConfig, completion_reward
from genrel.sam.alignment import token_step_index
from genrel.sam.masking import clip_advantages, masked_advantages, masked_tokens, renormalize_kept
from genrel.train.rl_config import GOLD_LABEL, GOLD_VERDICTS, SAMSettings
from genrel.verify import UNVERIFIABLE, consistent, status_counts, step_status


class SAMGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` + SAM. Extra keyword arguments: ``criteria``, ``sam`` (:class:`SAMSettings`) and
    ``advantage_clip`` (clamp TRL's advantages to ±this before masking; None: no clamp)."""

    def __init__(self, *args, criteria: Criteria, sam: SAMSettings | None = None,
                 verified: VerifiedCompletions | None = None, advantage_clip: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.criteria = criteria
        self.sam = sam or SAMSettings()
        self.verified = verified or VerifiedCompletions(criteria)  # shared with the reward function
        self.advantage_clip = advantage_clip

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        out = super()._generate_and_score_completions(inputs)
        out["advantages"] = clip_advantages(out["advantages"], self.advantage_clip)  # [B]
        texts = completion_texts(self.processing_class, out)
        batch = verify_completions(self.criteria, texts, inputs, self.verified)
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
        token_adv = masked_advantages(advantages, masked, self.sam.mode, self.sam.alpha)  # [B, T]
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
        for right, verified in status_counts(criteria, self.statuses).values():
            out += [right, verified]
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


class VerifiedCompletions:
    """Each completion of a generation batch parsed (strictly) and verified once: the reward function
    fills it, the SAM hook reads it. Keyed by completion text, gold label and gold verdicts; it holds
    one batch (the reward function's call starts a new one), and a text it does not hold is parsed then."""

    def __init__(self, criteria: Criteria):
        self.criteria = criteria
        self._rows: dict[tuple[str, str, str], tuple[Parsed | ParseError, list[int]]] = {}

    def new_batch(self) -> None:
        self._rows.clear()

    def get(self, text: str, gold: str, verdicts: str | dict | None) -> tuple[Parsed | ParseError, list[int]]:
        """(parse result, step statuses [K]); an unparseable completion has every step unverifiable."""
        as_text = verdicts if isinstance(verdicts, str) or verdicts is None else json.dumps(verdicts, sort_keys=True)
        key = (text, gold, as_text)
        found = self._rows.get(key)
        if found is None:
            result = try_parse(text, self.criteria)
            if isinstance(result, Parsed):
                statuses = step_status(self.criteria, result.verdicts, gold, gold_verdicts(verdicts))
            else:
                statuses = [UNVERIFIABLE] * len(self.criteria.steps)
            found = self._rows[key] = (result, statuses)
        return found


def verify_completions(criteria: Criteria, texts: list[str], inputs: list[dict[str, Any]],
                       verified: VerifiedCompletions | None = None) -> VerifiedBatch:
    """Every completion parsed and verified against its row's gold label and verdicts (through
    ``verified``, where the reward function already did it). An unparseable completion has no spans
    and every step unverifiable, so SAM leaves it alone."""
    verified = verified or VerifiedCompletions(criteria)
    parsed, gold, statuses, spans = [], [], [], []
    for text, row in zip(texts, inputs, strict=True):
        label = row[GOLD_LABEL]
        result, row_status = verified.get(text, label, row.get(GOLD_VERDICTS))
        row_spans: list[tuple[int, int] | None] = [None] * len(criteria.steps)
        if isinstance(result, Parsed):
            for step in result.steps:
                row_spans[step.index] = step.span
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
    criteria: Criteria, reward_config: RewardConfig, verified: VerifiedCompletions | None = None, **_: Any,
) -> list[float]:
    """The outcome reward of each completion (:func:`genrel.rewards.completion_reward`), strict parsing;
    each completion's parse and step statuses are kept in ``verified`` for the SAM hook."""
    verified = verified or VerifiedCompletions(criteria)
    verified.new_batch()
    verdict_rows = gold_verdicts or [None] * len(completions)
    rewards = []
    for c, gold, v in zip(completions, gold_label, verdict_rows, strict=True):
        parsed, statuses = verified.get(completion_text(c), gold, v)
        rewards.append(completion_reward(parsed, gold, criteria, reward_config, _gold_verdicts(v), statuses=statuses))
    return rewards


_gold_verdicts = gold_verdicts  # label_reward's keyword argument shadows the function name


def reward_functions(criteria: Criteria, reward_config: RewardConfig,
                     verified: VerifiedCompletions | None = None) -> list:
    """TRL reward functions; a ``functools.partial`` keeps the function's name in TRL's logs."""
    return [functools.partial(label_reward, criteria=criteria, reward_config=reward_config, verified=verified)]
