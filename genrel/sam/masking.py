"""SAM's masking maths: per-token GRPO advantages from per-step verdict statuses (docs/design.md, "SAM").

Shape letters are those of :mod:`genrel.sam`. Inputs are tensors only: which token belongs to which step
comes from :func:`genrel.sam.alignment.token_step_index`, which step is right or wrong from
:func:`genrel.verify.step_status`.
"""


from __future__ import annotations

import torch

from genrel.sam import MODES, RENORMALIZE_LOSS_TYPES

INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)

# --------------------------------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------------------------------


def masked_tokens(
    advantages: torch.Tensor, token_step: torch.Tensor, step_status: torch.Tensor, mode: str = "hard"
) -> torch.Tensor:
    """Bool [B, T]: tokens whose advantage SAM zeroes (``hard``, ``first_error``) or scales (``soft``).

    Its complement is the keep mask of :func:`renormalize_kept`, and its share of completion tokens is
    the masked-token share to log. All False for ``off``.
    """
    _check_inputs(advantages, token_step, step_status, mode)
    B, K = step_status.shape
    positive = (advantages > 0)[:, None]  # [B, 1]
    negative = (advantages < 0)[:, None]  # [B, 1]
    right, wrong = step_status == 1, step_status == 0  # [B, K] each
    if mode == "off":
        masked_step = torch.zeros_like(right)  # [B, K]
    elif mode == "first_error":
        # A step comes before the first wrong one while no wrong step has been seen up to and including it.
        before_first_wrong = wrong.long().cumsum(dim=1) == 0  # [B, K]
        masked_step = (positive & wrong) | (negative & right & before_first_wrong)  # [B, K]
    else:  # hard, soft
        masked_step = (positive & wrong) | (negative & right)  # [B, K]
    # Column K is a sentinel "outside any step" that is never masked, so -1 needs no special case.
    masked_step = torch.cat([masked_step, masked_step.new_zeros(B, 1)], dim=1)  # [B, K+1]
    index = torch.where(token_step < 0, K, token_step).long()  # [B, T]
    return masked_step.gather(1, index)  # [B, T]


def sam_advantages(
    advantages: torch.Tensor,
    token_step: torch.Tensor,
    step_status: torch.Tensor,
    mode: str = "hard",
    alpha: float = 0.0,
) -> torch.Tensor:
    """Per-token advantages [B, T] from per-completion advantages [B].

    Args:
        advantages: float [B], the group-normalised advantage A_b of each completion.
        token_step: integer [B, T], the step index k of each completion token, -1 outside any step
            (glue, label, end-of-sequence, padding); see :func:`token_step_index`.
        step_status: integer [B, K], 1 right, 0 wrong, -1 unverifiable or absent (an unparseable
            completion has -1 everywhere and keeps A_b on every token).
        mode: ``off`` (A_b everywhere), ``hard`` (masked tokens get 0), ``soft`` (masked tokens get
            α·A_b) or ``first_error`` (as ``hard``, but a negative completion spares only its right steps
            before its first wrong step, in step order).
        alpha: the ``soft`` scale, in [0, 1]; ignored by the other modes.
    """
    return masked_advantages(advantages, masked_tokens(advantages, token_step, step_status, mode), mode, alpha)


def masked_advantages(advantages: torch.Tensor, masked: torch.Tensor, mode: str = "hard", alpha: float = 0.0) -> torch.Tensor:
    """:func:`sam_advantages` from a mask already computed by :func:`masked_tokens`, so a caller that also
    needs the mask (to log its share, to renormalise) computes it once: [B] and bool [B, T] → [B, T]."""
    if mode == "soft" and not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"sam alpha must be in [0, 1] for mode 'soft', got {alpha}")
    per_token = advantages[:, None].expand(masked.shape)  # [B, T]
    if mode == "soft":
        return torch.where(masked, per_token * alpha, per_token)  # [B, T]
    return per_token.masked_fill(masked, 0.0)  # [B, T]


