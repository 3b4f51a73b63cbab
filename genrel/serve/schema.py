"""The HTTP API's request, response and error bodies (pydantic), with the examples shown in OpenAPI."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, field_validator

from genrel.data.pair import Pair

_SCORE_EXAMPLE = {
    "query": "how long do fleas live",
    "documents": [
        {"id": "d1", "text": "Adult fleas live from 20 days to a year, depending on the host."},
        {"id": "d2", "title": "Flea collars", "text": "Our collars come in five colours.", "fields": {"brand": "Acme"}},
    ],
    "explain": False,
}


class DocumentIn(BaseModel):
    """One document to judge against the query. ``id`` is yours; it comes back with the result."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=512, description="Your id for the document; unique within a request.")
    text: str = Field(description="The document body.")
    title: str | None = Field(None, description="Optional title, shown to the model before the text.")
    fields: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Extra fields (brand, price…); numbers and booleans are sent as text."
    )

    def chars(self) -> int:
        """Characters counted against ``max_chars_per_document``: text, title, field names and values."""
        return len(self.text) + len(self.title or "") + sum(len(k) + len(str(v)) for k, v in self.fields.items())

    def to_pair(self, query: str) -> Pair:
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in self.fields.items()}
        return Pair(row_id=self.id, docid=self.id, query=query, text=self.text, title=self.title, fields=fields)


class ScoreRequest(BaseModel):
    """A query and the documents to judge against it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_SCORE_EXAMPLE]})

    query: str = Field(description="The search query.")
    documents: list[DocumentIn] = Field(
        description="Documents to judge; at most max_documents_per_request. A plain string is a document "
        "whose text it is and whose id is its position ('0', '1'…)."
    )
    explain: bool = Field(False, description="Also return the model's reasoning and step verdicts (slower).")

    @field_validator("documents", mode="before")
    @classmethod
    def _strings_are_documents(cls, value):
        if isinstance(value, list):
            return [{"id": str(i), "text": d} if isinstance(d, str) else d for i, d in enumerate(value)]
        return value


class RankRequest(ScoreRequest):
    """As ``ScoreRequest``; results come back best first, cut to ``top_k``."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{**_SCORE_EXAMPLE, "top_k": 1}]}
    )

    top_k: int | None = Field(None, ge=1, description="Return only the best k documents; default: all.")


class Explanation(BaseModel):
    reasoning: str | None = Field(None, description="The model's reasoning text, when it writes one.")
    verdicts: dict[str, str] = Field(default_factory=dict, description="Step id → verdict, from the reasoning.")
    format_error: str | None = Field(None, description="Why the reasoning could not be parsed; the score still holds.")


class ScoredDocument(BaseModel):
    id: str
    label: str = Field(description="Most probable label of the criteria.")
    score: float = Field(description="Ranking score: expected gain under the label distribution.")
    probabilities: dict[str, float] = Field(description="Label name → probability; sums to 1.")
    explanation: Explanation | None = Field(None, description="Only when the request asked for explain.")


class RankedDocument(ScoredDocument):
    rank: int = Field(description="1 = best. Ties keep the request's order.")


_RESULT_EXAMPLE = {
    "id": "d1",
    "label": "highly",
    "score": 2.1,
    "probabilities": {"irrelevant": 0.05, "related": 0.1, "highly": 0.55, "perfect": 0.3},
}


class ScoreResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"results": [_RESULT_EXAMPLE], "model": "ce-minilm", "latency_ms": 12.3}]}
    )

    results: list[ScoredDocument] = Field(description="One per document, in the request's order.")
    model: str
    latency_ms: float = Field(description="Server-side time from receiving the request to answering it.")


class RankResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"results": [{**_RESULT_EXAMPLE, "rank": 1}], "model": "ce-minilm", "latency_ms": 12.3}]
        }
    )

    results: list[RankedDocument] = Field(description="Best first (score descending, stable), at most top_k.")
    model: str
    latency_ms: float


class LabelInfo(BaseModel):
    name: str
    gain: float


class ModelInfoResponse(BaseModel):
    model: str
    backend: str
    criteria: str
    labels: list[LabelInfo] = Field(description="Worst to best, with the gain used for the score.")
    limits: dict[str, int]


class FieldError(BaseModel):
    loc: str = Field(description="Dotted path of the field, e.g. body.documents.0.text.")
    msg: str
    type: str


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. too_many_documents, invalid_request.")
    message: str = Field(description="What went wrong, in words.")
    limit: str | None = Field(None, description="The limit's name in ServeConfig, for 413.")
    limit_value: int | None = None
    value: int | None = Field(None, description="What the request had, for 413.")
    document_id: str | None = None
    errors: list[FieldError] | None = Field(None, description="Every invalid field, for 422.")


class ErrorResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "too_many_documents",
                        "message": "150 documents in one request; the limit max_documents_per_request is 100",
                        "limit": "max_documents_per_request",
                        "limit_value": 100,
                        "value": 150,
                    }
                }
            ]
        }
    )

    error: ErrorBody
