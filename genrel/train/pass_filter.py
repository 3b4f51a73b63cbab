"""``filter``: the offline pass-rate (difficulty) filter run before an RL stage trains.

A prompt that the starting model answers right in every sample, or in none, gives GRPO a group whose
rewards are all equal: zero advantage for every completion, a wasted rollout. Before training, the
stage samples ``k`` completions per training prompt with its starting model — through the trainer's
own rollout path (``GRPOTrainer._generate_single_turn``: the same chat template, temperature and
backend as the rollouts, vLLM included) — and counts a completion as a pass when it parses strictly
and its label is the gold one (what the outcome reward pays 1 for). Prompts whose pass rate is
``>= drop_at_or_above`` or ``<= drop_at_or_below`` are dropped; the defaults (1.0 and 0.0) drop
exactly the all-right and all-wrong ones.

The stage folder gets ``filter/pass_rates.jsonl`` (row id, gold label, passes, k, rate, kept) and
``filter/kept.jsonl`` (the kept pairs, readable as ``data.train``). A rerun with the same ``k`` reuses
the rates file instead of sampling again (resume), and applies the thresholds it is given now.

Online, TRL 1.16 has no dynamic sampling (DAPO's over-sample-and-refill): its generation batch is fixed
by the sampler, and refilling it would mean copying its generation loop. What it does instead: a group
with equal rewards gets advantage exactly 0 (reward minus the group mean) and so no policy gradient,
and the share of such groups is logged each step as ``frac_reward_zero_std``. docs/training.md says more.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from genrel.criteria import Criteria
from genrel.data import Pair, pair_record
from genrel.data.resumable import replace_rows
from genrel.grammar import Parsed, try_parse

logger = logging.getLogger(__name__)

FILTER_DIR, RATES_FILE, KEPT_FILE = "filter", "pass_rates.jsonl", "kept.jsonl"

# prompts (chat messages), k -> k completion texts per prompt
SampleFn = Callable[[Sequence[list[dict[str, str]]], int], list[list[str]]]


class FilterSettings(BaseModel):
    """Drop training prompts by the starting model's pass rate."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=8, ge=1, description="Completions sampled per prompt (the paper's group size: 8).")
    drop_at_or_above: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Drop prompts whose pass rate is at least this (1.0: all right)."
    )
    drop_at_or_below: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Drop prompts whose pass rate is at most this (0.0: all wrong)."
    )
    batch_size: int = Field(default=8, ge=1, description="Prompts per generation call, per process.")

    @model_validator(mode="after")
    def _some_rate_kept(self) -> FilterSettings:
        if self.drop_at_or_below >= self.drop_at_or_above:
            raise ValueError("field 'filter.drop_at_or_below': must be below filter.drop_at_or_above")
        return self

    def keeps(self, rate: float) -> bool:
        return self.drop_at_or_below < rate < self.drop_at_or_above


def passes(criteria: Criteria, completions: Sequence[str], gold: str) -> int:
    """How many completions parse strictly with the gold label."""
    return sum(isinstance(p := try_parse(text, criteria), Parsed) and p.label == gold for text in completions)


def filter_by_pass_rate(pairs: Sequence[Pair], rows: Sequence[dict[str, Any]], criteria: Criteria,
                        settings: FilterSettings, out_dir: Path, sample: SampleFn,
                        main_process: bool = True) -> tuple[list[Pair], list[dict[str, Any]]]:
    """The (pairs, rows) to keep, aligned as given; ``rows`` carry ``prompt`` and ``gold_label``.
    ``sample`` draws the completions (:func:`trainer_sampler`); the rates file is reused when it covers
    these rows with the same ``k``."""
    rates = _saved_rates(out_dir / RATES_FILE, [r["row_id"] for r in rows], settings.k)
    if rates is None:
        completions = sample([r["prompt"] for r in rows], settings.k)
        rates = {r["row_id"]: passes(criteria, texts, r["gold_label"]) for r, texts in zip(rows, completions, strict=True)}
        logger.info("pass-rate filter: sampled %d completions for each of %d prompts", settings.k, len(rows))
    kept = [i for i, r in enumerate(rows) if settings.keeps(rates[r["row_id"]] / settings.k)]
    if main_process:
        _write(out_dir, pairs, rows, rates, settings, set(kept))
    logger.info("pass-rate filter: kept %d of %d prompts", len(kept), len(rows))
    return [pairs[i] for i in kept], [rows[i] for i in kept]


def _saved_rates(path: Path, row_ids: Sequence[str], k: int) -> dict[str, int] | None:
    if not path.is_file():
        return None
    saved = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return None
        if record.get("k") != k:
            return None
        saved[record["row_id"]] = int(record["passes"])
    return saved if all(r in saved for r in row_ids) else None


def _write(out_dir: Path, pairs, rows, rates: dict[str, int], settings: FilterSettings, kept: set[int]) -> None:
    """Both files through a temporary name, so a kill never leaves a half-written rates file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    replace_rows(out_dir / RATES_FILE, (
        {"row_id": r["row_id"], "gold": r["gold_label"], "passes": rates[r["row_id"]], "k": settings.k,
         "pass_rate": rates[r["row_id"]] / settings.k, "kept": i in kept}
        for i, r in enumerate(rows)
    ))
    replace_rows(out_dir / KEPT_FILE, (pair_record(pairs[i]) for i in sorted(kept)))


def trainer_sampler(trainer, batch_size: int) -> SampleFn:
    """Sample through the trainer's own rollout path. Every process takes an equal share (padded with
    repeats), since vLLM server mode gathers prompts from all processes in each call; the completions
    are gathered back in prompt order."""

    def sample(prompts: Sequence[list[dict[str, str]]], k: int) -> list[list[str]]:
        from accelerate.utils import gather_object

        acc = trainer.accelerator
        share = math.ceil(len(prompts) / acc.num_processes)
        start = acc.process_index * share
        mine = list(prompts[start : start + share])
        n_mine = len(mine)
        mine += [prompts[0]] * (share - n_mine)  # equal calls on every process
        texts: list[list[str]] = []
        for b in range(0, share, batch_size):
            texts += _sample_batch(trainer, mine[b : b + batch_size], k)
        texts = texts[:n_mine]
        return gather_object(texts) if acc.num_processes > 1 else texts

    return sample


def _sample_batch(trainer, prompts: list[list[dict[str, str]]], k: int) -> list[list[str]]:
    import torch

    prompt_ids, images, multimodal = trainer._tokenize_prompts(prompts)
    repeated = [ids for ids in prompt_ids for _ in range(k)]  # as TRL's sampler repeats each prompt
    with torch.no_grad():
        completion_ids, _ = trainer._generate_single_turn(repeated, images, multimodal, k)
    texts = trainer.processing_class.batch_decode(completion_ids, skip_special_tokens=True)
    return [texts[i * k : (i + 1) * k] for i in range(len(prompts))]
