"""Which device a stage runs on when the user leaves it to genrel."""

from __future__ import annotations


def resolve_device(device: str | None) -> str:
    """``device`` itself, or for None/``auto`` CUDA when a device is visible, else CPU."""
    if device not in (None, "auto"):
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
