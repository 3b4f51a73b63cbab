"""Scorers for the sentence-transformers students: a ``CrossEncoder`` reranker and a
``SentenceTransformer`` bi-encoder, each with a calibrated :class:`~genrel.score.label_head.LabelHead`.

Both rank by one number and get their label distribution from the head:

- ``st-cross-encoder``: score = ``CrossEncoder.predict`` (the sigmoid of the one-logit head), the
  number ``CrossEncoder.rank`` sorts by, so ``sentence_transformers.CrossEncoder(path).rank(...)`` and
  genrel's scorer order a query's documents alike;
- ``bi-encoder``: score = cosine of the query's and the document's embeddings (``encode`` with
  normalised embeddings, so the dot product), which lets documents be embedded ahead of time for
  first-stage retrieval (:meth:`BiEncoderScorer.embed_documents`).

A model directory is what sentence-transformers saves (``CrossEncoder(path)`` / ``SentenceTransformer(path)``
load it as is) plus ``genrel_model.json`` (kind, criteria, max_length, and the head under ``head``).
Optionally (``fusion.bm25_weight`` β in ``genrel_model.json``, fitted on held-out training queries by
:func:`genrel.distill.st_train.fit_bm25_fusion`) the ranking score is (1 − β) · own score + β · BM25
share, BM25 over the call's candidates per query: a lexical signal for text the encoder reads badly.
Training lives in :mod:`genrel.distill.st_train`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genrel.criteria import Criteria
from genrel.data.pair import Pair
from genrel.errors import MissingExtraError, ModelError
from genrel.score.base import Scored, Scorer, document_text, scored_from_log_scores
from genrel.score.label_head import LabelHead
from genrel.models.model_dir import read_model_info, write_model_info

log = logging.getLogger(__name__)

CROSS_KIND, BI_KIND = "st-cross-encoder", "bi-encoder"


def _require_st():
    try:
        import sentence_transformers
    except ImportError:
        raise MissingExtraError("sentence-transformers", "train") from None
    return sentence_transformers


def save_student(model: Any, out_dir: str | Path, *, kind: str, criteria: Criteria, head: LabelHead,
                 max_length: int, created_by: str, **extra: Any) -> Path:
    """``model.save`` (sentence-transformers' own layout) and ``genrel_model.json`` beside it."""
    out_dir = Path(out_dir)
    model.save(str(out_dir))
    write_model_info(out_dir, kind=kind, criteria=criteria, created_by=created_by, max_length=max_length,
                     head=head.to_dict(), **extra)
    return out_dir


class _HeadScorer(Scorer):
    """What both students share: the head turns the ranking score into a calibrated label distribution."""

    def __init__(self, model: Any, criteria: Criteria, head: LabelHead, *, batch_size: int = 32,
                 progress: bool = False, bm25_weight: float = 0.0):
        self.model, self.criteria, self.head = model, criteria, head
        self.batch_size, self.progress, self.bm25_weight = batch_size, progress, bm25_weight
        self.listwise = bm25_weight > 0  # BM25's IDF comes from the call's candidates

    def raw_scores(self, pairs: Sequence[Pair]) -> np.ndarray:
        """[N] the student's own score (cosine, or the cross-encoder's)."""
        raise NotImplementedError

    def ranking_scores(self, pairs: Sequence[Pair]) -> np.ndarray:
        """[N] the score it ranks by: its own, or with a BM25 fusion weight β,
        (1 − β) · own + β · x, x = BM25 / the query's best BM25 (:func:`fuse`)."""
        own = self.raw_scores(pairs)
        return fuse(own, bm25_share(pairs, self.criteria), self.bm25_weight) if self.bm25_weight > 0 else own

    def score_pairs(self, pairs: Sequence[Pair], *, explain: bool = False) -> list[Scored]:
        if not pairs:
            return []
        raw = self.ranking_scores(pairs)  # [N]
        out = []
        for value, row in zip(raw, self.head.log_scores(raw)):
            scored = scored_from_log_scores(self.criteria, row, self.temperature)
            scored.score = float(value)  # rank by the student's own score, not the head's expected gain
            out.append(scored)
        return out

    @classmethod
    def from_dir(cls, model_dir: str | Path, *, device: str | None = None, **kwargs: Any) -> _HeadScorer:
        info = read_model_info(model_dir)
        if info is None or info.kind != cls.kind:
            raise ModelError(f"not a genrel {cls.kind} directory", where=str(model_dir))
        head = getattr(info, "head", None)
        if not isinstance(head, dict):
            raise ModelError("genrel_model.json has no 'head'", where=str(model_dir))
        model = cls.load_model(str(model_dir), device=device, max_length=info.max_length)
        fusion = getattr(info, "fusion", None) or {}
        return cls(model, info.criteria_model(), LabelHead.from_dict(head), bm25_weight=fusion.get("bm25_weight", 0.0),
                   **kwargs)


class STCrossEncoderScorer(_HeadScorer):
    """A ``sentence_transformers.CrossEncoder`` (one output) with a label head."""

    name = kind = CROSS_KIND

    @staticmethod
    def load_model(path: str, *, device: str | None = None, max_length: int | None = None):
        st = _require_st()
        return st.CrossEncoder(path, device=device or _device(), max_length=max_length)

    def raw_scores(self, pairs: Sequence[Pair]) -> np.ndarray:
        texts = [(p.query, document_text(p)) for p in pairs]
        scores = self.model.predict(texts, batch_size=self.batch_size, show_progress_bar=self.progress,
                                    convert_to_numpy=True)
        return np.asarray(scores, dtype=np.float64).reshape(-1)


class BiEncoderScorer(_HeadScorer):
    """A ``sentence_transformers.SentenceTransformer`` scored by cosine, with a label head."""

    name = kind = BI_KIND

    @staticmethod
    def load_model(path: str, *, device: str | None = None, max_length: int | None = None):
        st = _require_st()
        model = st.SentenceTransformer(path, device=device or _device())
        if max_length:
            model.max_seq_length = max_length
        return model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """[N, D] unit-length embeddings."""
        return self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=self.progress).astype(np.float64)

    def embed_documents(self, pairs: Sequence[Pair]) -> np.ndarray:
        """[N, D] document embeddings, to store ahead of time for retrieval."""
        return self.embed([document_text(p) for p in pairs])

    def raw_scores(self, pairs: Sequence[Pair]) -> np.ndarray:
        queries = sorted({p.query for p in pairs})
        q_emb = dict(zip(queries, self.embed(queries)))
        d_emb = self.embed_documents(pairs)  # [N, D]
        return np.einsum("nd,nd->n", np.stack([q_emb[p.query] for p in pairs]), d_emb)


def bm25_share(pairs: Sequence[Pair], criteria: Criteria) -> np.ndarray:
    """[N] BM25 / the query's best BM25 over each query's candidates in ``pairs`` (0 when none matches)."""
    from genrel.score.bm25 import BM25Scorer

    return BM25Scorer(criteria).bm25(pairs)[1]


def fuse(own: np.ndarray, bm25: np.ndarray, weight: float) -> np.ndarray:
    """(1 − weight) · own + weight · bm25: a linear fusion of the student's score with BM25's share."""
    return (1.0 - weight) * np.asarray(own, dtype=np.float64) + weight * np.asarray(bm25, dtype=np.float64)


def untrained_bi_encoder(base: str, criteria: Criteria, head: LabelHead | None = None,
                         **kwargs: Any) -> BiEncoderScorer:
    """The base embedder as a scorer (a flat head unless one is given): the baseline a student must beat."""
    from genrel.score.cross_encoder import base_path

    model = BiEncoderScorer.load_model(base_path(base))
    n = len(criteria.labels)
    return BiEncoderScorer(model, criteria, head or LabelHead(np.zeros(n), np.zeros(n), 0.0, 1.0), **kwargs)


def _device() -> str:
    from genrel.models.device import resolve_device

    return resolve_device(None)
