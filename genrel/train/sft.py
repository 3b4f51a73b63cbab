"""The warm-up SFT stage: teach a model the criteria's reasoning format from accepted teacher traces.

``run_sft(cfg)`` is the recipe: read the accepted traces (:func:`genrel.train.teacher.accepted_traces`),
rebuild each pair's prompt for this model's tokenizer (documents cut so prompt + trace fit
``max_length``), train TRL's ``SFTTrainer`` on a conversational prompt/completion dataset (so the loss
covers the completion only; on CPU the LM head runs at those positions alone,
:mod:`genrel.train.completion_head`), optionally through a LoRA adapter, then save the model merged into plain
weights in ``output_dir/final`` (with tokenizer and ``genrel_model.json``), so the RL stage, the scorers
and ``serve`` load it like any checkpoint. The run folder also holds the resolved ``config.yaml``,
``metrics.jsonl`` (TRL's logs plus ``tokens_per_s`` each step) and ``checkpoint-N`` folders;
``resume: true`` continues from the last of them.

TRL's own options pass through ``trl:`` into ``trl.SFTConfig`` in one place, :func:`sft_args`. Run
folders, prompt fitting and the final model directory are shared with the RL stage
(:mod:`genrel.train.run_dir`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from genrel.config import StageConfig
from genrel.criteria import Criteria, load_criteria
from genrel.data import Pair
from genrel.errors import DataError
from genrel.grammar import ParseError, try_parse
from genrel.models.lora import LoraSettings, lora_config
from genrel.prompt import DEFAULT_CHAT_TEMPLATE_KWARGS, fitted_messages
from genrel.train.run_dir import METRICS_FILE, prepare_run_dir, save_config, save_final
from genrel.train.teacher import accepted_traces
from genrel.train.trl_options import (
    COMMON_OWNED,
    base_dtype,
    not_owned,
    training_device,
    trl_config,
)
from genrel.train.validation import OWNED_OPTIONS as VALIDATION_OWNED_OPTIONS
from genrel.train.validation import (
    DevValidator,
    ValidationSettings,
    dev_pairs,
    dev_schedule,
    load_best,
    selection_info,
    trainer_options,
    with_dev_evaluation,
)

logger = logging.getLogger(__name__)

# SFTConfig fields that genrel sets itself, and the genrel field (or reason) that decides each one.
OWNED_TRL_OPTIONS = {
    **COMMON_OWNED,
    "num_train_epochs": "epochs",
    "max_steps": "max_steps",
    "per_device_train_batch_size": "batch_size",
    "gradient_accumulation_steps": "grad_accumulation",
    "max_length": "max_length",
    "completion_only_loss": "nothing: the loss covers the trace, never the prompt",
    **VALIDATION_OWNED_OPTIONS,
}
TEMPLATE_MARGIN_TOKENS = 16  # the assistant turn's own tokens (<|im_start|>assistant, <|im_end|>…) and merges


class SFTStageConfig(StageConfig):
    """``genrel sft``: supervised warm-up on accepted teacher traces. TRL's own options go under ``trl``."""

    model: str = Field(default="smollm2-135m", description="Model name (smollm2-135m), HF id or folder.")
    dtype: str = Field(
        default="auto",
        description="Weights dtype. auto: bf16 base under LoRA where bf16 is fast, float32 master weights "
        "for full fine-tuning (the trainer's bf16 autocast still applies).",
    )
    criteria: str = Field(default="trec-dl", description="Criteria preset name or YAML path (as for the traces).")
    traces: str = Field(description="Trace file from `genrel teacher`; only accepted traces are used.")
    output_dir: str = Field(default="runs/sft", description="Run folder: checkpoints, metrics, final model.")
    lora: LoraSettings | None = Field(default=None, description="Train a LoRA adapter (merged on save); absent: full fine-tuning.")
    completion_only_logits: bool = Field(
        default=True,
        description="Run the LM head only at the trace's positions, where the loss is. false: TRL's own head, "
        "which on CPU also projects every prompt position (same loss, slower).",
    )
    max_length: int = Field(default=1024, ge=32, description="Prompt + trace tokens; documents are cut to fit.")
    max_document_chars: int | None = Field(default=None, ge=1, description="Cut documents to this many characters first.")
    epochs: float = Field(default=1.0, gt=0, description="Passes over the traces (unless max_steps is set).")
    max_steps: int | None = Field(default=None, ge=1, description="Optimizer steps; overrides epochs.")
    lr: float = Field(default=2e-5, gt=0, description="Peak learning rate (LoRA usually wants ~1e-4).")
    batch_size: int = Field(default=4, ge=1, description="Traces per device per forward/backward.")
    grad_accumulation: int = Field(default=1, ge=1, description="Micro-batches per optimizer step.")
    save_steps: int = Field(default=100, ge=1, description="Checkpoint every this many steps.")
    resume: bool = Field(default=False, description="Continue from the last checkpoint in output_dir.")
    seed: int = 0
    dev: str | None = Field(default=None, description="Judged dev pairs scored during training (see `validation`).")
    validation: ValidationSettings = Field(
        default_factory=ValidationSettings, description="Dev scoring during training (with dev)."
    )
    trl: dict[str, Any] = Field(default_factory=dict, description="Other trl.SFTConfig options, passed through.")

    @field_validator("trl")
    @classmethod
    def _not_owned(cls, v: dict[str, Any]) -> dict[str, Any]:
        return not_owned(v, OWNED_TRL_OPTIONS)

    @model_validator(mode="after")
    def _select_best_needs_dev(self) -> SFTStageConfig:
        if self.validation.select_best is not None and self.dev is None:
            raise ValueError("field 'validation.select_best': needs a dev set (dev)")
        return self


