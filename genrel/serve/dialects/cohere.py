"""Cohere's rerank API, v1 (``/v1/rerank``, also Jina's and vLLM's shape) and v2 (``/v2/rerank``).

Request: ``query``, ``documents`` (strings or objects with ``text``), optional ``top_n``, ``model``
(accepted, not checked), ``return_documents``, ``rank_fields`` (v1); other Cohere options
(``max_chunks_per_doc``, ``max_tokens_per_doc``…) are accepted and ignored. Answer:
``{id, model, results: [{index, relevance_score, document?, label, probabilities}], meta}``, best first.
``document`` comes back by default on v1 (Jina and vLLM clients read it) and only when
``return_documents`` is true on v2. Errors: ``{"message": …}``, as Cohere answers them.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from genrel.serve.dialects.common import DocumentItem, genrel_extras, judged, native_document, ranked, relevance

router = APIRouter(tags=["rerank dialects"])


class CohereRerankRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    query: str
    documents: list[DocumentItem] = Field(description="Strings, or objects with a 'text' key (and title, fields).")
    top_n: int | None = Field(None, ge=1, description="Return the best n; default: all.")
    model: str | None = Field(None, description="Accepted for compatibility; the served model answers.")
    return_documents: bool | None = None
    rank_fields: list[str] | None = Field(None, description="Keys of document objects to judge, in order.")


async def _rerank(request: Request, body: CohereRerankRequest, version: str, documents_by_default: bool) -> dict:
    docs = [native_document(i, d, body.rank_fields) for i, d in enumerate(body.documents)]
    results = await judged(request, body.query, docs)
    give_documents = documents_by_default if body.return_documents is None else body.return_documents
    out = []
    for i in ranked(results, body.top_n):
        item = {"index": i, "relevance_score": relevance(request, results[i])}
        if give_documents:
            given = body.documents[i]
            item["document"] = {"text": given} if isinstance(given, str) else given
        out.append({**item, **genrel_extras(results[i])})
    return {
        "id": str(uuid.uuid4()),
        "model": request.app.state.model_name,
        "results": out,
        "meta": {"api_version": {"version": version}},
    }


@router.post("/v1/rerank")
async def rerank_v1(request: Request, body: CohereRerankRequest) -> dict:
    """Cohere rerank v1 (and Jina / vLLM ``/v1/rerank``): documents best first, cut to ``top_n``."""
    return await _rerank(request, body, "1", documents_by_default=True)


@router.post("/v2/rerank")
async def rerank_v2(request: Request, body: CohereRerankRequest) -> dict:
    """Cohere rerank v2: documents best first, cut to ``top_n``."""
    return await _rerank(request, body, "2", documents_by_default=False)


def cohere_error(status: int, error: dict) -> tuple[int, dict]:
    return status, {"message": error.get("message", "")}


ERROR_SHAPES = {"/v1/rerank": cohere_error, "/v2/rerank": cohere_error}
