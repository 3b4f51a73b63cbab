"""genrel: generative relevance models for search, trained with GRPO and Stepwise Advantage Masking."""

__version__ = "0.1.0"
