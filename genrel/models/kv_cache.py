"""The two names of a transformers KV cache: transformers 5.24 renamed ``past_key_values`` to ``cache``,
in forward arguments and in outputs. Every caller that hands a cache in or reads one out asks here."""

from __future__ import annotations

import inspect
from typing import Any


def cache_arg(model: Any) -> str:
    """The keyword ``model.forward`` takes its cache under."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def output_cache(out: Any) -> Any:
    """The KV cache in a model output (None when it has none)."""
    return out["cache"] if "cache" in out else out.get("past_key_values")
