"""Attention for decoding on CPU: PyTorch's fused SDPA kernel for one new token against a long cache is
slow on CPU (measured on SmolLM2-135M, bf16, batch 8: 7.7 ms per layer against 0.46 ms for the same
attention as two matrix products, two thirds of every decode step). Decode steps without gradients take
the two products; every other call (prefill, training, any call that needs gradients) stays on SDPA,
whose memory does not grow with the square of the length.

Registered with transformers' attention and mask interfaces under :data:`NAME`, with SDPA's mask
format, so it is a drop-in ``attn_implementation`` for any model that supports ``sdpa``.
"""

from __future__ import annotations

from typing import Any

NAME = "genrel_decode"


def decode_attention(module: Any, query, key, value, attention_mask, dropout: float = 0.0,
                     scaling: float | None = None, **kwargs):
    """SDPA, except one-token queries without autograd: ``softmax(q kᵀ · scale + mask) v`` as matmuls."""
    import torch
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    if query.shape[2] != 1 or torch.is_grad_enabled():
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    groups = query.shape[1] // key.shape[1]
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)  # [B, H, S, D]
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    weights = torch.matmul(query, key.transpose(2, 3)) * scale  # [B, H, 1, S]
    if attention_mask is not None:
        mask = attention_mask[..., -key.shape[2]:]
        weights = weights.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else weights + mask
    weights = torch.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None  # [B, 1, H, D]


def use_decode_attention(model: Any) -> bool:
    """Switch ``model`` from ``sdpa`` to :data:`NAME` on CPU; other implementations and devices are kept.
    Returns whether it switched."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa" or model.device.type != "cpu":
        return False
    AttentionInterface.register(NAME, decode_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
    return True
