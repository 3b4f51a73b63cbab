"""The prompt a model continues, built one way for training and for scoring: chat messages for a pair
(:func:`genrel.prompt.render_messages`), the document cut so the whole prompt fits a token budget, and
the model's chat template applied with genrel's template options.

Training hands TRL the messages and these template options (TRL applies the template); the scorer
applies the template itself with :func:`chat_prompt`. Both get their messages from
:func:`fitted_messages`, so one pair gives the same token ids in both. The tokenizer is duck-typed (a
Hugging Face tokenizer): this module imports no tokenizer library.
"""

from __future__ import annotations

from typing import Any

from genrel.criteria import Criteria
from genrel.prompt.render import PairLike, render_messages

# Qwen3 (and templates like it) would otherwise open a <think> block: the criteria's format is the reasoning.
DEFAULT_CHAT_TEMPLATE_KWARGS: dict[str, Any] = {"enable_thinking": False}
SEAM_TOKENS = 8  # room for the cut marker and the merges where the document's cut meets the rest


def chat_prompt(tokenizer: Any, messages: list[dict[str, str]], **template_kwargs: Any) -> str:
    """The prompt string the model continues: its chat template with the generation prompt (and
    :data:`DEFAULT_CHAT_TEMPLATE_KWARGS` unless overridden), or, for a tokenizer without a template (a
    base model), the messages joined by blank lines after the BOS text."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **{**DEFAULT_CHAT_TEMPLATE_KWARGS, **template_kwargs}
        )
    bos = tokenizer.bos_token or ""
    return bos + "\n\n".join(m["content"] for m in messages) + "\n\n"


def prompt_tokens(tokenizer: Any, messages: list[dict[str, str]], **template_kwargs: Any) -> int:
    """How many tokens :func:`chat_prompt` makes of ``messages``."""
    return len(tokenizer(chat_prompt(tokenizer, messages, **template_kwargs), add_special_tokens=False)["input_ids"])


def fitted_messages(
    criteria: Criteria,
    pair: PairLike,
    tokenizer: Any,
    max_prompt_tokens: int | None,
    max_document_chars: int | None = None,
    *,
    min_document_tokens: int | None = None,
    template_kwargs: dict[str, Any] | None = None,
) -> list[dict[str, str]] | None:
    """The pair's chat messages within ``max_prompt_tokens`` (chat template included), cutting only the
    document. When not even an empty document fits: None, or with ``min_document_tokens`` (a scorer
    must answer every pair) the document cut to that many tokens."""
    kwargs = template_kwargs or {}
    messages = render_messages(criteria, pair, max_document_chars=max_document_chars)
    if max_prompt_tokens is None or prompt_tokens(tokenizer, messages, **kwargs) <= max_prompt_tokens:
        return messages
    empty = render_messages(criteria, pair.model_copy(update={"text": ""}))
    budget = max_prompt_tokens - prompt_tokens(tokenizer, empty, **kwargs) - SEAM_TOKENS
    if budget < 1:
        if min_document_tokens is None:
            return None
        budget = min_document_tokens
    elif min_document_tokens is not None:
        budget = max(budget, min_document_tokens)
    return render_messages(
        criteria, pair, tokenizer=tokenizer, max_document_tokens=budget, max_document_chars=max_document_chars
    )
