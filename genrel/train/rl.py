"""The RL stage: GRPO with the outcome reward and Stepwise Advantage Masking, on TRL's ``GRPOTrainer``.

``run_rl(cfg)`` is the recipe: load the criteria, the judged pairs and the model, render one prompt per
pair, train with :class:`~genrel.train.rl_trainer.SAMGRPOTrainer`, save the final model and the
resolved config. Everything TRL-specific that the config does not name passes through ``trl:`` into
``trl.GRPOConfig`` in one place, :func:`grpo_args`; the config mirrors only what genrel decides (batch
shape in prompts, SAM, rewards, the loss types SAM supports). One machine or many: the same code runs
under ``accelerate launch`` (DeepSpeed/FSDP) and with vLLM rollouts (``use_vllm``), see docs/scale-out.md.

This module imports TRL, transformers and torch inside functions, so loading a config is instant.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genrel.config import StageConfig
from genrel.criteria import Criteria, load_criteria
from genrel.data import ColumnMapping, Pair, load_pairs
from genrel.errors import ConfigError, DataError
from genrel.models.lora import LoraSettings, lora_config
from genrel.rewards import RewardConfig
from genrel.train.pass_filter import FILTER_DIR, FilterSettings, filter_by_pass_rate, trainer_sampler
from genrel.train.run_dir import (
    CONFIG_FILE,
    METRICS_FILE,
    fitted_messages,
    prepare_run_dir,
    save_final,
)
from genrel.train.sampling import MIX_FILE, SampleSettings, sample_indices
from genrel.train.stages import StageSpec, run_stages
from genrel.train.validation import OWNED_OPTIONS as VALIDATION_OWNED_OPTIONS
from genrel.train.validation import (
    DevValidator,
    ValidationSettings,
    dev_pairs,
    dev_schedule,
    load_best,
    trainer_options,
    with_dev_evaluation,
)

logger = logging.getLogger(__name__)

SAM_LOSS_TYPES = ("grpo", "dapo", "bnpo", "dr_grpo")  # TRL loss types that accept [B, T] advantages
GOLD_LABEL, GOLD_VERDICTS = "gold_label", "gold_verdicts"  # dataset columns the reward and SAM read

# GRPOConfig fields that genrel sets itself, and the genrel field (or reason) that decides each one.
OWNED_TRL_OPTIONS = {
    "output_dir": "output_dir",
    "num_generations": "num_generations",
    "beta": "beta",
    "loss_type": "loss_type",
    "max_completion_length": "max_completion_length",
    "temperature": "temperature",
    "use_vllm": "use_vllm",
    "vllm_mode": "vllm_mode",
    "learning_rate": "lr",
    "max_steps": "steps",
    "save_steps": "save_steps",
    "seed": "seed",
    "per_device_train_batch_size": "prompts_per_step and micro_batch_size",
    "gradient_accumulation_steps": "prompts_per_step and micro_batch_size",
    "resume_from_checkpoint": "resume",
    "logging_steps": "nothing: genrel logs every step",
    "use_liger_kernel": "nothing: SAM needs TRL's own loss, which takes per-token advantages",
    "remove_unused_columns": "nothing: the reward needs the gold columns",
    "use_cpu": "nothing: CPU is used when no CUDA device is visible",
    **VALIDATION_OWNED_OPTIONS,
}


class SAMSettings(BaseModel):
    """Stepwise Advantage Masking (design.md, "SAM")."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["off", "hard", "soft", "first_error"] = Field(
        default="hard",
        description="off: plain GRPO; hard: zero the advantage of steps that disagree with its sign; "
        "soft: scale them by alpha; first_error: hard, but a negative completion is spared only before "
        "its first wrong step.",
    )
    alpha: float = Field(default=0.0, ge=0.0, le=1.0, description="Scale of masked tokens in soft mode.")
    renormalize: bool = Field(
        default=False,
        description="Rescale kept tokens so the loss averages over them only (the authors' aggregation).",
    )


class DataSettings(BaseModel):
    """Where the judged training pairs come from."""

    model_config = ConfigDict(extra="forbid")

    train: str = Field(description="Judged pairs: .jsonl/.csv/.tsv/.parquet (relative to the working directory).")
    mapping: ColumnMapping = Field(default_factory=ColumnMapping, description="Column names, when not detected.")
    on_error: Literal["fail", "skip"] = Field(default="fail", description="Bad rows: fail, or skip them.")
    max_pairs: int | None = Field(default=None, ge=1, description="Train on a seeded random sample of this many.")
    max_document_chars: int | None = Field(default=None, ge=1, description="Cut documents to this many characters.")
    sample: SampleSettings = Field(
        default_factory=SampleSettings, description="Label mix trained on: as_is, label_uniform, label_weights."
    )
    dev: str | None = Field(
        default=None, description="Judged dev pairs scored during training (see `validation`); same mapping."
    )


