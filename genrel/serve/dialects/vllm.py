"""vLLM's score API, ``POST /v1/score`` (its ``/v1/rerank`` is Cohere v1's shape, see :mod:`.cohere`).

Request: ``text_1`` and ``text_2``, each a string or a list: one query against one or many documents,
or two lists of the same length scored pairwise; ``model`` and ``truncate_prompt_tokens`` are accepted
and ignored. Answer: ``{id, object: "list", created, model, data: [{index, object: "score", score,
label, probabilities}]}`` in the request's order, ``score`` being the [0, 1] relevance. Errors:
OpenAI's ``{"error": {message, type, param, code}}``, 400 for a bad request as vLLM answers.

genrel's own judging route, which used to be ``/v1/score``, is ``/v1/judge`` (CHANGELOG.md).
"""

from __future__ import annotations

import asyncio
import time
import uuid

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from genrel.serve.api_error import ApiError
from genrel.serve.dialects.common import genrel_extras, judged, native_document, relevance

router = APIRouter(tags=["rerank dialects"])


class VllmScoreRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text_1: str | list[str]
    text_2: str | list[str]
    model: str | None = None
    truncate_prompt_tokens: int | None = None


def _pairs(body: VllmScoreRequest) -> list[tuple[str, str]]:
    queries = [body.text_1] if isinstance(body.text_1, str) else body.text_1
    texts = [body.text_2] if isinstance(body.text_2, str) else body.text_2
    if len(queries) == 1:
        queries = queries * len(texts)
    if len(queries) != len(texts):
        msg = f"text_1 has {len(queries)} items and text_2 {len(texts)}; give one text_1 or as many as text_2"
        raise ApiError(422, "invalid_request", msg)
    return list(zip(queries, texts))


@router.post("/v1/score")
async def score_vllm(request: Request, body: VllmScoreRequest) -> dict:
    """vLLM score: one relevance per (text_1, text_2) pair, in the request's order."""
    pairs = _pairs(body)
    groups: dict[str, list[int]] = {}  # query → positions; one native call per query, run concurrently
    for i, (query, _) in enumerate(pairs):
        groups.setdefault(query, []).append(i)
    limit = request.app.state.config.max_documents_per_request
    if len(pairs) > limit:
        raise ApiError(413, "too_many_documents",
                       f"{len(pairs)} pairs in one request; the limit max_documents_per_request is {limit}")
    answers = await asyncio.gather(*(
        judged(request, query, [native_document(i, pairs[i][1]) for i in positions])
        for query, positions in groups.items()
    ))
    results = [None] * len(pairs)
    for positions, answer in zip(groups.values(), answers):
        for i, result in zip(positions, answer):
            results[i] = result
    data = [{"index": i, "object": "score", "score": relevance(request, r), **genrel_extras(r)}
            for i, r in enumerate(results)]
    return {"id": f"score-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()),
            "model": request.app.state.model_name, "data": data}


_ERROR_TYPES = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError", 413: "BadRequestError",
                415: "BadRequestError", 500: "InternalServerError", 503: "ServiceUnavailableError",
                504: "TimeoutError"}


def vllm_error(status: int, error: dict) -> tuple[int, dict]:
    status = 400 if status == 422 else status  # OpenAI-style servers answer a bad body with 400
    kind = _ERROR_TYPES.get(status, "BadRequestError")
    return status, {"error": {"message": error.get("message", ""), "type": kind, "param": None, "code": status}}


ERROR_SHAPES = {"/v1/score": vllm_error}
