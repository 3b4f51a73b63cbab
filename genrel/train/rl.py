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
from genrel.train.run_dir import METRICS_FILE, prepare_run_dir, save_config, save_final
from genrel.train.trl_options import base_dtype, check_trl_options, trl_config

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RLResult:
    """What a run leaves behind."""

    run_dir: Path
    final_dir: Path
    global_step: int
    metrics_path: Path


def run_rl(cfg: RLStageConfig, callbacks: list | tuple = ()) -> RLResult:
    """Train with GRPO + SAM as ``cfg`` says; ``callbacks`` are extra ``transformers.TrainerCallback``s."""
    from genrel.models.load import load_model

    criteria = load_criteria(cfg.criteria)
    run_dir = Path(cfg.output_dir)
    checkpoint = prepare_run_dir(run_dir, cfg.resume)
    save_config(cfg, run_dir)
    args = grpo_args(cfg)  # before the model: under DeepSpeed ZeRO-3 this makes loading shard the weights
    # On CPU in train mode; the trainer places it.
    model, tokenizer = load_model(cfg.model, dtype=base_dtype(cfg.dtype, cfg.lora is not None), for_training=True)
    dataset = build_rl_dataset(cfg, criteria, tokenizer)
    trainer = build_trainer(cfg, criteria, model, tokenizer, dataset, args=args, callbacks=callbacks)
    trainer.train(resume_from_checkpoint=checkpoint)
    final_dir = save_final(
        trainer, tokenizer, run_dir, criteria, lora=cfg.lora is not None, created_by="genrel rl",
        max_length=cfg.max_prompt_length or 1024, base_model=cfg.model, sam=cfg.sam.model_dump(),
    )
    return RLResult(run_dir, final_dir, trainer.state.global_step, run_dir / METRICS_FILE)


def build_rl_dataset(cfg: RLStageConfig, criteria: Criteria, tokenizer):
    """A ``datasets.Dataset`` with ``prompt`` (chat messages) and the gold columns the reward reads."""
    from datasets import Dataset

    pairs = load_pairs(cfg.data.train, criteria, cfg.data.mapping, on_error=cfg.data.on_error).pairs
    if cfg.data.max_pairs is not None and len(pairs) > cfg.data.max_pairs:
        pairs = random.Random(cfg.seed).sample(pairs, cfg.data.max_pairs)
    rows, too_long = [], 0
    for pair in pairs:
        messages = fitted_messages(criteria, pair, tokenizer, cfg.max_prompt_length, cfg.data.max_document_chars)
        if messages is None:
            too_long += 1
            continue
        rows.append(rl_example(pair, messages))
    if too_long:
        logger.warning("%d pair(s) left out: even without a document their prompt exceeds %d tokens",
                       too_long, cfg.max_prompt_length)
    if len(rows) < cfg.prompts_per_step:
        raise DataError(
            f"{len(rows)} usable pair(s), fewer than prompts_per_step={cfg.prompts_per_step}", where=cfg.data.train
        )
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
                  callbacks: list | tuple = (), trainer_class=None):
    """The configured :class:`SAMGRPOTrainer`, or ``trainer_class``: a subclass (scripted rollouts) or
    plain ``trl.GRPOTrainer`` (baselines), which gets no SAM arguments."""
    from transformers import PrinterCallback, ProgressCallback

    from genrel.train.callbacks import MetricsFile, RLProgress
    from genrel.train.rl_trainer import SAMGRPOTrainer, VerifiedCompletions, reward_functions

    if tokenizer.pad_token is None:  # TRL pads prompts and completions
        tokenizer.pad_token = tokenizer.eos_token
    trainer_class = trainer_class or SAMGRPOTrainer
    verified = VerifiedCompletions(criteria)  # one parse and verification per completion, reward and SAM
    sam = {"criteria": criteria, "sam": cfg.sam, "verified": verified}
    if not issubclass(trainer_class, SAMGRPOTrainer):
        sam = {}
    trainer = trainer_class(
        model=model,
        processing_class=tokenizer,
        reward_funcs=reward_functions(criteria, cfg.rewards, verified),
        args=args or grpo_args(cfg),
        train_dataset=dataset,
        peft_config=lora_config(cfg.lora),
        callbacks=[RLProgress(), MetricsFile(Path(cfg.output_dir) / METRICS_FILE), *callbacks],
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