class RLStageConfig(StageConfig):
    """``genrel rl``: GRPO + SAM. Batch sizes are in prompts; TRL's own options go under ``trl``."""

    model: str = Field(default="smollm2-135m", description="Model name (smollm2-135m), HF id or folder.")
    dtype: str = Field(default="auto", description="Weights dtype: auto, bfloat16, float32…")
    criteria: str = Field(default="trec-dl", description="Criteria preset name or YAML path.")
    data: DataSettings
    output_dir: str = Field(default="runs/rl", description="Run folder: checkpoints, metrics, final model.")
    sam: SAMSettings = Field(default_factory=SAMSettings)
    rewards: RewardConfig = Field(default_factory=RewardConfig)
    num_generations: int = Field(default=8, ge=2, description="Completions sampled per prompt (the group).")
    prompts_per_step: int = Field(default=8, ge=1, description="Prompts per optimizer step, over all devices.")
    micro_batch_size: int | None = Field(
        default=None, ge=1, description="Completions per device per forward/backward; default: all at once."
    )
    beta: float = Field(default=0.0, ge=0.0, description="KL coefficient (0: no reference model).")
    advantage_clip: float | None = Field(
        default=None, gt=0.0, description="Clamp TRL's group advantages to [-x, x] before SAM (paper: 3)."
    )
    loss_type: str = Field(default="grpo", description="One of grpo, dapo, bnpo, dr_grpo.")
    lora: LoraSettings | None = Field(default=None, description="Train a LoRA adapter; absent: full fine-tuning.")
    max_prompt_length: int | None = Field(
        default=None, ge=16, description="Prompt tokens; longer documents are cut to fit (None: no limit)."
    )
    max_completion_length: int = Field(default=512, ge=1, description="Completion tokens sampled at most.")
    temperature: float = Field(default=1.0, gt=0.0)
    use_vllm: bool = Field(default=False, description="Sample with vLLM (genrel[gpu]).")
    vllm_mode: Literal["colocate", "server"] = Field(
        default="colocate", description="colocate: vLLM inside each training process; server: `trl vllm-serve`."
    )
    lr: float = Field(default=1e-6, gt=0.0, description="Learning rate.")
    steps: int = Field(default=100, ge=1, description="Optimizer steps.")
    save_steps: int = Field(default=50, ge=1, description="Checkpoint every this many steps.")
    resume: bool = Field(default=False, description="Continue from the last checkpoint in output_dir.")
    seed: int = 0
    validation: ValidationSettings = Field(
        default_factory=ValidationSettings, description="Dev scoring during training (with data.dev)."
    )
    filter: FilterSettings | None = Field(default=None, description="Offline pass-rate filter of the training prompts.")
    stages: list[StageSpec] | None = Field(
        default=None, min_length=1, description="A curriculum: stages run in order, each from the previous model."
    )
    trl: dict[str, Any] = Field(default_factory=dict, description="Other trl.GRPOConfig options, passed through.")

    @field_validator("loss_type")
    @classmethod
    def _sam_loss_type(cls, v: str) -> str:
        if v not in SAM_LOSS_TYPES:
            raise ValueError(
                f"'{v}' is not supported: use one of {', '.join(SAM_LOSS_TYPES)} "
                "(the TRL loss types that take per-token advantages)"
            )
        return v

    @field_validator("trl")
    @classmethod
    def _not_owned(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if key in OWNED_TRL_OPTIONS:
                raise ValueError(f"'{key}' is set by genrel from {OWNED_TRL_OPTIONS[key]}; remove it from trl")
        return v

    @model_validator(mode="after")
    def _renormalize_needs_masking(self) -> RLStageConfig:
        if self.sam.renormalize and self.sam.mode == "off":
            raise ValueError("field 'sam.renormalize': needs a masking mode, not 'off'")
        return self

    @model_validator(mode="after")
    def _select_best_needs_dev(self) -> RLStageConfig:
        if self.validation.select_best is not None and self.data.dev is None:
            raise ValueError("field 'validation.select_best': needs a dev set (data.dev)")
        names = [s.name for s in self.stages or [] if s.name is not None]
        if len(names) != len(set(names)):
            raise ValueError("field 'stages': stage names must differ")
        return self


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
    if os.environ.get("RANK", "0") == "0":
        cfg.save(run_dir / CONFIG_FILE)
    args = grpo_args(cfg)  # before the model: under DeepSpeed ZeRO-3 this makes loading shard the weights
    model, tokenizer = load_model(cfg.model, dtype=model_dtype(cfg), for_training=True)  # on CPU; trainer places it
    pairs, rows = candidate_rows(cfg, criteria, tokenizer)
    trainer = build_trainer(cfg, criteria, model, tokenizer, training_dataset(cfg, criteria, rows, record=False),
                            args=args, callbacks=callbacks, validator=build_validator(cfg, criteria))
    if cfg.filter is not None:  # sampled with the starting model, through the trainer's rollout path
        pairs, rows = filter_by_pass_rate(pairs, rows, criteria, cfg.filter, run_dir / FILTER_DIR,
                                          trainer_sampler(trainer, cfg.filter.batch_size),
                                          main_process=trainer.accelerator.is_main_process)
    trainer.train_dataset = training_dataset(cfg, criteria, rows)
    trainer.train(resume_from_checkpoint=checkpoint)
    selected = load_best(trainer, cfg.validation)
    info = {"selected_step": selected.step, "selected_by": f"dev {selected.metric}",
            "selected_value": selected.value} if selected else {}
    final_dir = save_final(
        trainer, tokenizer, run_dir, criteria, lora=cfg.lora is not None, created_by="genrel rl",
        max_length=cfg.max_prompt_length or 1024, base_model=cfg.model, sam=cfg.sam.model_dump(), **info,
    )
    return RLResult(run_dir, final_dir, trainer.state.global_step, run_dir / METRICS_FILE,
                    selected.step if selected else None)


def run_curriculum(cfg: RLStageConfig, callbacks: list | tuple = ()) -> RLResult:
    """``cfg.stages`` in order (:mod:`genrel.train.stages`); the result points at the last stage."""
    run_dir = Path(cfg.output_dir)
    if os.environ.get("RANK", "0") == "0":
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / CONFIG_FILE)
    finished = run_stages(cfg, run_rl, callbacks)
    last = finished[-1]
    return RLResult(run_dir, run_dir / "final", sum(s.global_step for s in finished),
                    Path(last.dir) / METRICS_FILE, last.selected_step)