@dataclass(frozen=True)
class SFTResult:
    """What a run leaves behind."""

    run_dir: Path
    final_dir: Path
    global_step: int
    metrics_path: Path
    examples: int
    selected_step: int | None = None  # the step kept as final/ by validation.select_best (None: the last)


def run_sft(cfg: SFTStageConfig, callbacks: list | tuple = ()) -> SFTResult:
    """Train as ``cfg`` says; ``callbacks`` are extra ``transformers.TrainerCallback``s."""
    from genrel.models.load import load_model

    criteria = load_criteria(cfg.criteria)
    run_dir = Path(cfg.output_dir)
    checkpoint = prepare_run_dir(run_dir, cfg.resume)
    save_config(cfg, run_dir)
    # A frozen base under LoRA may be bf16; weights the optimizer updates stay float32 (see trl_options).
    model, tokenizer = load_model(cfg.model, dtype=base_dtype(cfg.dtype, cfg.lora is not None), for_training=True)
    dataset = build_sft_dataset(cfg, criteria, tokenizer)
    validator = None
    if cfg.dev is not None:
        pairs = dev_pairs(cfg.dev, criteria, None, "fail", cfg.validation, cfg.seed)
        validator = DevValidator(pairs, criteria, cfg.validation, cfg.validation.max_new_tokens or cfg.max_length,
                                 cfg.max_length, cfg.seed)
    trainer = build_sft_trainer(cfg, model, tokenizer, dataset, callbacks=callbacks, validator=validator)
    trainer.train(resume_from_checkpoint=checkpoint)
    selected = load_best(trainer, cfg.validation)
    final_dir = save_final(trainer, tokenizer, run_dir, criteria, lora=cfg.lora is not None, created_by="genrel sft",
                           max_length=cfg.max_length, base_model=cfg.model, **selection_info(selected))
    return SFTResult(run_dir, final_dir, trainer.state.global_step, run_dir / METRICS_FILE, len(dataset),
                     selected.step if selected else None)


def build_sft_dataset(cfg: SFTStageConfig, criteria: Criteria, tokenizer):
    """A ``datasets.Dataset`` of conversational ``prompt`` (system + user) / ``completion`` (assistant) rows."""
    from datasets import Dataset

    traces = accepted_traces(cfg.traces)
    check_traces_match(traces, criteria, cfg.traces)
    rows, too_long = [], 0
    for trace in traces:
        row = sft_example(trace, criteria, tokenizer, cfg)
        if row is None:
            too_long += 1
        else:
            rows.append(row)
    if too_long:
        logger.warning("%d trace(s) left out: the trace and a prompt without document exceed max_length=%d",
                       too_long, cfg.max_length)
    if not rows:
        raise DataError("no accepted trace to train on" + (f" within max_length={cfg.max_length}" if too_long else ""),
                        where=cfg.traces, hint="check the teacher's acceptance table, or use genrel teacher --from-gold")
    return Dataset.from_list(rows)


