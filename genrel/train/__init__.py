"""Training stages: teacher traces, warm-up SFT, and GRPO + SAM (``rl``). Only this layer knows TRL.

Submodules import torch/transformers/TRL lazily where they can, so loading a stage config stays fast.
"""
