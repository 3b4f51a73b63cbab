"""Model loading: any Hugging Face causal LM, the embedded SmolLM2-135M, and tiny random test models.

Importing this package imports no torch; :func:`load_model` does, when called.
"""

from genrel.models.embedded import EMBEDDED_MODEL, cache_root, embedded_model_dir
from genrel.models.load import bf16_available, load_model, load_tokenizer, model_path, resolve_dtype

__all__ = [
    "EMBEDDED_MODEL",
    "bf16_available",
    "cache_root",
    "embedded_model_dir",
    "load_model",
    "load_tokenizer",
    "model_path",
    "resolve_dtype",
]
