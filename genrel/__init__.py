"""genrel: generative relevance models for search, trained with GRPO and Stepwise Advantage Masking.

``from genrel import Reranker`` is the one-line Python API (docs/python-api.md); it is imported only
when asked for, so ``import genrel`` (criteria, grammar) stays free of torch and transformers.
"""

__version__ = "0.1.0"
__all__ = ["Reranker", "__version__"]


def __getattr__(name: str):
    if name == "Reranker":
        from genrel.score.reranker import Reranker

        return Reranker
    raise AttributeError(f"module 'genrel' has no attribute '{name}'")
