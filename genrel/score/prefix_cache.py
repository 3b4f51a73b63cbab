"""The KV cache of the prompt prefix that every pair shares, computed once and reused by every batch.

Every prompt opens with the same chat header and system message (the criteria: about 450 of 550 tokens
for ``esci`` on SmolLM2), so recomputing it per pair is most of a label-first forward pass and much of
a reasoning prefill. The prefix is found without knowing the template: it is the longest common prefix
of the token ids being scored, which by construction ends on the same token boundary in every prompt.
A scorer keeps one prefix; a scorer reused across calls (the service) recomputes it only when the
prefix, or the model's weights, change.

This module chooses the prefix and holds its cache; :class:`genrel.score.lm.LMScorer` lays batches out
behind it. It does not handle caches a prefix cannot be shared from (sliding-window, linear-attention or
static layers, models whose forward takes no cache): :meth:`PrefixCache.kv` then answers ``None`` and
the scorer runs its plain path.
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Sequence
from typing import Any

from genrel.models.kv_cache import output_cache

MIN_PREFIX_TOKENS = 16  # below this, one more forward pass costs more than it saves


def shared_prefix_length(seqs: Sequence[Sequence[int]], min_tokens: int = MIN_PREFIX_TOKENS) -> int:
    """Length of the token prefix all ``seqs`` share, or 0 when under ``min_tokens``. It leaves every
    sequence at least one token of its own, since the logits of each sequence's last token are read."""
    # commonprefix compares any sequences element-wise, not only strings
    n = min(len(os.path.commonprefix([list(s) for s in seqs])), min(len(s) for s in seqs) - 1)
    return n if n >= min_tokens else 0


def shareable(cache: Any) -> bool:
    """Whether a prefix cache can be copied per row and extended: full-attention layers only, since a
    sliding-window or recurrent layer does not keep the whole prefix."""
    return (
        bool(getattr(cache, "is_croppable", False))
        and not any(getattr(cache, "is_sliding", [True]))
        and hasattr(cache, "batch_repeat_interleave")
    )


def weights_state(model: Any) -> tuple[Any, ...]:
    """Changes whenever the weights do: moved to another device or dtype, or changed in place (an
    optimizer step bumps a parameter's version counter); a cache computed before is then stale."""
    first = next(model.parameters())
    return first.device, first.dtype, sum(p._version for p in model.parameters() if not p.is_inference())


class PrefixCache:
    """One model's KV cache of one shared token prefix.

    ``passes`` counts the prefix forward passes (tests and the benchmark read it)."""

    def __init__(self, model: Any, cache_arg: str, forward_kwargs: dict[str, Any] | None = None,
                 min_tokens: int = MIN_PREFIX_TOKENS):
        self.model, self.cache_arg, self.min_tokens = model, cache_arg, min_tokens
        self.forward_kwargs = dict(forward_kwargs or {})
        self.ids: tuple[int, ...] = ()
        self.passes = 0
        self._kv: Any = None
        self._weights: tuple[Any, ...] | None = None
        params = inspect.signature(model.forward).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self.usable = takes_any or {"position_ids", cache_arg} <= params.keys()

    def prime(self, seqs: Sequence[Sequence[int]]) -> None:
        """Adopt the prefix of all of one call's prompts (when there are several), so that its batches,
        whose own shared prefix may run longer (one query's pairs), reuse one cache."""
        n = shared_prefix_length(seqs, self.min_tokens) if len(seqs) > 1 and self.usable else 0
        if n and tuple(seqs[0][:n]) != self.ids:
            self.ids, self._kv = tuple(seqs[0][:n]), None

    def prefix_for(self, seqs: Sequence[Sequence[int]]) -> tuple[int, ...]:
        """The prefix to run ``seqs`` behind: the cached one when every sequence extends it, else their
        own shared prefix (a lone sequence shares with the cached one: a service scoring one pair per
        call finds the system prompt on its second call); ``()`` when none is long enough."""
        if not self.usable:
            return ()
        n_cached = len(self.ids)
        if self.ids and all(len(s) > n_cached and tuple(s[:n_cached]) == self.ids for s in seqs):
            return self.ids
        pool = [*seqs, self.ids] if len(seqs) == 1 and self.ids else seqs
        n = min(shared_prefix_length(pool, self.min_tokens), min(len(s) for s in seqs) - 1)
        if n < self.min_tokens:
            return ()
        self.ids, self._kv = tuple(seqs[0][:n]), None
        return self.ids

    def kv(self, prefix: tuple[int, ...], batch: int) -> Any:
        """A fresh cache of ``prefix`` for ``batch`` rows, which the caller may extend; ``None`` when
        this model's cache cannot be shared (then :attr:`usable` turns false for good)."""
        import torch

        if not prefix or prefix != self.ids or not self.usable:
            return None
        with torch.no_grad():  # also outside inference mode: a cache kept across calls holds no graph
            weights = weights_state(self.model)
            if self._kv is None or weights != self._weights:
                self._kv, self._weights = self._compute(prefix), weights
            if self._kv is None:
                self.usable = False
                return None
            expanded = copy.deepcopy(self._kv)  # generation and the candidate steps extend it in place
            expanded.batch_repeat_interleave(batch)
        return expanded

    def _compute(self, prefix: tuple[int, ...]) -> Any:
        import torch

        device = next(self.model.parameters()).device
        out = self.model(input_ids=torch.tensor([prefix], device=device), use_cache=True, **self.forward_kwargs)
        self.passes += 1
        cache = output_cache(out)
        return cache if shareable(cache) else None
