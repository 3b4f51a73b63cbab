"""The one bridge from a stage config to a TRL config (``trl.GRPOConfig``, ``trl.SFTConfig``), shared by
every training stage so they agree on what passes through, what genrel owns and when bf16 is on.

A stage's ``trl:`` options pass through unchanged, after genrel's defaults and before the options genrel
owns (each stage lists those with the field that decides them; setting one under ``trl`` is refused when
the config loads). The precision rule is :func:`training_bf16` and :func:`base_dtype`, after
:func:`genrel.models.load.resolve_dtype`: bf16 autocast wherever the training device computes bf16 fast,
float32 master weights for full fine-tuning, a bf16 frozen base under LoRA where bf16 is fast.

TRL and torch are imported inside functions: stage configs import this module and must load instantly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from genrel.errors import ConfigError

# Set the same way by every stage: genrel logs every step and writes its own metrics file.
COMMON_OWNED = {
    "output_dir": "output_dir",
    "learning_rate": "lr",
    "save_steps": "save_steps",
    "seed": "seed",
    "resume_from_checkpoint": "resume",
    "logging_steps": "nothing: genrel logs every step",
    "use_cpu": "nothing: CPU is used when no CUDA device is visible",
}


def not_owned(options: dict[str, Any], owned: dict[str, str]) -> dict[str, Any]:
    """``options`` unchanged when none is one genrel sets itself (a pydantic validator's body)."""
    for key in options:
        if key in owned:
            raise ValueError(f"'{key}' is set by genrel from {owned[key]}; remove it from trl")
    return options


def check_trl_options(options: dict[str, Any], config_class: type | None = None) -> None:
    """Every key of ``options`` must be a field of ``config_class`` (default ``trl.GRPOConfig``)."""
    if config_class is None:
        from trl import GRPOConfig as config_class
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)}", where="trl", hint=f"see trl.{config_class.__name__}"
        )


def trl_config(config_class: type, defaults: dict[str, Any], passed: dict[str, Any], owned: dict[str, Any]):
    """``config_class(**options)`` with options = shared defaults, the stage's ``defaults``, the user's
    ``passed`` options, then the ``owned`` values; TRL's own refusals become a :class:`ConfigError`."""
    check_trl_options(passed, config_class)
    device = training_device()
    options: dict[str, Any] = {
        "report_to": "none",
        "save_strategy": "steps",
        "bf16": training_bf16(),
        **defaults,
        **passed,
        **owned,
        "logging_steps": 1,
        "use_cpu": device == "cpu",
    }
    try:
        return config_class(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"TRL rejected the options: {exc}", where="trl") from None


def training_device() -> str:
    """``cuda`` when a CUDA device is visible, else ``cpu``: where the trainer puts the model."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def training_bf16() -> bool:
    """Whether the trainer's bf16 autocast is on: wherever the training device computes bf16 fast."""
    from genrel.models.load import bf16_available

    return bf16_available(training_device())


def base_dtype(dtype: str, lora: bool) -> str:
    """The dtype to load a model to train with: ``auto`` means float32 master weights for full
    fine-tuning and, for the frozen base under a LoRA adapter, bfloat16 where the training device
    computes it fast. Any other value is the user's choice, kept."""
    if dtype != "auto" or not lora:
        return dtype
    return "bfloat16" if training_bf16() else "float32"
