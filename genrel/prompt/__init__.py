"""Prompts: chat messages that ask a model to judge a query–document pair against the criteria, with
token-aware truncation of the document. Imports no torch and no transformers."""

from genrel.prompt.render import example_completion, render_messages, system_prompt, user_prompt
from genrel.prompt.truncate import MARKER, truncate_document

__all__ = ["MARKER", "example_completion", "render_messages", "system_prompt", "truncate_document", "user_prompt"]
