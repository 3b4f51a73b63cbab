"""``Reranker``: the one-line Python API, in the style of sentence-transformers' ``CrossEncoder``.

    from genrel import Reranker
    reranker = Reranker("runs/student")
    reranker.rank("how long do fleas live", docs, top_k=5)

It wraps :func:`genrel.score.load.load_scorer` (so every model form and backend works: genrel model
directories of GRMs and students, zero-shot LMs, ``bm25``; ``hf``, ``onnx``, ``vllm``) and turns plain
strings into :class:`~genrel.data.pair.Pair` objects. It adds no scoring of its own: ``score`` is the
scorer's expected gain, ``relevance_score`` the same mapped onto [0, 1], the order that of every ranking
route (:func:`genrel.score.base.ranking`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genrel.criteria import Criteria
from genrel.data.pair import Pair
from genrel.errors import DataError
from genrel.score.base import Scored, Scorer, ranking, relevance_score

Document = str | dict[str, Any] | Pair


class Reranker:
    """Judge and rank documents with any genrel model.

    ``model`` is a genrel model directory, an HF causal LM, ``zero-shot:<model>`` or ``bm25``
    (docs/models.md); ``criteria`` is needed by models that do not bring their own; ``options`` go to
    the scorer (``batch_size``, ``max_new_tokens``, ``onnx_file``…)."""

    def __init__(
        self,
        model: str,
        *,
        backend: str = "hf",
        criteria: Criteria | str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        progress: bool = False,
        **options: Any,
    ):
        from genrel.score.load import load_scorer

        if device is not None:
            options["device"] = device
        self.scorer: Scorer = load_scorer(str(model), backend=backend, criteria=criteria, dtype=dtype, **options)
        if hasattr(self.scorer, "progress"):
            self.scorer.progress = progress

    @property
    def criteria(self) -> Criteria:
        return self.scorer.criteria

    def rank(
        self, query: str, documents: Sequence[Document], top_k: int | None = None, *, return_documents: bool = False
    ) -> list[dict[str, Any]]:
        """Documents best first: ``{corpus_id, score, relevance_score, label, probs}`` each (``text``
        too with ``return_documents``); ``corpus_id`` is the document's position in ``documents``."""
        pairs = [self._pair(query, d, i) for i, d in enumerate(documents)]
        results = self.scorer.score_pairs(pairs)
        out = []
        for i in ranking([r.score for r in results])[:top_k]:
            item = {"corpus_id": i, **self._summary(results[i])}
            if return_documents:
                item["text"] = pairs[i].text
            out.append(item)
        return out

    def predict(self, pairs: Sequence[tuple[str, Document]] | tuple[str, Document]) -> list[float] | float:
        """The score (expected gain) of each (query, document) pair; one pair gives one float."""
        single = isinstance(pairs, tuple) and len(pairs) == 2 and isinstance(pairs[0], str)
        items = [pairs] if single else list(pairs)
        results = self.scorer.score_pairs([self._pair(q, d, i) for i, (q, d) in enumerate(items)])
        scores = [float(r.score) for r in results]
        return scores[0] if single else scores

    def judge(self, query: str, document: Document, *, explain: bool = True) -> dict[str, Any]:
        """One pair in full: label, probabilities, score and, with ``explain``, the reasoning and the
        step verdicts (None / empty for models that write none, such as cross-encoders)."""
        result = self.scorer.score_pairs([self._pair(query, document, 0)], explain=explain)[0]
        judged = self._summary(result)
        if explain:
            judged.update(reasoning=result.reasoning, verdicts=dict(result.verdicts or {}),
                          format_error=result.format_error)
        return judged

    def _summary(self, result: Scored) -> dict[str, Any]:
        return {
            "score": float(result.score),
            "relevance_score": relevance_score(self.criteria, result.score),
            "label": result.label,
            "probs": {k: float(v) for k, v in result.probabilities.items()},
        }

    @staticmethod
    def _pair(query: str, document: Document, index: int) -> Pair:
        if isinstance(document, Pair):
            return document.model_copy(update={"query": query})
        if isinstance(document, str):
            return Pair(row_id=str(index), query=query, text=document)
        if isinstance(document, dict) and isinstance(document.get("text"), str):
            fields = {str(k): str(v) for k, v in (document.get("fields") or {}).items()}
            return Pair(row_id=str(document.get("id", index)), query=query, text=document["text"],
                        title=document.get("title"), fields=fields)
        raise DataError(f"document {index}: expected a string, a dict with a 'text' string, or a Pair",
                        where="Reranker")
