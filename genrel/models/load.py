"""Load a causal LM and its tokenizer: a local folder, a model in the Hugging Face cache, or the embedded
default ``smollm2-135m``.

Loading never downloads: a hub id must already be in the local HF cache (``hf download ID`` first), so
a stage never starts a multi-gigabyte transfer on its own and behaves the same offline. The tokenizer
always has a pad token (the eos token when the model has none) and pads on the left, as generation
needs; trainers pad their own batches. On CPU, decode steps use :mod:`genrel.models.attention`.

``dtype="auto"`` picks bfloat16 where the hardware computes it fast (CUDA with bf16 support, or a CPU
with avx512_bf16 / AMX, measured 2–3× faster than float32 there; docs/design.md, "Precision"), else
float32. Weights that an optimizer will update (``for_training=True``) stay float32 under ``auto``: in
pure bfloat16 an AdamW step smaller than ~1/256 of a weight is rounded away, so full fine-tuning keeps
float32 master weights and gets its speed from the trainer's bf16 autocast (:func:`bf16_available`). A
frozen base under a LoRA adapter is not trained: the training stages ask for bfloat16 there where it is
fast (``genrel.train.trl_options.base_dtype``).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from genrel.errors import MissingExtraError, ModelError
from genrel.models.attention import use_decode_attention
from genrel.models.embedded import EMBEDDED_MODEL, embedded_model_dir

logger = logging.getLogger(__name__)

DTYPES = {
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "float32": "float32", "fp32": "float32", "float": "float32",
}
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def load_model(
    name_or_path: str,
    *,
    dtype: str = "auto",
    device: str | None = None,
    for_training: bool = False,
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for a causal LM. ``device`` None: CUDA when visible, else CPU; a model
    loaded ``for_training`` stays where it is loaded (CPU) and in train mode, for the trainer to place."""
    torch = _torch()
    from transformers import AutoModelForCausalLM

    path = model_path(name_or_path)
    target = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = resolve_dtype(dtype, target, for_training=for_training)
    tokenizer = load_tokenizer(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the model: {_first_line(exc)}", where=str(name_or_path)) from None
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if for_training:
        model.train()
    else:
        model.eval()
        model.to(target)
    use_decode_attention(model)  # CPU decoding without autograd: matmuls instead of the slow fused kernel
    logger.info("loaded %s (%s, %s)", name_or_path, torch_dtype, "training" if for_training else target)
    return model, tokenizer


def load_tokenizer(name_or_path: str):
    """The model's tokenizer with a pad token (eos when missing) and left padding."""
    from transformers import AutoTokenizer

    path = model_path(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the tokenizer: {_first_line(exc)}", where=str(name_or_path)) from None
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelError("the tokenizer has neither a pad nor an eos token", where=str(name_or_path))
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def model_path(name_or_path: str) -> str:
    """A folder for the embedded name, an existing local folder, or the id itself for the HF cache.
    A hub id missing from the cache fails when loaded, with a download hint."""
    if name_or_path == EMBEDDED_MODEL:
        return str(embedded_model_dir())
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists() or name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise ModelError(
            "not a model folder",
            where=name_or_path,
            hint=f"give a folder with config.json, a Hugging Face id in the local cache, or '{EMBEDDED_MODEL}'",
        )
    if not _in_hf_cache(name_or_path):
        raise ModelError(
            "model not found locally (genrel does not download models)",
            where=name_or_path,
            hint=f"download it first: hf download {name_or_path}; or use '{EMBEDDED_MODEL}'",
        )
    return name_or_path


def resolve_dtype(dtype: str, device: str = "cpu", *, for_training: bool = False):
    """The torch dtype for ``dtype`` (auto, bfloat16/bf16, float16/fp16, float32/fp32) on ``device``."""
    torch = _torch()
    key = dtype.lower()
    if key != "auto":
        if key not in DTYPES:
            raise ModelError(f"unknown dtype '{dtype}'", where="dtype", hint=f"use auto or one of {sorted(set(DTYPES.values()))}")
        return getattr(torch, DTYPES[key])
    if for_training:
        return torch.float32
    return torch.bfloat16 if bf16_available(device) else torch.float32


def bf16_available(device: str = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 fast: CUDA with bf16 support, or a CPU with avx512_bf16/AMX."""
    torch = _torch()
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device == "cpu" and bool(set(CPU_BF16_FLAGS) & cpu_flags())


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from /proc/cpuinfo (empty where that file does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def _in_hf_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # an id the hub client cannot even parse
        return False
    return isinstance(found, str)


def _torch():
    try:
        import torch
    except ImportError:
        raise MissingExtraError("torch", "train") from None
    return torch


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