def renormalize_kept(
    token_advantages: torch.Tensor,
    keep_mask: torch.Tensor,
    completion_mask: torch.Tensor,
    loss_type: str,
) -> torch.Tensor:
    """Scale SAM's advantages so that TRL's loss averages over kept tokens only (``sam.renormalize``).

    ``grpo``: each completion is scaled by (its completion tokens ÷ its kept completion tokens), where
    kept = ``keep_mask & completion_mask``; a completion with no kept token is left unchanged.
    ``dapo``, ``bnpo``, ``dr_grpo``: one factor for the batch, (all completion tokens ÷ all kept
    completion tokens), unchanged when nothing is kept. Only kept completion tokens are scaled, as
    docs/design.md says: masked tokens (0 under ``hard``, α·A under ``soft``) and padding are left as they are.

    Why this is the authors' aggregation: TRL's ``grpo`` loss is mean_b (1/n_b) Σ_t ℓ(r_bt, A_bt) over
    the n_b completion tokens, with the clipped surrogate ℓ(r, A) = -min(r·A, clip(r)·A). For c > 0,
    min(r·cA, clip(r)·cA) = c·min(r·A, clip(r)·A): ℓ is positively homogeneous in A. Masked tokens have
    A = 0 and add nothing, so with A' = A·n_b/m_b on the m_b kept tokens, (1/n_b) Σ_kept ℓ(r, A') =
    (1/m_b) Σ_kept ℓ(r, A): the authors' per-sequence mean over kept tokens. The KL term is not
    scaled and still averages over every token, as in their code. For the global loss types the same
    argument turns TRL's token-count normaliser into a kept-token one; it is exact when this tensor
    holds the tokens the loss normalises over (``bnpo``: a micro-batch; ``dapo``: the generation batch
    of every process) and approximate otherwise (``dr_grpo`` divides by a constant).
    """
    if loss_type not in RENORMALIZE_LOSS_TYPES:
        raise ValueError(
            f"sam renormalisation supports loss_type {', '.join(RENORMALIZE_LOSS_TYPES)}, got '{loss_type}'"
        )
    if token_advantages.dim() != 2 or not token_advantages.is_floating_point():
        raise ValueError(f"token_advantages must be a float [B, T] tensor, got {describe_tensor(token_advantages)}")
    for name, mask in (("keep_mask", keep_mask), ("completion_mask", completion_mask)):
        if mask.shape != token_advantages.shape:
            raise ValueError(
                f"{name} must have token_advantages' shape {tuple(token_advantages.shape)}, got {tuple(mask.shape)}"
            )
    completion = completion_mask != 0  # [B, T]
    kept = (keep_mask != 0) & completion  # [B, T]
    if loss_type == "grpo":
        n_tokens = completion.sum(dim=1).double()  # [B]
        n_kept = kept.sum(dim=1).double()  # [B]
    else:
        n_tokens = completion.sum().double()  # []
        n_kept = kept.sum().double()  # []
    factor = torch.where(n_kept > 0, n_tokens / n_kept.clamp(min=1), torch.ones_like(n_kept))  # [B] or []
    factor = factor.to(token_advantages.dtype)
    if loss_type == "grpo":
        factor = factor[:, None]  # [B, 1]
    return torch.where(kept, token_advantages * factor, token_advantages)  # [B, T]


def clip_advantages(advantages: torch.Tensor, bound: float | None) -> torch.Tensor:
    """Advantages clamped to [-bound, bound] (``advantage_clip``; None: unchanged), any shape.

    The paper authors clamp the group-normalised advantage to [-3, 3] before masking. With a binary
    reward and G samples the largest |A| that TRL's group normalisation gives is (G-1)/sqrt(G), for a
    group with one success (unbiased std): 2.47 at G = 8, so the clamp at 3 binds from G = 11 up.
    """
    if bound is None:
        return advantages
    if not bound > 0:
        raise ValueError(f"the advantage bound must be > 0, got {bound}")
    return advantages.clamp(min=-bound, max=bound)


def _check_inputs(advantages: torch.Tensor, token_step: torch.Tensor, step_status: torch.Tensor, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"sam mode must be one of {', '.join(MODES)}, got '{mode}'")
    if advantages.dim() != 1 or not advantages.is_floating_point():
        raise ValueError(f"advantages must be a float [B] tensor, got {describe_tensor(advantages)}")
    B = advantages.shape[0]
    for name, tensor, letters in (("token_step", token_step, "T"), ("step_status", step_status, "K")):
        if tensor.dim() != 2 or tensor.dtype not in INT_DTYPES:
            raise ValueError(f"{name} must be an integer [B, {letters}] tensor, got {describe_tensor(tensor)}")
        if tensor.shape[0] != B:
            raise ValueError(f"{name} has {tensor.shape[0]} rows but advantages has B={B}")
        if tensor.device != advantages.device:
            raise ValueError(f"{name} is on {tensor.device} but advantages is on {advantages.device}")
    K = step_status.shape[1]
    if token_step.numel() and (token_step.min() < -1 or token_step.max() >= K):
        raise ValueError(
            f"token_step values must be -1 or a step index in [0, {K}), "
            f"got values in [{int(token_step.min())}, {int(token_step.max())}]"
        )
    if step_status.numel() and ((step_status < -1) | (step_status > 1)).any():
        raise ValueError("step_status values must be 1 (right), 0 (wrong) or -1 (unverifiable)")


def describe_tensor(tensor: object) -> str:
    if not isinstance(tensor, torch.Tensor):
        return type(tensor).__name__
    return f"{tensor.dtype} tensor of shape {tuple(tensor.shape)}"
