"""What the dialects share: documents given as strings or objects → native documents; one ranked call."""

from __future__ import annotations

from fastapi import Request

from genrel.score.base import ranking, relevance_score
from genrel.serve.api_error import ApiError
from genrel.serve.schema import DocumentIn, ScoredDocument, ScoreRequest

FieldValue = str | int | float | bool
DocumentItem = str | dict[str, FieldValue]


def native_document(index: int, item: DocumentItem, rank_fields: list[str] | None = None) -> DocumentIn:
    """A string is the text; an object gives ``text`` (or its first ``rank_fields`` key), an optional
    ``title`` and any other keys as fields. ``rank_fields`` keeps only the keys it names."""
    if isinstance(item, str):
        return DocumentIn(id=str(index), text=item)
    keys = list(rank_fields) if rank_fields else list(item)
    missing = [k for k in keys if k not in item] if rank_fields else []
    if missing:
        raise _invalid(f"body.documents.{index}", f"rank field '{missing[0]}' is missing from the document")
    text_key = "text" if "text" in keys else next((k for k in keys if k != "title"), None)
    if text_key is None or not isinstance(item.get(text_key), str):
        raise _invalid(f"body.documents.{index}", "a document object needs a 'text' string")
    title = item.get("title") if "title" in keys and text_key != "title" else None
    fields = {k: item[k] for k in keys if k not in (text_key, "title")}
    return DocumentIn(id=str(index), text=item[text_key], title=None if title is None else str(title), fields=fields)


async def judged(request: Request, query: str, documents: list[DocumentIn]) -> list[ScoredDocument]:
    """Every document judged through the app's one scoring path (limits, batching, timeouts)."""
    return await request.app.state.scored(ScoreRequest(query=query, documents=documents))


def ranked(results: list[ScoredDocument], top_n: int | None) -> list[int]:
    """Indices best first, cut to ``top_n``: the order of the native ``/v1/rank``."""
    return ranking([r.score for r in results])[:top_n]


def relevance(request: Request, result: ScoredDocument) -> float:
    return relevance_score(request.app.state.criteria, result.score)


def genrel_extras(result: ScoredDocument) -> dict:
    """genrel's own judgement, added to a dialect's result as extra keys."""
    return {"label": result.label, "probabilities": result.probabilities}


def _invalid(loc: str, msg: str) -> ApiError:
    return ApiError(422, "invalid_request", f"{loc}: {msg}", errors=[{"loc": loc, "msg": msg, "type": "value_error"}])
