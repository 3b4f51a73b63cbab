"""Prompts: chat messages that ask a model to judge a query–document pair against the criteria, with
token-aware truncation of the document, fitted to a token budget and templated the same way for
training and scoring. Imports no torch and no transformers."""

from genrel.prompt.chat import DEFAULT_CHAT_TEMPLATE_KWARGS, chat_prompt, fitted_messages, prompt_tokens
from genrel.prompt.render import example_completion, render_messages, system_prompt, user_prompt
from genrel.prompt.truncate import MARKER, truncate_document

__all__ = [
    "DEFAULT_CHAT_TEMPLATE_KWARGS",
    "MARKER",
    "chat_prompt",
    "example_completion",
    "fitted_messages",
    "prompt_tokens",
    "render_messages",
    "system_prompt",
    "truncate_document",
    "user_prompt",
]
