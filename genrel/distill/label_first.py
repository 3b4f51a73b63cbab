"""The label-first objective: training examples and a differentiable label distribution for an LM student.

A student completion is ``<label>NAME</label>`` and then, optionally, an explanation (the teacher's
kept reasoning). The prompt comes from :meth:`genrel.score.lm.LMScorer.prompt_text` and the label
candidates from :func:`genrel.score.lm.label_candidates`, so training reads the label exactly where
and how :class:`~genrel.score.lm.LMScorer` (``form="label-first"``) reads it when scoring: p(name) ∝
exp(Σ log p of the tokens of ``name</label>`` after ``prompt<label>``), multi-token names included.

The forward mirrors the scorer's too, but keeps gradients: one pass over the contexts with a KV
cache, then all labels' continuation tokens at once on the cache repeated per label ([B·L] rows).
The explanation rides on the row of the label it explains, so it costs no extra pass.

Loss = KL(target ‖ student) + λ · mean cross-entropy over explanation tokens.

Shape letters: B pairs, T context tokens, L labels, W continuation tokens, V vocabulary.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from genrel.distill.dataset import DistillSet
from genrel.grammar import LABEL_OPEN


@dataclass
class LabelFirstExample:
    """Token ids of one training pair: ``context`` = prompt + ``<label>``; ``candidates[j]`` = the
    tokens of label j's ``name</label>``; ``explanation`` follows candidate ``explanation_label``
    (-1: none); ``target`` [L] is the label distribution to learn."""

    context: list[int]
    candidates: list[list[int]]
    explanation: list[int]
    explanation_label: int
    target: np.ndarray


def encode_examples(
    scorer, data: DistillSet, targets: np.ndarray, max_explanation_tokens: int
) -> list[LabelFirstExample]:
    """Tokenize every pair of ``data`` for ``scorer`` (an LMScorer in label-first form); ``targets`` [N, L]."""
    from genrel.score.lm import label_candidates

    tokenizer, names = scorer.tokenizer, scorer.criteria.label_names
    contexts = [scorer.prompt_text(pair) + LABEL_OPEN for pair in data.pairs]
    context_ids, candidates = label_candidates(tokenizer, contexts, names)
    examples = []
    for i in range(len(data)):
        text, label = data.explanations[i], data.explanation_labels[i]
        explanation = explanation_ids(tokenizer, text, max_explanation_tokens) if text and label else []
        index = names.index(label) if explanation else -1
        examples.append(LabelFirstExample(context_ids[i], candidates[i], explanation, index, targets[i]))
    return examples


def explanation_ids(tokenizer: Any, text: str, max_tokens: int) -> list[int]:
    """Tokens of the explanation after ``</label>``: a newline, the text, and the end-of-sequence
    token when the text was not cut (a cut explanation must not teach the model to stop there)."""
    ids = tokenizer("\n" + text.strip(), add_special_tokens=False)["input_ids"]
    if len(ids) > max_tokens:
        return ids[:max_tokens]
    return ids + ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])


def student_log_scores(model: Any, batch: Sequence[LabelFirstExample], pad_id: int):
    """(scores [B, L] summed log-probs of each label's tokens, explanation NLL summed, explanation tokens)."""
    import torch

    device = next(model.parameters()).device
    n_labels = len(batch[0].candidates)
    ids, mask = left_pad([ex.context for ex in batch], pad_id, device)  # [B, T]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # [B, T]: left padding does not shift positions
    params = _forward_params(model)
    keep_last = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **keep_last)
    first = out.logits[:, -1].float().log_softmax(-1)  # [B, V]
    heads = torch.tensor([[c[0] for c in ex.candidates] for ex in batch], device=device)  # [B, L]
    scores = first.gather(1, heads)  # [B, L]
    rows = [  # [B·L] token rows: label j's tokens, then the explanation on the row of the label it explains
        c + (ex.explanation if j == ex.explanation_label else []) for ex in batch for j, c in enumerate(ex.candidates)
    ]
    width = max(len(r) for r in rows) - 1
    if width == 0:  # every label is one token and there is no explanation
        return scores, scores.new_zeros(()), 0
    cache = out["cache"] if "cache" in out else out["past_key_values"]
    cache.batch_repeat_interleave(n_labels)  # [B·L] rows share their pair's context
    lengths = [len(c) for ex in batch for c in ex.candidates]  # [B·L]
    feed = torch.tensor([r[:-1] + [pad_id] * (width + 1 - len(r)) for r in rows], device=device)  # [B·L, W]
    target = torch.tensor([r[1:] + [pad_id] * (width + 1 - len(r)) for r in rows], device=device)  # [B·L, W]
    k = torch.arange(width, device=device)[None]  # [1, W]
    n_cand = torch.tensor(lengths, device=device)[:, None]  # [B·L, 1]
    n_row = torch.tensor([len(r) for r in rows], device=device)[:, None]  # [B·L, 1]
    label_part = k < n_cand - 1  # [B·L, W]
    explanation_part = (k >= n_cand - 1) & (k < n_row - 1)  # [B·L, W]
    step_mask = torch.cat([mask.repeat_interleave(n_labels, 0), torch.ones_like(feed)], dim=1)  # [B·L, T + W]
    step_positions = mask.sum(-1).repeat_interleave(n_labels)[:, None] + k  # [B·L, W]
    cache_arg = "cache" if "cache" in params else "past_key_values"
    logits = model(input_ids=feed, attention_mask=step_mask, position_ids=step_positions, use_cache=True,
                   **{cache_arg: cache}).logits.float()  # [B·L, W, V]
    token_lp = -torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), target.flatten(), reduction="none"
    ).view_as(target)  # [B·L, W]
    scores = scores + (token_lp * label_part).sum(1).view(len(batch), n_labels)  # [B, L]
    return scores, (-token_lp * explanation_part).sum(), int(explanation_part.sum())


def distillation_loss(scores, targets, explanation_nll, explanation_tokens: int, explanation_weight: float):
    """(loss, kl, explanation CE): batch-mean KL(target ‖ softmax(scores)) + λ · per-token explanation CE."""
    import torch

    kl = torch.nn.functional.kl_div(scores.log_softmax(-1), targets, reduction="batchmean")
    ce = explanation_nll / max(explanation_tokens, 1)
    return kl + explanation_weight * ce, kl, ce


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device):
    """(input_ids [B, T], attention_mask [B, T]) with every row right-aligned."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.tensor([[pad_id] * (width - len(s)) + list(s) for s in seqs], device=device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=device)
    return ids, mask


def _forward_params(model: Any):
    """The forward parameters of the underlying transformers model (a PEFT wrapper takes **kwargs)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inspect.signature(base.forward).parameters
