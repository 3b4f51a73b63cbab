"""The vLLM backend of :class:`genrel.score.lm.LMScorer`, for GPUs: same prompts, same label reading,
same outputs as the transformers backend; only generation and candidate log-probs run on vLLM.

- Generation: ``LLM.generate`` on token-id prompts with ``stop=["<label>"]`` (the stop string kept in
  the text), greedy unless ``generation_kwargs`` ask for sampling.
- Label distribution: one request per (context, label) whose prompt is context + ``name</label>``
  tokens (the ids :func:`genrel.score.lm.label_candidates` builds, so both backends score the same
  tokens), ``max_tokens=1`` and ``prompt_logprobs=1``; vLLM always includes the actual prompt token in
  each position's log-prob dict, and the candidate's positions are summed. Contexts repeat across a
  pair's labels, which vLLM's prefix cache serves.

vLLM is imported only when a scorer is built; without it :class:`MissingExtraError` names the
``gpu`` extra. This module is not exercised by the CPU test suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from genrel.criteria import Criteria
from genrel.errors import MissingExtraError
from genrel.grammar import LABEL_OPEN
from genrel.score.lm import LMScorer

# transformers-style generation options → vLLM SamplingParams fields
_SAMPLING_KEYS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "seed": "seed",
                  "repetition_penalty": "repetition_penalty", "min_p": "min_p"}


def import_vllm():
    try:
        import vllm
    except ImportError:
        raise MissingExtraError("vllm", "gpu") from None
    return vllm


class VLLMScorer(LMScorer):
    """An :class:`LMScorer` whose model runs on vLLM (``backend="vllm"``)."""

    def __init__(self, llm: Any, tokenizer: Any, criteria: Criteria, **kwargs: Any):
        super().__init__(None, tokenizer, criteria, **kwargs)
        self.llm = llm

    @classmethod
    def from_pretrained(
        cls, model: str, criteria: Criteria, *, dtype: str = "auto", llm_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> VLLMScorer:
        """Load ``model`` (an HF id or folder, a genrel model directory) into ``vllm.LLM``; the tokenizer
        comes from the model layer, as for the transformers backend, so both tokenize alike."""
        from genrel.models.load import load_tokenizer

        vllm = import_vllm()
        llm = vllm.LLM(model=str(model), dtype=dtype, **{"enable_prefix_caching": True, **(llm_kwargs or {})})
        return cls(llm, load_tokenizer(str(model)), criteria, **kwargs)

    def _generate(self, texts: Sequence[str], stop_at_label: bool, max_new_tokens: int) -> list[tuple[str, int]]:
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=max_new_tokens,
            stop=[LABEL_OPEN] if stop_at_label else None,
            include_stop_str_in_output=True,
            skip_special_tokens=True,
            **sampling_options(self.generation_kwargs),
        )
        ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        outputs = self.llm.generate(self._prompts(ids), params, use_tqdm=False)
        return [(out.outputs[0].text, len(out.outputs[0].token_ids)) for out in outputs]

    def _candidate_log_scores(self, ctx_ids: list[list[int]], candidates: list[list[list[int]]]) -> np.ndarray:
        from vllm import SamplingParams

        sequences = [(ctx, cand) for ctx, row in zip(ctx_ids, candidates) for cand in row]
        params = SamplingParams(max_tokens=1, prompt_logprobs=1, temperature=0.0)
        outputs = self.llm.generate(self._prompts([ctx + cand for ctx, cand in sequences]), params, use_tqdm=False)
        scores = [
            sum(out.prompt_logprobs[len(ctx) + k][token].logprob for k, token in enumerate(cand))
            for out, (ctx, cand) in zip(outputs, sequences)
        ]
        return np.asarray(scores, dtype=np.float64).reshape(len(ctx_ids), len(candidates[0]))

    @staticmethod
    def _prompts(token_ids: list[list[int]]):
        from vllm.inputs import TokensPrompt

        return [TokensPrompt(prompt_token_ids=list(ids)) for ids in token_ids]


def sampling_options(generation_kwargs: dict[str, Any]) -> dict[str, Any]:
    """SamplingParams fields for transformers-style options: ``do_sample=False`` (the default) is
    greedy (temperature 0); known sampling knobs are renamed; ``max_new_tokens`` is ours to set."""
    options = {_SAMPLING_KEYS[k]: v for k, v in generation_kwargs.items() if k in _SAMPLING_KEYS}
    if not generation_kwargs.get("do_sample", False):
        options["temperature"] = 0.0
    return options
