"""LoRA settings shared by every training stage (SFT, RL, LM students), and their PEFT config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from genrel.errors import ConfigError


class LoraSettings(BaseModel):
    """Train a LoRA adapter (PEFT) instead of every weight; the saved model has it merged in."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | str = Field(default="all-linear", description="Module names, or 'all-linear'.")
    top_layers: int | None = Field(
        default=None, ge=1,
        description="Adapt only the last N transformer layers (nearest the output): the backward pass then "
        "stops above the frozen layers below. None: every layer.",
    )


def lora_config(lora: LoraSettings | None, model):
    """``peft.LoraConfig`` for the causal LM ``model``, or None for full fine-tuning."""
    if lora is None:
        return None
    from peft import LoraConfig

    layers = adapted_layers(lora, model.config.get_text_config().num_hidden_layers)
    targets = lora.target_modules
    if layers is not None and targets == "all-linear":  # PEFT takes a layer choice with a list of names only
        targets = linear_module_names(model)
    elif layers is not None and isinstance(targets, str):
        raise ConfigError("top_layers needs target_modules as a list of module names or 'all-linear', not a regex",
                          where="lora.target_modules")
    return LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
        layers_to_transform=layers, task_type="CAUSAL_LM",
    )


def adapted_layers(lora: LoraSettings, num_layers: int) -> list[int] | None:
    """Indices of the layers that get the adapter (None: all of the model's ``num_layers``)."""
    if lora.top_layers is None:
        return None
    if lora.top_layers > num_layers:
        raise ConfigError(f"{lora.top_layers} layers asked for, the model has {num_layers}", where="lora.top_layers",
                          hint=f"use at most {num_layers}, or leave it out for every layer")
    return list(range(num_layers - lora.top_layers, num_layers))


def linear_module_names(model) -> list[str]:
    """What PEFT's 'all-linear' means: the names of the linear layers, the output head left out."""
    from torch import nn

    head = model.get_output_embeddings()
    return sorted({name.rpartition(".")[2] for name, module in model.named_modules()
                   if isinstance(module, nn.Linear) and module is not head})
