"""``DistillConfig``: the ``genrel distill`` stage's settings, loaded from YAML plus ``--set`` overrides.

Fields shared by both students sit at the top; what only the LM student reads is under ``lm``.
Defaults that depend on the student (base model, learning rate, batch size, token budget) are None
here and resolved by :meth:`DistillConfig.resolved`, so a saved config shows what actually ran.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from genrel.config import StageConfig
from genrel.data import ColumnMapping
from genrel.distill.st_config import STOptions, StudentSettings
from genrel.models.lora import LoraSettings

STUDENT_DEFAULTS = {
    # student: (base, lr, batch_size, max_length)
    "cross-encoder": ("minilm", 3e-5, 16, 256),
    "st-cross-encoder": ("minilm", 2e-5, 4, 128),  # batch: listwise rows of up to st.docs_per_query pairs
    "bi-encoder": ("minilm", 2e-5, 32, 128),
    "lm": ("smollm2-135m", 2e-5, 4, 768),
}
LORA_LR = 2e-4  # LoRA adapters learn with a larger rate than full fine-tuning


class LMStudentSettings(BaseModel):
    """The label-first LM student: loss = KL(target ‖ student label distribution) + λ · explanation CE."""

    model_config = ConfigDict(extra="forbid")

    prompt: Literal["steps", "no-steps"] = Field(
        default="steps",
        description="steps: the criteria's steps are in the prompt and the explanation follows the label; "
        "no-steps: the prompt asks only for the label (shorter; no explanation is learnt).",
    )
    explanation_weight: float = Field(
        default=0.2, ge=0.0,
        description="λ: weight of the cross-entropy on the teacher's kept reasoning after the label.",
    )
    max_explanation_tokens: int = Field(
        default=96, ge=1, description="The teacher's reasoning is cut to this many tokens."
    )
    dtype: str = Field(default="float32", description="Weights dtype while training (float32 is the safe choice).")
    lora: LoraSettings | None = Field(default=None, description="Train a LoRA adapter; absent: every weight.")
    warmup_ratio: float = Field(default=0.1, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0)

    @model_validator(mode="after")
    def _explanation_needs_steps(self) -> LMStudentSettings:
        if self.explanation_weight > 0 and self.prompt == "no-steps":
            raise ValueError(
                "field 'lm.explanation_weight': the explanation is the criteria's steps, so it needs "
                "lm.prompt=steps (or set lm.explanation_weight=0)"
            )
        return self


class DistillConfig(StageConfig):
    """``genrel distill``: train a student on teacher soft labels, optionally mixed with gold labels."""

    student: Literal["lm", "cross-encoder", "st-cross-encoder", "bi-encoder"] = Field(
        description="lm: label-first causal LM; cross-encoder: BERT-class with one logit per label; "
        "st-cross-encoder / bi-encoder: sentence-transformers CrossEncoder / SentenceTransformer with a "
        "calibrated label head (docs/distillation.md)."
    )
    labels: str = Field(description="Teacher labels file written by `genrel label`.")
    criteria: str = Field(default="trec-dl", description="Criteria preset name or YAML path (the teacher's).")
    gold: str | None = Field(default=None, description="Judged pairs to mix in (.jsonl/.csv/.tsv/.parquet).")
    gold_mapping: ColumnMapping = Field(default_factory=ColumnMapping, description="Column names of the gold file.")
    gold_weight: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="A pair with both a teacher soft label q and a gold label g learns w·onehot(g) + (1−w)·q; "
        "gold-only pairs learn g, teacher-only pairs q.",
    )
    dev: str | None = Field(
        default=None, description="Judged dev pairs: temperature fitted on them, dev metrics logged."
    )
    output_dir: str = Field(
        default="runs/distill", description="The student's genrel model folder (and its run files)."
    )
    base: str | None = Field(
        default=None, description="Student base model; default minilm (cross-encoder) or smollm2-135m (lm)."
    )
    epochs: int = Field(default=1, ge=1)
    lr: float | None = Field(
        default=None, gt=0, description="Learning rate; default 3e-5 (cross-encoder), 2e-5 (lm), 2e-4 (lm + LoRA)."
    )
    batch_size: int | None = Field(
        default=None, ge=1, description="Pairs per optimizer step; default 16 (cross-encoder), 4 (lm)."
    )
    max_length: int | None = Field(
        default=None, ge=32,
        description="Tokens: query + document (cross-encoder, default 256) or the prompt (lm, default 768).",
    )
    seed: int = 0
    resume: bool = Field(
        default=True, description="Continue from the checkpoint of the last finished epoch in output_dir."
    )
    device: str | None = Field(default=None, description="cpu, cuda, cuda:1…; default: cuda when available.")
    log_every: int = Field(default=20, ge=1, description="Log the training loss every this many steps.")
    progress: bool = Field(default=True, description="Show progress bars (hidden anyway off a terminal).")
    lm: LMStudentSettings = Field(default_factory=LMStudentSettings, description="Settings of the lm student only.")
    st: STOptions = Field(default_factory=STOptions, description="Settings of the sentence-transformers students.")

    def student_settings(self) -> StudentSettings:
        """The resolved config as :class:`StudentSettings` (sentence-transformers students only)."""
        cfg = self.resolved()
        return StudentSettings(kind=cfg.student, base=cfg.base, epochs=cfg.epochs, lr=cfg.lr,
                               batch_size=cfg.batch_size, max_length=cfg.max_length, seed=cfg.seed,
                               device=cfg.device, log_every=cfg.log_every, progress=cfg.progress,
                               **cfg.st.model_dump())

    def resolved(self) -> DistillConfig:
        """A copy with the student-dependent defaults filled in."""
        base, lr, batch_size, max_length = STUDENT_DEFAULTS[self.student]
        if self.student == "lm" and self.lm.lora is not None:
            lr = LORA_LR
        return self.model_copy(
            update={
                "base": self.base or base,
                "lr": self.lr or lr,
                "batch_size": self.batch_size or batch_size,
                "max_length": self.max_length or max_length,
            }
        )
