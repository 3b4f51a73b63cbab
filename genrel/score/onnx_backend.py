"""Score with an exported cross-encoder on onnxruntime (CPU by default): the ``onnx`` backend.

The directory is a genrel model directory holding ``model.onnx`` (see :mod:`genrel.score.onnx_export`);
tokenisation, batching and the label distribution are shared with the torch scorer
(:class:`genrel.score.cross_encoder.EncoderScorer`), so both give the same outputs to 1e-4.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from genrel.errors import MissingExtraError, ModelError
from genrel.score.cross_encoder import EncoderScorer, quiet_transformers
from genrel.models.model_dir import ONNX_FILE, require_model_info


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def onnx_session(path: str | Path, *, threads: int | None = None, providers: list[str] | None = None):
    """An onnxruntime session with intra-op threads = ``threads`` (default: the usable cores).

    The CPU memory arena and memory patterns are off: batches here change shape on every call
    (batch size × padded length), and onnxruntime's arena grows to each new peak in doubling chunks
    and never gives memory back (a served MiniLM went 609 → 830 MB RSS in 90 s with 617 MB mapped),
    while a memory pattern is planned per input shape. Without them each tensor is a plain malloc,
    which the server's pinned mmap threshold returns to the OS (``genrel.serve.memory``).
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingExtraError("onnxruntime", "onnx") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cpu_cores()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])


class OnnxCrossEncoderScorer(EncoderScorer):
    """A cross-encoder on onnxruntime."""

    name = "cross-encoder-onnx"

    def __init__(
        self, session: Any, tokenizer: Any, criteria, *, max_length: int, temperature: float = 1.0, **kwargs: Any
    ):
        super().__init__(tokenizer, criteria, max_length=max_length, temperature=temperature, **kwargs)
        self.session = session
        self._inputs = [i.name for i in session.get_inputs()]

    @classmethod
    def from_dir(
        cls, model_dir: str | Path, *, onnx_file: str = ONNX_FILE, threads: int | None = None, **kwargs: Any
    ) -> OnnxCrossEncoderScorer:
        from transformers import AutoTokenizer

        info = require_model_info(model_dir, "cross-encoder")
        path = Path(model_dir) / onnx_file
        if not path.is_file():
            hint = f"genrel export onnx {model_dir} --out DIR"
            raise ModelError(f"no {onnx_file} here", where=str(model_dir), hint=hint)
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
        return cls(
            onnx_session(path, threads=threads), tokenizer, info.criteria_model(),
            max_length=info.max_length, temperature=info.temperature, **kwargs,
        )

    def _forward(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(["logits"], {k: batch[k] for k in self._inputs})[0]
