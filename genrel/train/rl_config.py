"""The RL stage's configuration, importable without torch or TRL: loading or checking a config is instant.

:class:`RLStageConfig` (with :class:`SAMSettings` and :class:`DataSettings`), the dataset's gold column
names that the reward and SAM read, and the ``trl.GRPOConfig`` fields genrel owns. The recipe's own
settings live with the code they drive, equally torch-free: ``data.sample``
(:mod:`genrel.train.sampling`), ``validation`` (:mod:`genrel.train.validation`), ``filter``
(:mod:`genrel.train.pass_filter`) and ``stages`` (:mod:`genrel.train.stages`). The recipe that uses
them is :mod:`genrel.train.rl`, the trainer :mod:`genrel.train.rl_trainer`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genrel.config import StageConfig
from genrel.data import ColumnMapping
from genrel.models.lora import LoraSettings
from genrel.rewards import RewardConfig
from genrel.sam import RENORMALIZE_LOSS_TYPES, SamMode
from genrel.train.pass_filter import FilterSettings
from genrel.train.sampling import SampleSettings
from genrel.train.stages import StageSpec
from genrel.train.trl_options import COMMON_OWNED, not_owned
from genrel.train.validation import OWNED_OPTIONS as VALIDATION_OWNED_OPTIONS
from genrel.train.validation import ValidationSettings

GOLD_LABEL, GOLD_VERDICTS = "gold_label", "gold_verdicts"  # dataset columns the reward and SAM read

# GRPOConfig fields that genrel sets itself, and the genrel field (or reason) that decides each one.
OWNED_TRL_OPTIONS = {
    **COMMON_OWNED,
    "num_generations": "num_generations",
    "beta": "beta",
    "loss_type": "loss_type",
    "max_completion_length": "max_completion_length",
    "temperature": "temperature",
    "use_vllm": "use_vllm",
    "vllm_mode": "vllm_mode",
    "max_steps": "steps",
    "per_device_train_batch_size": "prompts_per_step and micro_batch_size",
    "gradient_accumulation_steps": "prompts_per_step and micro_batch_size",
    "use_liger_kernel": "nothing: SAM needs TRL's own loss, which takes per-token advantages",
    "remove_unused_columns": "nothing: the reward needs the gold columns",
    **VALIDATION_OWNED_OPTIONS,
}


class SAMSettings(BaseModel):
    """Stepwise Advantage Masking (docs/design.md, "SAM")."""

    model_config = ConfigDict(extra="forbid")

    mode: SamMode = Field(
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
        if v not in RENORMALIZE_LOSS_TYPES:
            raise ValueError(
                f"'{v}' is not supported: use one of {', '.join(RENORMALIZE_LOSS_TYPES)} "
                "(the TRL loss types that take per-token advantages)"
            )
        return v

    @field_validator("trl")
    @classmethod
    def _not_owned(cls, v: dict[str, Any]) -> dict[str, Any]:
        return not_owned(v, OWNED_TRL_OPTIONS)

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
