"""Shared-prefix SFT: the opening all rows share runs once, and the loss and gradients stay those of the
full rows (float32, tiny random models, right-padded rows as TRL's collator makes them)."""

from __future__ import annotations

import pytest
import torch

from genrel.models.tiny import tiny_causal_lm
from genrel.train.shared_prefix import MIN_SHARED_TOKENS, shared_length, suffix_hidden_states


def _batch(opening: int, own: tuple[int, ...], labelled_from: int):
    torch.manual_seed(0)
    common = torch.randint(5, 300, (opening,))
    rows = [torch.cat([common, torch.randint(5, 300, (n,))]) for n in own]
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = row, 1
        labels[i, labelled_from : len(row)] = row[labelled_from:]
    return ids, mask, labels


def test_the_shared_run_stops_before_the_last_common_token_and_any_label():
    ids, mask, labels = _batch(40, (10, 17, 13), labelled_from=45)
    assert shared_length(ids, mask, labels) == 39  # the 40 common tokens, less the one that predicts an own token
    ids, mask, labels = _batch(40, (10, 17, 13), labelled_from=36)
    assert shared_length(ids, mask, labels) == 35  # labels inside the common opening end the shared run
    ids, mask, labels = _batch(MIN_SHARED_TOKENS - 1, (5, 6), labelled_from=40)
    assert shared_length(ids, mask, labels) == 0  # too short to be worth a second forward call
    assert shared_length(ids[:1], mask[:1], labels[:1]) == 0


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_suffix_hidden_states_and_gradients_equal_the_full_rows(arch, tiny_tokenizer):
    model = tiny_causal_lm(tiny_tokenizer, arch=arch, init_std=0.2).float()
    ids, mask, labels = _batch(40, (10, 17, 13), labelled_from=45)
    shared = shared_length(ids, mask, labels)
    params = [p for p in model.parameters() if p.requires_grad]
    weights = torch.randn(*ids[:, shared:].shape, model.config.hidden_size) * mask[:, shared:, None]

    def loss_and_grads(hidden):
        loss = (hidden * weights).sum()
        return loss, torch.autograd.grad(loss, params, allow_unused=True)

    full, full_grads = loss_and_grads(model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, shared:])
    part, part_grads = loss_and_grads(suffix_hidden_states(model.model, ids, mask, shared))
    torch.testing.assert_close(part, full, rtol=1e-5, atol=1e-4)
    compared = 0
    for a, b in zip(part_grads, full_grads):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
            compared += 1
    assert compared == len(params)
