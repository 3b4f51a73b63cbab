"""text-embeddings-inference's ``POST /rerank``.

Request: ``query``, ``texts``, optional ``raw_scores`` (genrel's expected gain instead of the [0, 1]
relevance), ``return_text``; ``truncate`` and ``truncation_direction`` are accepted and ignored (genrel
truncates to fit the model). Answer: the bare list ``[{index, score, text?, label, probabilities}]``,
best first. Errors: ``{"error": message, "error_type": …}`` as TEI answers them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from genrel.serve.dialects.common import genrel_extras, judged, native_document, ranked, relevance

router = APIRouter(tags=["rerank dialects"])


class TeiRerankRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    query: str
    texts: list[str]
    raw_scores: bool = Field(False, description="true: genrel's score (expected gain); false: relevance in [0, 1].")
    return_text: bool = False
    truncate: bool | None = None
    truncation_direction: str | None = None


@router.post("/rerank")
async def rerank_tei(request: Request, body: TeiRerankRequest) -> list[dict]:
    """TEI rerank: every text scored against the query, best first."""
    results = await judged(request, body.query, [native_document(i, t) for i, t in enumerate(body.texts)])
    out = []
    for i in ranked(results, None):
        score = results[i].score if body.raw_scores else relevance(request, results[i])
        item = {"index": i, "score": score}
        if body.return_text:
            item["text"] = body.texts[i]
        out.append({**item, **genrel_extras(results[i])})
    return out


_ERROR_TYPES = {401: "Unauthorized", 413: "Validation", 415: "Validation", 422: "Validation", 503: "Overloaded",
                504: "Backend", 500: "Backend"}


def tei_error(status: int, error: dict) -> tuple[int, dict]:
    return status, {"error": error.get("message", ""), "error_type": _ERROR_TYPES.get(status, "Validation")}


ERROR_SHAPES = {"/rerank": tei_error}
