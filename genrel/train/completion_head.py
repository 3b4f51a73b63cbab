"""The LM head applied only where the SFT loss is: TRL's fused head, restricted to the labelled positions.

TRL 1.16's ``SFTTrainer.compute_loss`` asks the model for per-token log-probabilities
(``model(..., labels=labels, fused_lm_head=True)``, patched in by :func:`trl.trainer.utils.add_fused_lm_head`).
On CUDA its Triton path projects only the positions that have a label; elsewhere it projects every
position, prompt included, through the [V, H] head, forward and again in backward. On CPU, with a
49k vocabulary and ~550-token prompts before ~80-token traces, that was about a third of an SFT step.

:func:`add_completion_head` puts a head in front of TRL's that gathers the labelled positions first and
runs TRL's own kernel (:class:`trl.kernels.chunked_logprob.ChunkedLogProbFunction`) on those alone, so
the loss, its gradients and what ``compute_loss`` logs from the outputs (entropy, token accuracy) are
TRL's. Every other call (generation, plain forwards) goes to TRL's forward unchanged. Models whose
logits are more than ``lm_head(hidden)`` (softcapping, logit scales) or that add a router loss keep
TRL's head. Shapes: B sequences, T tokens, H hidden size, N labelled positions.
"""

from __future__ import annotations

import functools
import types

from genrel.train.shared_prefix import shared_length, suffix_hidden_states

# Config fields that make the logits more than lm_head(hidden); TRL's head applies them, this one does not.
SCALED_LOGITS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")
OUTPUTS = ("log_probs", "entropy", "is_top1")  # what SFTTrainer.compute_loss reads
VOCAB_CHUNK = 8192  # vocabulary columns per tile: TRL uses 32768; on CPU 8192 measured ~5% faster and ~100 MB lighter


def add_completion_head(model) -> bool:
    """Route ``model``'s fused-head calls (``model`` being the causal LM under any PEFT wrapper, after TRL
    patched it) through the labelled positions only. False, leaving TRL's head, for models it does not fit."""
    config = model.config.get_text_config()
    if getattr(config, "output_router_logits", False) or any(
        getattr(config, name, None) not in (None, 1.0) for name in SCALED_LOGITS
    ):
        return False
    trl_forward = model.forward

    @functools.wraps(type(model).forward)  # generate() checks its kwargs against this signature
    def forward(self, *args, fused_lm_head=False, labels=None, num_items_in_batch=None, **kwargs):
        if not fused_lm_head or labels is None or "shift_labels" in kwargs:
            return trl_forward(*args, fused_lm_head=fused_lm_head, labels=labels,
                               num_items_in_batch=num_items_in_batch, **kwargs)
        return completion_log_probs(self, args, kwargs, labels, num_items_in_batch)

    model.forward = types.MethodType(forward, model)
    return True


def completion_log_probs(model, args, kwargs, labels, num_items_in_batch=None):
    """TRL's ``FusedCausalLMOutput`` for ``labels``, the head run on the labelled positions only."""
    from trl.kernels.chunked_logprob import ChunkedLogProbFunction
    from trl.trainer.utils import FusedCausalLMOutput

    targets = labels[:, 1:]  # [B, T-1]: the next token at each position
    mask = targets != -100  # [B, T-1]
    ids, attention = kwargs.get("input_ids"), kwargs.get("attention_mask")
    shared = 0 if args or ids is None or attention is None else shared_length(ids, attention, labels)
    if shared:  # the rows' common opening (the system prompt) runs once: genrel.train.shared_prefix
        hidden = suffix_hidden_states(model.base_model, ids, attention, shared)[:, :-1]  # [B, T-1-shared, H]
    else:
        hidden = model.base_model(*args, **{**kwargs, "use_cache": False}).last_hidden_state[:, :-1]  # [B, T-1, H]
    head = model.get_output_embeddings()
    per_token = ChunkedLogProbFunction.apply(
        hidden[mask[:, shared:]], head.weight, head.bias, targets[mask], 1.0, VOCAB_CHUNK, None, 1.0, OUTPUTS,
    )  # each [N] or None
    # masked_scatter keeps a batch with no label connected to the graph (a differentiable zero loss).
    log_probs, entropy, _, _, is_top1 = (
        None if x is None else x.new_zeros(mask.shape).masked_scatter(mask, x) for x in per_token
    )  # each [B, T-1]
    count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
    return FusedCausalLMOutput(
        loss=-log_probs.sum() / count, log_probs=log_probs, entropy=entropy, is_top1=is_top1, label_mask=mask,
    )
