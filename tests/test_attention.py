"""The CPU decode attention: the same tokens and scores as SDPA, matmuls only where no gradient flows."""

from __future__ import annotations

import pytest
import torch

from genrel.models import attention
from genrel.models.tiny import tiny_causal_lm


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_decode_attention_generates_what_sdpa_generates(arch, tiny_tokenizer):
    model = tiny_causal_lm(tiny_tokenizer, arch=arch, init_std=0.2).float().eval()
    batch = tiny_tokenizer(["<label>exact and more words here", "a b"], padding=True, return_tensors="pt")  # left pad
    kwargs = dict(max_new_tokens=12, do_sample=False, output_scores=True, return_dict_in_generate=True,
                  pad_token_id=tiny_tokenizer.pad_token_id)
    with torch.no_grad():
        plain = model.generate(**batch, **kwargs)
        assert attention.use_decode_attention(model) and model.config._attn_implementation == attention.NAME
        calls = []
        original = attention.decode_attention

        def counted(module, query, *args, **kw):
            calls.append((query.shape[2], torch.is_grad_enabled()))
            return original(module, query, *args, **kw)

        from transformers import AttentionInterface

        AttentionInterface.register(attention.NAME, counted)
        try:
            fast = model.generate(**batch, **kwargs)
        finally:
            AttentionInterface.register(attention.NAME, original)
    assert torch.equal(plain.sequences, fast.sequences)
    for a, b in zip(plain.scores, fast.scores):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert any(q == 1 for q, _ in calls) and any(q > 1 for q, _ in calls)  # decode steps and the prefill both ran


def test_gradients_still_flow_through_sdpa(tiny_tokenizer):
    model = tiny_causal_lm(tiny_tokenizer, init_std=0.2).float()
    ids = tiny_tokenizer(["a b c d"], return_tensors="pt")["input_ids"][:, :1]  # one token: the decode shape
    reference = model(input_ids=ids).logits.sum()
    reference.backward()
    expected = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    attention.use_decode_attention(model)
    model(input_ids=ids).logits.sum().backward()
    got = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


def test_only_sdpa_models_on_cpu_switch(tiny_tokenizer):
    model = tiny_causal_lm(tiny_tokenizer)
    model.set_attn_implementation("eager")
    assert not attention.use_decode_attention(model) and model.config._attn_implementation == "eager"