def check_traces_match(traces: list[dict[str, Any]], criteria: Criteria, where: str) -> None:
    """Every trace must parse under ``criteria``: traces made for other criteria would teach another format."""
    for trace in traces:
        parsed = try_parse(trace["completion"], criteria)
        if isinstance(parsed, ParseError):
            raise DataError(
                f"trace of row '{trace.get('row_id')}' does not parse under criteria '{criteria.name}': {parsed}",
                where=where, hint="train with the criteria the traces were made for",
            )


def sft_example(trace: dict[str, Any], criteria: Criteria, tokenizer, cfg: SFTStageConfig) -> dict[str, Any] | None:
    """One training row from a trace line, or None when it cannot fit ``max_length``."""
    completion = trace["completion"].strip()
    budget = cfg.max_length - len(tokenizer(completion, add_special_tokens=False)["input_ids"]) - TEMPLATE_MARGIN_TOKENS
    if budget < 1:
        return None
    messages = fitted_messages(criteria, pair_from_trace(trace), tokenizer, budget, cfg.max_document_chars)
    if messages is None:
        return None
    return {
        "prompt": messages,
        "completion": [{"role": "assistant", "content": completion}],
        "chat_template_kwargs": dict(DEFAULT_CHAT_TEMPLATE_KWARGS),  # the template options the scorer uses
    }


def pair_from_trace(trace: dict[str, Any]) -> Pair:
    """The pair stored in a trace line (written by :func:`genrel.data.pair_record`)."""
    record = dict(trace.get("pair") or {})
    if "query" not in record or "text" not in record:
        raise DataError(f"trace for row '{trace.get('row_id')}' has no pair (query and text)",
                        hint="traces written by `genrel teacher` carry their pair")
    record.pop("id", None)
    return Pair(row_id=str(trace["row_id"]), fields=record.pop("fields", None) or {}, **record)


def build_sft_trainer(cfg: SFTStageConfig, model, tokenizer, dataset, *, callbacks: list | tuple = (),
                      validator: DevValidator | None = None):
    """The configured ``trl.SFTTrainer``, with our progress bar and ``metrics.jsonl`` instead of TRL's printing;
    with ``validator`` it scores the dev set every ``validation.eval_steps`` (:mod:`genrel.train.validation`)."""
    from transformers import PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    from genrel.train.callbacks import MetricsFile, throughput_callback
    from genrel.train.completion_head import add_completion_head

    trainer_class, dev = SFTTrainer, []
    if validator is not None:
        trainer_class, dev = with_dev_evaluation(SFTTrainer, validator), [dev_schedule(cfg.validation)]
    trainer = trainer_class(
        model=model,
        args=sft_args(cfg),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(cfg.lora, model),
        # The throughput callback first: it adds tokens_per_s to the log record that MetricsFile then writes.
        callbacks=[throughput_callback(), MetricsFile(Path(cfg.output_dir) / METRICS_FILE), *dev, *callbacks],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    # TRL's CUDA head already projects only the labelled positions; its CPU one projects them all.
    if cfg.completion_only_logits and training_device() == "cpu":
        causal_lm = trainer.model.get_base_model() if hasattr(trainer.model, "get_base_model") else trainer.model
        if not add_completion_head(causal_lm):
            logger.info("TRL's LM head kept: this model's logits are more than lm_head(hidden)")
    return trainer


def sft_args(cfg: SFTStageConfig):
    """``trl.SFTConfig`` for ``cfg`` through :func:`genrel.train.trl_options.trl_config`: our defaults,
    then ``cfg.trl``, then the options genrel owns (:data:`OWNED_TRL_OPTIONS`)."""
    from trl import SFTConfig

    defaults = {
        "activation_checkpointing": training_device() == "cuda",  # memory for speed on GPUs; not the CPU's limit
        "disable_tqdm": True,  # our own bar (throughput_callback) shows loss and tokens/s
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.05,  # below 1: a share of the steps
    }
    owned = {
        "output_dir": str(cfg.output_dir),
        "num_train_epochs": cfg.epochs,
        "max_steps": cfg.max_steps or -1,
        "learning_rate": cfg.lr,
        "per_device_train_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accumulation,
        "save_steps": cfg.save_steps,
        "seed": cfg.seed,
        "max_length": cfg.max_length,
        "completion_only_loss": True,
        **trainer_options(cfg.validation, has_dev=cfg.dev is not None),
    }
    return trl_config(SFTConfig, defaults, cfg.trl, owned)
