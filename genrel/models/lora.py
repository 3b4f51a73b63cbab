"""LoRA settings shared by every training stage (SFT, RL, LM students), and their PEFT config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LoraSettings(BaseModel):
    """Train a LoRA adapter (PEFT) instead of every weight; the saved model has it merged in."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | str = Field(default="all-linear", description="Module names, or 'all-linear'.")


def lora_config(lora: LoraSettings | None):
    """``peft.LoraConfig`` for a causal LM, or None for full fine-tuning."""
    if lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
