"""Settings of the sentence-transformers students (``genrel distill --student st-cross-encoder|bi-encoder``
under ``st:``, and ``genrel train student``). Every cap that bounds a CPU run is a field here, so a
saved config says what the run was allowed to use."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from genrel.config import StageConfig
from genrel.data import ColumnMapping


class STOptions(BaseModel):
    """What only the sentence-transformers students read."""

    model_config = ConfigDict(extra="forbid")

    max_train_pairs: int | None = Field(
        default=8000, ge=1, description="Cap on training pairs: whole training queries in a seeded order until "
        "this many (null: all). Bounds a CPU run; say it when you quote numbers.")
    holdout: float = Field(
        default=0.2, gt=0.0, lt=1.0, description="Share of the training queries held out (never trained on): the "
        "label head is fitted on them and the bi-encoder's guard compares nDCG@10 on them.")
    docs_per_query: int = Field(default=16, ge=2, description="Cross-encoder: candidates per listwise row.")
    distill_weight: float = Field(
        default=1.0, ge=0.0, description="Cross-encoder: weight of the soft-label BCE beside the ListNet loss.")
    rank_scale: float = Field(
        default=4.0, gt=0.0, description="Cross-encoder: ListNet's target is softmax(rank_scale · y), y ∈ [0, 1].")
    extend_vocab: bool = Field(
        default=True, description="Add training-text characters the base tokenizer maps to [UNK] as new tokens.")
    min_char_count: int = Field(default=2, ge=1, description="extend_vocab: a character must occur this often.")
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    warmup_ratio: float = Field(default=0.1, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.01, ge=0.0)
    bf16: bool = Field(default=False, description="bf16 autocast while training (GPU or a CPU with bf16).")
    report_to: str = Field(default="none", description="transformers' report_to: none, tensorboard, wandb…")


class StudentSettings(STOptions):
    """Everything :func:`genrel.distill.st_train.train_student` needs."""

    kind: Literal["st-cross-encoder", "bi-encoder"]
    base: str = Field(default="minilm", description="minilm (all-MiniLM-L6-v2) or a sentence-transformers folder.")
    epochs: int = Field(default=1, ge=1)
    lr: float = Field(default=2e-5, gt=0)
    batch_size: int = Field(
        default=16, ge=1, description="Per step: listwise rows (cross-encoder) or pairs (bi-encoder).")
    max_length: int = Field(default=128, ge=16, description="Tokens of query + document, or of one text.")
    seed: int = 0
    device: str | None = Field(default=None, description="cpu, cuda…; default cuda when available.")
    log_every: int = Field(default=20, ge=1)
    progress: bool = True


class StudentTrainConfig(StageConfig):
    """``genrel train student``: a sentence-transformers student on judged pairs (gold labels)."""

    data: str = Field(description="Judged training pairs (.jsonl/.csv/.tsv/.parquet).")
    criteria: str = Field(description="Criteria preset name or YAML path.")
    mapping: ColumnMapping = Field(default_factory=ColumnMapping, description="Column names of the data file.")
    output_dir: str = Field(default="runs/student", description="The student's model folder.")
    student: StudentSettings