def build_validator(cfg: RLStageConfig, criteria: Criteria) -> DevValidator | None:
    """The dev-set scorer of ``data.dev`` (None without one)."""
    if cfg.data.dev is None:
        return None
    pairs = dev_pairs(cfg.data.dev, criteria, cfg.data.mapping, cfg.data.on_error, cfg.validation, cfg.seed)
    return DevValidator(pairs, criteria, cfg.validation, cfg.validation.max_new_tokens or cfg.max_completion_length,
                        cfg.max_prompt_length, cfg.seed)


def model_dtype(cfg: RLStageConfig) -> str:
    """``dtype: auto`` means float32 master weights for full fine-tuning (load_model's rule) and, for the
    frozen base under a LoRA adapter, bfloat16 where the training device computes it fast."""
    if cfg.dtype != "auto" or cfg.lora is None:
        return cfg.dtype
    import torch

    from genrel.models.load import bf16_available

    return "bfloat16" if bf16_available("cuda" if torch.cuda.is_available() else "cpu") else "float32"


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

    from genrel.train.rl_trainer import MetricsFile, RLProgress, SAMGRPOTrainer, reward_functions

    if tokenizer.pad_token is None:  # TRL pads prompts and completions
        tokenizer.pad_token = tokenizer.eos_token
    trainer_class = trainer_class or SAMGRPOTrainer
    sam = ({"criteria": criteria, "sam": cfg.sam, "advantage_clip": cfg.advantage_clip}
           if issubclass(trainer_class, SAMGRPOTrainer) else {})
    dev = []
    if validator is not None:
        trainer_class, dev = with_dev_evaluation(trainer_class, validator), [dev_schedule(cfg.validation)]
    trainer = trainer_class(
        model=model,
        processing_class=tokenizer,
        reward_funcs=reward_functions(criteria, cfg.rewards),
        args=args or grpo_args(cfg),
        train_dataset=dataset,
        peft_config=lora_config(cfg.lora),
        callbacks=[RLProgress(), MetricsFile(Path(cfg.output_dir) / METRICS_FILE), *dev, *callbacks],
        **sam,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def grpo_args(cfg: RLStageConfig, world_size: int | None = None):
    """The one place genrel's config becomes ``trl.GRPOConfig``: our defaults, then ``cfg.trl``, then
    the options genrel owns (:data:`OWNED_TRL_OPTIONS`)."""
    import torch
    from trl import GRPOConfig

    check_trl_options(cfg.trl)
    per_device, accumulation = batch_split(cfg, world_size or int(os.environ.get("WORLD_SIZE", "1")))
    cuda = torch.cuda.is_available()
    options: dict[str, Any] = {
        "report_to": "none",
        "save_strategy": "steps",
        "bf16": cuda and torch.cuda.is_bf16_supported(),
        "log_completions": False,
        **cfg.trl,
        **trainer_options(cfg.validation, has_dev=cfg.data.dev is not None),
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
        "logging_steps": 1,
        "use_liger_kernel": False,
        "remove_unused_columns": False,
        "use_cpu": not cuda,
    }
    try:
        return GRPOConfig(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"TRL rejected the options: {exc}", where="trl") from None


def check_trl_options(options: dict[str, Any]) -> None:
    """Every key under ``trl`` must be a ``trl.GRPOConfig`` field."""
    import dataclasses

    from trl import GRPOConfig

    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)}", where="trl", hint="see trl.GRPOConfig")


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


def __getattr__(name: str):
    # SAMGRPOTrainer lives in rl_trainer (it imports TRL at import time); re-exported here lazily.
    if name == "SAMGRPOTrainer":
        from genrel.train.rl_trainer import SAMGRPOTrainer

        return SAMGRPOTrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
