"""Hidden states of a training batch whose rows open with the same tokens, the shared opening run once.

Every SFT example of one criteria starts with the same chat-template system message (~490 of ~680
tokens for the embedded model on the ``esci`` criteria), and the loss never looks at it. Run as a batch
of B full rows, that opening is computed B times forward and B times backward. Here it is run once, as
one row, its key/value cache repeated B times (a differentiable copy: the gradients of all rows flow
back into the one computation), and only each row's own tokens are run on top. The result equals the
full computation's hidden states at those positions, so a loss over them and its gradients are the same.

Right padding (the trainer's collators) is fine: padding sits after each row's tokens. The caller
decides where the shared run may end (no labelled position inside it).
"""

from __future__ import annotations

from typing import Any

from genrel.models.kv_cache import cache_arg, output_cache

MIN_SHARED_TOKENS = 32  # below this the extra forward call costs more than it saves


def shared_length(input_ids, attention_mask, labels) -> int:
    """Tokens to run once: the run every row opens with (equal ids, attended, unlabelled) less its last
    token, so every position whose next token carries a label is computed per row and at least one own
    token is left (0 when that is under :data:`MIN_SHARED_TOKENS`, or for a single row)."""
    import torch

    if input_ids.shape[0] < 2:
        return 0
    same = (input_ids == input_ids[:1]).all(0) & attention_mask.bool().all(0) & (labels == -100).all(0)  # [T]
    length = int(torch.cumprod(same.int(), 0).sum())
    length = min(length - 1, input_ids.shape[1] - 1)
    return length if length >= MIN_SHARED_TOKENS else 0


def suffix_hidden_states(backbone: Any, input_ids, attention_mask, shared: int):
    """[B, T - shared, H] last hidden states of positions ``shared…T-1``, the first ``shared`` tokens (the
    same in every row) computed once. ``backbone`` is the decoder without its LM head (``model.model``)."""
    import torch

    rows, width = input_ids.shape
    head = backbone(input_ids=input_ids[:1, :shared], use_cache=True)
    cache = output_cache(head)
    cache.batch_repeat_interleave(rows)
    mask = torch.cat([attention_mask.new_ones(rows, shared), attention_mask[:, shared:]], dim=1)  # [B, T]
    positions = torch.arange(shared, width, device=input_ids.device).expand(rows, -1)  # [B, T - shared]
    out = backbone(input_ids=input_ids[:, shared:], attention_mask=mask, position_ids=positions,
                   use_cache=True, **{cache_arg(backbone): cache})
    return out.last_hidden_state
