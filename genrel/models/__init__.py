"""Model loading: any Hugging Face causal LM, the embedded SmolLM2-135M, and tiny random test models."""
