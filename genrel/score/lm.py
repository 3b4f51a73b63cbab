"""Score pairs with a generative model: the label distribution is read from the model's own
probabilities at the label position, so a malformed explanation never loses a score.

Forms (``form``):

- ``reasoning``: generate the steps until the model writes ``<label>`` (a stop string), then read the
  distribution there. A model that never writes ``<label>`` within ``max_new_tokens`` gets ``\\n<label>``
  appended to what it wrote, is read there, and its ``format_error`` is recorded.
- ``label-first`` (students): the completion starts with ``<label>``; one forward pass, no generation.
  With ``explain=True`` the explanation is generated after ``<label>NAME</label>``.

Prompt variants (``prompt``): ``steps`` (the criteria's steps, the trained format) or ``no-steps``
(the criteria without steps: the model is asked only for ``<label>…</label>``; used with label-first).

Reading the distribution: for every label name, the tokens of ``name</label>`` are teacher-forced after
the context and p(name) ∝ exp(sum of their log-probs) (then divided by ``temperature`` before the
softmax). The closing tag makes names that share a prefix (``rel`` / ``relevant``) and multi-token names
exact: each candidate is a whole token sequence. The context is run once; candidates reuse its KV
cache. The backend (transformers here, vLLM in :mod:`genrel.score.vllm_backend`) only implements
``_generate`` and ``_candidate_log_scores``; everything else is shared.

Shared prefix (``prefix_cache=True``, transformers backend): the prompt prefix every pair shares (the
system message with the criteria) is run once and its KV cache reused by every batch, by both the
context pass and generation (:mod:`genrel.score.prefix_cache`). A batch is then laid out as
[prefix][left padding][suffix], masked 0 on the padding only, so the real tokens keep consecutive
positions. Same numbers as without it (float32: within 1e-5, the same greedy text); a model whose
cache cannot be shared runs the plain path.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from genrel.criteria import Criteria
from genrel.data.pair import Pair
from genrel.grammar import LABEL_CLOSE, LABEL_OPEN, ParseError, ParseErrorKind, label_prefix, try_parse
from genrel.models.kv_cache import cache_arg, output_cache
from genrel.progress import progress_bar
from genrel.prompt import DEFAULT_CHAT_TEMPLATE_KWARGS, chat_prompt, fitted_messages
from genrel.score.base import Scored, Scorer, scored_from_log_scores
from genrel.score.prefix_cache import PrefixCache

log = logging.getLogger(__name__)

FORMS = ("reasoning", "label-first")
PROMPTS = ("steps", "no-steps")
MIN_DOCUMENT_TOKENS = 16  # a scorer answers every pair: a prompt over max_length keeps this much document
def label_candidates(
    tokenizer: Any, contexts: Sequence[str], names: Sequence[str]
) -> tuple[list[list[int]], list[list[list[int]]]]:
    """Token ids of each context and, per context and label, of ``name</label>`` as it continues that
    context: the tokens of context + candidate after the context's own tokens. Where a tokenizer merges
    across the boundary (the context's tokens are not a prefix), the candidate is tokenized alone."""
    texts = [ctx + name + LABEL_CLOSE for ctx in contexts for name in names]
    encoded = tokenizer(list(contexts) + texts, add_special_tokens=False)["input_ids"]
    ctx_ids, full_ids = encoded[: len(contexts)], encoded[len(contexts) :]
    alone = tokenizer([name + LABEL_CLOSE for name in names], add_special_tokens=False)["input_ids"]
    candidates = []
    for b, ctx in enumerate(ctx_ids):
        row = []
        for j in range(len(names)):
            full = full_ids[b * len(names) + j]
            row.append(full[len(ctx) :] if full[: len(ctx)] == ctx and len(full) > len(ctx) else alone[j])
        candidates.append(row)
    return ctx_ids, candidates


class LMScorer(Scorer):
    """A causal LM (transformers backend) judging pairs in ``reasoning`` or ``label-first`` form.

    ``prefix_cache``: compute the prompt prefix all pairs share once and reuse its KV cache (module
    docstring); off runs every prompt whole, the reference path the benchmark compares with."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        criteria: Criteria,
        *,
        form: str = "reasoning",
        prompt: str = "steps",
        temperature: float = 1.0,
        batch_size: int = 8,
        max_new_tokens: int = 512,
        max_explain_tokens: int = 256,
        max_length: int | None = None,
        generation_kwargs: dict[str, Any] | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        progress: bool = True,
        name: str | None = None,
        prefix_cache: bool = True,
    ):
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        if prompt not in PROMPTS:
            raise ValueError(f"prompt must be one of {PROMPTS}, got {prompt!r}")
        self.model, self.tokenizer, self.criteria = model, tokenizer, criteria
        self.form, self.prompt, self.temperature = form, prompt, temperature
        self.batch_size, self.max_new_tokens, self.max_explain_tokens = batch_size, max_new_tokens, max_explain_tokens
        self.max_length = max_length
        self.generation_kwargs = dict(generation_kwargs or {})
        self.chat_template_kwargs = {**DEFAULT_CHAT_TEMPLATE_KWARGS, **(chat_template_kwargs or {})}
        self.progress = progress
        self.name = name or f"lm-{form}" + ("-nosteps" if prompt == "no-steps" else "")
        self._prompt_criteria = criteria if prompt == "steps" else criteria.model_copy(update={"steps": []})
        self._stop = None
        self.prefix_cache = prefix_cache
        self._prefix: PrefixCache | None = None

    # -- prompts ------------------------------------------------------------------------------------
    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return next((i for i in (tok.pad_token_id, tok.eos_token_id) if i is not None), 0)

    def prompt_text(self, pair: Pair) -> str:
        """The chat-formatted prompt for ``pair``, built as the training stages build it
        (:func:`genrel.prompt.fitted_messages`): the document is cut so the prompt fits ``max_length``."""
        messages = fitted_messages(
            self._prompt_criteria, pair, self.tokenizer, self.max_length,
            min_document_tokens=MIN_DOCUMENT_TOKENS, template_kwargs=self.chat_template_kwargs,
        )
        return chat_prompt(self.tokenizer, messages, **self.chat_template_kwargs)

    # -- scoring ------------------------------------------------------------------------------------
    def score_pairs(self, pairs: Sequence[Pair], *, explain: bool = False) -> list[Scored]:
        prompts = [self.prompt_text(p) for p in pairs]
        if (prefix := self._prefix_cache()) is not None:
            prefix.prime(self.tokenizer(prompts, add_special_tokens=False)["input_ids"])
        order = sorted(range(len(pairs)), key=lambda i: -len(prompts[i]))  # similar lengths batch together
        results: list[Scored | None] = [None] * len(pairs)
        with progress_bar(len(pairs), f"scoring {self.name}", enabled=self.progress) as bar:
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                for i, scored in zip(batch, self.score_prompts([prompts[i] for i in batch], explain=explain)):
                    results[i] = scored
                bar.update(len(batch))
        return results  # type: ignore[return-value]

    def score_prompts(self, prompts: Sequence[str], *, explain: bool = False) -> list[Scored]:
        """Score one batch of already rendered prompts (as :meth:`prompt_text` renders them)."""
        import torch

        with torch.inference_mode():
            if self.form == "reasoning":
                return self._score_reasoning(prompts)
            return self._score_label_first(prompts, explain)

    def _score_reasoning(self, prompts: Sequence[str]) -> list[Scored]:
        generated = self._generate(prompts, stop_at_label=True, max_new_tokens=self.max_new_tokens)
        contexts = [p + label_prefix(text) for p, (text, _) in zip(prompts, generated)]
        log_scores = self.label_log_scores(contexts)  # [B, L]
        results = []
        for (text, n_tokens), row in zip(generated, log_scores):
            scored = scored_from_log_scores(self.criteria, row, self.temperature, reasoning_tokens=n_tokens)
            at = text.find(LABEL_OPEN)
            parsed = try_parse(label_prefix(text) + scored.label + LABEL_CLOSE, self.criteria)
            scored.reasoning = (text[:at] if at >= 0 else text).strip()
            scored.verdicts, scored.format_error = _verdicts_and_error(parsed, wrote_label=at >= 0)
            results.append(scored)
        return results

    def _score_label_first(self, prompts: Sequence[str], explain: bool) -> list[Scored]:
        contexts = [p + LABEL_OPEN for p in prompts]
        log_scores = self.label_log_scores(contexts)  # [B, L]
        results = [scored_from_log_scores(self.criteria, row, self.temperature) for row in log_scores]
        if explain and self.prompt == "steps":
            answered = [ctx + s.label + LABEL_CLOSE for ctx, s in zip(contexts, results)]
            for scored, (text, n_tokens) in zip(results, self._generate(answered, False, self.max_explain_tokens)):
                # The steps come after the label here; parse them in grammar order to get verdicts.
                parsed = try_parse(text.strip() + "\n" + LABEL_OPEN + scored.label + LABEL_CLOSE, self.criteria)
                scored.reasoning, scored.reasoning_tokens = text.strip(), n_tokens
                scored.verdicts, scored.format_error = _verdicts_and_error(parsed, wrote_label=True)
        return results

    def label_log_scores(self, contexts: Sequence[str]) -> np.ndarray:
        """[B, L] sum of token log-probs of ``name</label>`` after each context (which ends with
        ``<label>``), per criteria label, before temperature."""
        ctx_ids, candidates = label_candidates(self.tokenizer, contexts, self.criteria.label_names)
        return self._candidate_log_scores(ctx_ids, candidates)

    # -- backend: transformers ----------------------------------------------------------------------
    def _generate(self, texts: Sequence[str], stop_at_label: bool, max_new_tokens: int) -> list[tuple[str, int]]:
        """Greedy continuations (override with ``generation_kwargs``): (text, generated tokens) each;
        with ``stop_at_label`` a row stops once it has written ``<label>``."""
        from transformers import StoppingCriteriaList

        ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        kwargs: dict[str, Any] = {"do_sample": False, "pad_token_id": self.pad_id, "max_new_tokens": max_new_tokens}
        kwargs.update(self.generation_kwargs)
        prefix, past = self._shared_prefix(ids) if self._generate_takes_cache(kwargs) else ((), {})
        input_ids, mask = _left_pad(ids, self.pad_id, self._device, prefix)  # [B, P + T]
        kwargs.update(past)  # generate runs only the tokens after a given cache
        if stop_at_label:
            kwargs["stopping_criteria"] = StoppingCriteriaList([self._label_stop()])
        out = self.model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
        new = out[:, input_ids.shape[1] :].tolist()  # [B, N]
        eos = _eos_ids(self.model, self.tokenizer)
        results = []
        for row in new:
            n = next((k for k, t in enumerate(row) if t in eos or t == self.pad_id), len(row))
            text = self.tokenizer.decode(row[:n], skip_special_tokens=True)
            # Count an end-of-sequence the model wrote; a row stopped at <label> is followed by padding.
            wrote_eos = n < len(row) and row[n] in eos and not (stop_at_label and LABEL_OPEN in text)
            results.append((text, n + int(wrote_eos)))
        return results

    def _label_stop(self):
        if self._stop is None:  # building the stop-string tables scans the vocabulary: do it once
            from transformers import StopStringCriteria

            self._stop = StopStringCriteria(self.tokenizer, [LABEL_OPEN])
        return self._stop

    @property
    def _device(self):
        return next(self.model.parameters()).device

    def _candidate_log_scores(self, ctx_ids: list[list[int]], candidates: list[list[list[int]]]) -> np.ndarray:
        """[B, L] summed candidate log-probs: one pass over the contexts, then each label's tokens on a
        copy of their KV cache (cropped back after each label)."""
        import torch

        device, n_labels = self._device, len(candidates[0])
        prefix, past = self._shared_prefix(ctx_ids)
        ids, mask = _left_pad(ctx_ids, self.pad_id, device, prefix)  # [B, P + T]
        lengths = mask.sum(-1)  # [B]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # [B, P + T]: padding does not shift positions
        out = self.model(
            input_ids=ids[:, len(prefix) :], attention_mask=mask, position_ids=positions[:, len(prefix) :],
            use_cache=True, **self._keep_last(), **past,
        )
        first = out.logits[:, -1].float().log_softmax(-1)  # [B, V]
        cache = output_cache(out)
        scores = np.zeros((len(ctx_ids), n_labels))
        for j in range(n_labels):
            cands = [row[j] for row in candidates]
            heads = torch.tensor([c[0] for c in cands], device=device)  # [B]
            total = first.gather(1, heads[:, None])[:, 0]  # [B]
            if max(len(c) for c in cands) > 1:
                total = total + self._continuation_log_prob(cache, mask, lengths, cands)
            scores[:, j] = total.double().cpu().numpy()
        return scores

    def _continuation_log_prob(self, cache, mask, lengths, cands: list[list[int]]):
        """[B] sum of log p(c_k | context, c_<k) for k >= 2, reusing the context's cache."""
        import torch

        device = mask.device
        width = max(len(c) for c in cands) - 1
        feed = torch.tensor([c[:-1] + [self.pad_id] * (width - len(c) + 1) for c in cands], device=device)  # [B, W]
        target = torch.tensor([c[1:] + [self.pad_id] * (width - len(c) + 1) for c in cands], device=device)  # [B, W]
        valid = torch.tensor([[k < len(c) - 1 for k in range(width)] for c in cands], device=device)  # [B, W]
        step_mask = torch.cat([mask, torch.ones_like(feed)], dim=1)  # [B, T + W]
        positions = lengths[:, None] + torch.arange(width, device=device)[None]  # [B, W]
        croppable = bool(getattr(cache, "is_croppable", False))  # rollback leaves no trace (no sliding layers)
        past = cache if croppable else copy.deepcopy(cache)
        logits = self.model(
            input_ids=feed, attention_mask=step_mask, position_ids=positions, use_cache=True,
            **{self._cache_arg(): past},
        ).logits.float()  # [B, W, V]
        if croppable:
            cache.crop(-width)  # negative = tokens to remove, in every transformers version
        token_lp = logits.log_softmax(-1).gather(2, target[..., None])[..., 0]  # [B, W]
        return (token_lp * valid).sum(1)  # [B]

    @property
    def prefix_tokens(self) -> int:
        """Tokens in the shared prefix the scorer holds a cache for (0: none)."""
        return len(self._prefix.ids) if self._prefix is not None else 0

    def _prefix_cache(self) -> PrefixCache | None:
        if self._prefix is None and self.prefix_cache and self.model is not None:
            self._prefix = PrefixCache(self.model, self._cache_arg(), self._keep_last())
        return self._prefix

    def _shared_prefix(self, seqs: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], dict[str, Any]]:
        """(prefix, model keyword arguments carrying its cache for ``len(seqs)`` rows), or ``((), {})``
        to run the sequences whole."""
        cache = self._prefix_cache()
        prefix = cache.prefix_for(seqs) if cache is not None else ()
        kv = cache.kv(prefix, len(seqs)) if prefix else None
        return (prefix, {self._cache_arg(): kv}) if kv is not None else ((), {})

    def _generate_takes_cache(self, kwargs: dict[str, Any]) -> bool:
        """generate refuses a given cache beside a ``cache_implementation`` and does not expand one to
        several sequences per row."""
        settings = {**self.model.generation_config.to_dict(), **kwargs}
        return (settings.get("cache_implementation") is None and settings.get("use_cache", True) is not False
                and (settings.get("num_beams") or 1) == 1 and (settings.get("num_return_sequences") or 1) == 1)

    def _keep_last(self) -> dict[str, int]:
        """Ask for the last position's logits only (a [B, T, V] tensor would be huge) when supported."""
        return {"logits_to_keep": 1} if "logits_to_keep" in self._forward_params() else {}

    def _cache_arg(self) -> str:
        return cache_arg(self.model)

    def _forward_params(self):
        return inspect.signature(self.model.forward).parameters


def _verdicts_and_error(parsed, *, wrote_label: bool) -> tuple[dict[str, str], str | None]:
    if isinstance(parsed, ParseError):
        return {}, parsed.kind.value
    return parsed.verdicts, None if wrote_label else ParseErrorKind.no_label.value


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def _left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device, prefix: Sequence[int] = ()):
    """(input_ids [B, P + T], attention_mask [B, P + T]): the ``prefix`` every row starts with (P tokens),
    then the rest of each row right-aligned after left padding."""
    import torch

    n = len(prefix)
    width = max(len(s) for s in seqs) - n
    ids = torch.tensor([[*prefix, *[pad_id] * (width - len(s) + n), *s[n:]] for s in seqs], device=device)
    mask = torch.tensor([[1] * n + [0] * (width - len(s) + n) + [1] * (len(s) - n) for s in seqs], device=device)
    return ids, mask
