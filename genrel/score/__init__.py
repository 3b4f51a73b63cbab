"""Scoring: every model and baseline turns pairs into a label distribution, a label and a ranking
score (the expected gain) behind one interface, :class:`Scorer`.

- :mod:`~genrel.score.base`: ``Scorer``, ``Scored``, expected gain, label distribution.
- :mod:`~genrel.score.lm`: generative models (reasoning / label-first), transformers backend;
  :mod:`~genrel.score.vllm_backend` runs the same on vLLM.
- :mod:`~genrel.score.cross_encoder`: BERT-class cross-encoders (trained by :mod:`genrel.distill.cross_encoder_train`);
  :mod:`~genrel.score.onnx_export` and :mod:`~genrel.score.onnx_backend` export and serve them on ONNX.
- :mod:`~genrel.score.bm25`: the BM25 baseline. :mod:`~genrel.score.calibration`: temperature.
- :mod:`~genrel.score.load`: ``load_scorer(name)`` for all of the above; :mod:`~genrel.models.model_dir`:
  the ``genrel_model.json`` convention (``docs/models.md``).

Importing this package loads no torch; each backend imports its libraries when it is used.
"""

from genrel.score.base import Scored, Scorer, argmax_label, expected_gain, label_distribution
from genrel.score.load import load_scorer

__all__ = ["Scored", "Scorer", "argmax_label", "expected_gain", "label_distribution", "load_scorer"]
