"""The RL stage: GRPO with the outcome reward and Stepwise Advantage Masking, on TRL's ``GRPOTrainer``.

``run_rl(cfg)`` is the recipe: load the criteria, the judged pairs and the model, render one prompt per
pair, train with :class:`~genrel.train.rl_trainer.SAMGRPOTrainer`, save the final model and the
resolved config. Everything TRL-specific that the config does not name passes through ``trl:`` into
``trl.GRPOConfig`` in one place, :func:`grpo_args`; the config mirrors only what genrel decides (batch
shape in prompts, SAM, rewards, the loss types SAM supports). One machine or many: the same code runs
under ``accelerate launch`` (DeepSpeed/FSDP) and with vLLM rollouts (``use_vllm``), see docs/scale-out.md.

The config (:class:`~genrel.train.rl_config.RLStageConfig`) lives in :mod:`genrel.train.rl_config`,
which imports no torch; this module imports TRL, transformers and torch inside functions.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genrel.criteria import Criteria, load_criteria
from genrel.data import Pair, load_pairs
from genrel.errors import ConfigError, DataError
from genrel.models.lora import lora_config
from genrel.prompt import DEFAULT_CHAT_TEMPLATE_KWARGS, fitted_messages
from genrel.train.rl_config import (  # noqa: F401  (the config classes are part of this module's API)
    GOLD_LABEL,
    GOLD_VERDICTS,
    OWNED_TRL_OPTIONS,
    DataSettings,
    RLStageConfig,
    SAMSettings,
)
from genrel.train.pass_filter import FILTER_DIR, filter_by_pass_rate, trainer_sampler
from genrel.train.run_dir import FINAL_DIR, METRICS_FILE, prepare_run_dir, save_config, save_final
from genrel.train.sampling import MIX_FILE, sample_indices
from genrel.train.stages import run_stages
from genrel.train.trl_options import base_dtype, check_trl_options, trl_config
from genrel.train.validation import (
    DevValidator,
    dev_pairs,
    dev_schedule,
    load_best,
    selection_info,
    trainer_options,
    with_dev_evaluation,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RLResult:
    """What a run leaves behind."""

    run_dir: Path
    final_dir: Path
    global_step: int
    metrics_path: Path
    selected_step: int | None = None  # the step kept as final/ by validation.select_best (None: the last)


def run_rl(cfg: RLStageConfig, callbacks: list | tuple = ()) -> RLResult:
    """Train with GRPO + SAM as ``cfg`` says (each of ``cfg.stages`` in turn, when given); ``callbacks``
    are extra ``transformers.TrainerCallback``s."""
    if cfg.stages:
        return run_curriculum(cfg, callbacks)
    from genrel.models.load import load_model

    criteria = load_criteria(cfg.criteria)
    run_dir = Path(cfg.output_dir)
    checkpoint = prepare_run_dir(run_dir, cfg.resume)
    save_config(cfg, run_dir)
    args = grpo_args(cfg)  # before the model: under DeepSpeed ZeRO-3 this makes loading shard the weights
    # On CPU in train mode; the trainer places it.
    model, tokenizer = load_model(cfg.model, dtype=base_dtype(cfg.dtype, cfg.lora is not None), for_training=True)
    pairs, rows = candidate_rows(cfg, criteria, tokenizer)
    trainer = build_trainer(cfg, criteria, model, tokenizer, training_dataset(cfg, criteria, rows, record=False),
                            args=args, callbacks=callbacks, validator=build_validator(cfg, criteria))
    if cfg.filter is not None:  # sampled with the starting model, through the trainer's rollout path
        pairs, rows = filter_by_pass_rate(pairs, rows, criteria, cfg.filter, run_dir / FILTER_DIR,
                                          trainer_sampler(trainer, cfg.filter.batch_size),
                                          main_process=trainer.accelerator.is_main_process)
    trainer.train_dataset = training_dataset(cfg, criteria, rows)  # read by train(), not by the constructor
    trainer.train(resume_from_checkpoint=checkpoint)
    selected = load_best(trainer, cfg.validation)
    final_dir = save_final(
        trainer, tokenizer, run_dir, criteria, lora=cfg.lora is not None, created_by="genrel rl",
        max_length=cfg.max_prompt_length or 1024, base_model=cfg.model, sam=cfg.sam.model_dump(),
        **selection_info(selected),
    )
    return RLResult(run_dir, final_dir, trainer.state.global_step, run_dir / METRICS_FILE,
                    selected.step if selected else None)


def run_curriculum(cfg: RLStageConfig, callbacks: list | tuple = ()) -> RLResult:
    """``cfg.stages`` in order (:mod:`genrel.train.stages`); the result points at the last stage."""
    run_dir = Path(cfg.output_dir)
    save_config(cfg, run_dir)
    finished = run_stages(cfg, run_rl, callbacks)
    last = finished[-1]
    return RLResult(run_dir, run_dir / FINAL_DIR, sum(s.global_step for s in finished),
                    Path(last.dir) / METRICS_FILE, last.selected_step)


def build_validator(cfg: RLStageConfig, criteria: Criteria) -> DevValidator | None:
    """The dev-set scorer of ``data.dev`` (None without one)."""
    if cfg.data.dev is None:
        return None
    pairs = dev_pairs(cfg.data.dev, criteria, cfg.data.mapping, cfg.data.on_error, cfg.validation, cfg.seed)
    return DevValidator(pairs, criteria, cfg.validation, cfg.validation.max_new_tokens or cfg.max_completion_length,
                        cfg.max_prompt_length, cfg.seed)


def build_rl_dataset(cfg: RLStageConfig, criteria: Criteria, tokenizer):
    """A ``datasets.Dataset`` with ``prompt`` (chat messages) and the gold columns the reward reads:
    the candidate rows in the label mix of ``data.sample`` (no pass-rate filter; :func:`run_rl` adds it)."""
    return training_dataset(cfg, criteria, candidate_rows(cfg, criteria, tokenizer)[1])


def candidate_rows(cfg: RLStageConfig, criteria: Criteria, tokenizer) -> tuple[list[Pair], list[dict[str, Any]]]:
    """(pairs, training rows) aligned: the judged pairs (a seeded sample of ``max_pairs``) whose prompt fits."""
    pairs = load_pairs(cfg.data.train, criteria, cfg.data.mapping, on_error=cfg.data.on_error).pairs
    if cfg.data.max_pairs is not None and len(pairs) > cfg.data.max_pairs:
        pairs = random.Random(cfg.seed).sample(pairs, cfg.data.max_pairs)
    kept, rows, too_long = [], [], 0
    for pair in pairs:
        messages = fitted_messages(criteria, pair, tokenizer, cfg.max_prompt_length, cfg.data.max_document_chars)
        if messages is None:
            too_long += 1
            continue
        kept.append(pair)
        rows.append(rl_example(pair, messages))
    if too_long:
        logger.warning("%d pair(s) left out: even without a document their prompt exceeds %d tokens",
                       too_long, cfg.max_prompt_length)
    return kept, rows


def training_dataset(cfg: RLStageConfig, criteria: Criteria, rows: list[dict[str, Any]], record: bool = True):
    """The rows drawn by ``data.sample``, as a ``datasets.Dataset``; with ``record`` the label mix goes
    to ``output_dir/data_mix.json`` (main process)."""
    from datasets import Dataset

    if len(rows) < cfg.prompts_per_step:
        left = " after the pass-rate filter (see filter/pass_rates.jsonl)" if cfg.filter is not None else ""
        raise DataError(f"{len(rows)} usable pair(s){left}, fewer than prompts_per_step={cfg.prompts_per_step}",
                        where=cfg.data.train)
    indices, mix = sample_indices([r[GOLD_LABEL] for r in rows], criteria, cfg.data.sample, cfg.seed)
    rows = [rows[i] for i in indices]
    if len(rows) < cfg.prompts_per_step:
        raise DataError(
            f"{len(rows)} usable pair(s), fewer than prompts_per_step={cfg.prompts_per_step}", where=cfg.data.train
        )
    if record and os.environ.get("RANK", "0") == "0":
        path = Path(cfg.output_dir) / MIX_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"data": cfg.data.train, **mix}, indent=2) + "\n", encoding="utf-8")
    return Dataset.from_list(rows)


def rl_example(pair: Pair, messages: list[dict[str, str]]) -> dict[str, Any]:
    """One training row. Gold verdicts are JSON text, so rows with different steps share one schema."""
    return {
        "prompt": messages,
        GOLD_LABEL: pair.label,
        GOLD_VERDICTS: json.dumps(pair.verdicts or {}, ensure_ascii=False),
        "row_id": pair.row_id,
    }


def build_trainer(cfg: RLStageConfig, criteria: Criteria, model, tokenizer, dataset, *, args=None,
                  callbacks: list | tuple = (), trainer_class=None, validator: DevValidator | None = None):
    """The configured :class:`SAMGRPOTrainer`, or ``trainer_class``: a subclass (scripted rollouts) or
    plain ``trl.GRPOTrainer`` (baselines), which gets no SAM arguments. With ``validator`` the trainer
    scores the dev set every ``validation.eval_steps`` (:mod:`genrel.train.validation`)."""
    from transformers import PrinterCallback, ProgressCallback

    from genrel.train.callbacks import MetricsFile, RLProgress
    from genrel.train.rl_trainer import SAMGRPOTrainer, VerifiedCompletions, reward_functions

    if tokenizer.pad_token is None:  # TRL pads prompts and completions
        tokenizer.pad_token = tokenizer.eos_token
    trainer_class = trainer_class or SAMGRPOTrainer
    verified = VerifiedCompletions(criteria)  # one parse and verification per completion, reward and SAM
    sam = {"criteria": criteria, "sam": cfg.sam, "verified": verified, "advantage_clip": cfg.advantage_clip}
    if not issubclass(trainer_class, SAMGRPOTrainer):
        sam = {}
    dev = []
    if validator is not None:
        trainer_class, dev = with_dev_evaluation(trainer_class, validator), [dev_schedule(cfg.validation)]
    trainer = trainer_class(
        model=model,
        processing_class=tokenizer,
        reward_funcs=reward_functions(criteria, cfg.rewards, verified),
        args=args or grpo_args(cfg),
        train_dataset=dataset,
        peft_config=lora_config(cfg.lora, model),
        callbacks=[RLProgress(), MetricsFile(Path(cfg.output_dir) / METRICS_FILE), *dev, *callbacks],
        **sam,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def grpo_args(cfg: RLStageConfig, world_size: int | None = None):
    """``trl.GRPOConfig`` for ``cfg`` through :func:`genrel.train.trl_options.trl_config`: our defaults,
    then ``cfg.trl``, then the options genrel owns (:data:`OWNED_TRL_OPTIONS`)."""
    from trl import GRPOConfig

    check_trl_options(cfg.trl, GRPOConfig)
    per_device, accumulation = batch_split(cfg, world_size or int(os.environ.get("WORLD_SIZE", "1")))
    defaults = {"log_completions": False, "chat_template_kwargs": dict(DEFAULT_CHAT_TEMPLATE_KWARGS)}
    owned = {
        "output_dir": str(cfg.output_dir),
        "num_generations": cfg.num_generations,
        "beta": cfg.beta,
        "loss_type": cfg.loss_type,
        "max_completion_length": cfg.max_completion_length,
        "temperature": cfg.temperature,
        "use_vllm": cfg.use_vllm,
        "vllm_mode": cfg.vllm_mode,
        "learning_rate": cfg.lr,
        "max_steps": cfg.steps,
        "save_steps": cfg.save_steps,
        "seed": cfg.seed,
        "per_device_train_batch_size": per_device,
        "gradient_accumulation_steps": accumulation,
        "use_liger_kernel": False,
        "remove_unused_columns": False,
        **trainer_options(cfg.validation, has_dev=cfg.data.dev is not None),
    }
    return trl_config(GRPOConfig, defaults, cfg.trl, owned)


def batch_split(cfg: RLStageConfig, world_size: int) -> tuple[int, int]:
    """(completions per device per micro-step, micro-steps per optimizer step) for
    ``prompts_per_step × num_generations`` completions per step over ``world_size`` processes."""
    completions = cfg.prompts_per_step * cfg.num_generations
    if completions % world_size:
        raise ConfigError(
            f"prompts_per_step × num_generations = {completions} completions do not split over {world_size} processes"
        )
    per_process = completions // world_size
    micro = min(cfg.micro_batch_size or per_process, per_process)
    if per_process % micro:
        raise ConfigError(
            f"micro_batch_size={micro} does not divide the {per_process} completions each process gets per step"
        )
    return micro, per_process // micro
