"""The HTTP scorer: ``create_app(scorer, cfg)`` builds the FastAPI app around one loaded scorer.

Native routes: ``POST /v1/judge``, ``POST /v1/rank``, ``GET /v1/info``, ``GET /healthz``, ``GET /readyz``,
``GET /metrics``; ``/openapi.json`` and ``/docs`` come from FastAPI. Every native error answer has the body
``{"error": {"code", "message", ...}}``. The rerank dialects other clients speak (Cohere, Jina, TEI, vLLM)
are registered from :mod:`genrel.serve.dialects` and go through the same scoring path. The app does not
load models (``genrel.serve.loading`` does) and does not run a server (``genrel.serve.server`` does).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from genrel.score.base import Scored, Scorer, ranking
from genrel.serve.api_error import ApiError
from genrel.serve.batcher import MicroBatcher, QueueFull, ScoringError
from genrel.serve.config import ServeConfig
from genrel.serve.dialects import register_dialects
from genrel.serve.drain import CloseWhileDraining, Drain
from genrel.serve.guard import RequestGuard, error_content
from genrel.serve.metrics import CONTENT_TYPE, ServeMetrics
from genrel.serve.schema import (
    ErrorResponse,
    Explanation,
    LabelInfo,
    ModelInfoResponse,
    RankedDocument,
    RankRequest,
    RankResponse,
    ScoredDocument,
    ScoreRequest,
    ScoreResponse,
)

log = logging.getLogger(__name__)

_ERRORS = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        401: "Auth is on and the bearer token is missing or wrong.",
        415: "The body is not sent as JSON (Content-Type must be application/json).",
        413: "Too many documents, a document or query too long, or a body over max_body_bytes.",
        422: "Malformed JSON, a missing field or a wrong type; `errors` lists every field path.",
        500: "The scorer failed on this request (the server keeps running).",
        503: "Not ready, shutting down, or the queue is full (retry later).",
        504: "Scoring took longer than request_timeout_s.",
    }.items()
}

API_DESCRIPTION = """Graded relevance labels, calibrated label probabilities and a ranking score (expected gain)
for query–document pairs. Pairs from concurrent requests are micro-batched. See docs/serving.md."""


def model_name_of(scorer: Scorer, cfg: ServeConfig) -> str:
    if cfg.model_name:
        return cfg.model_name
    if getattr(scorer, "name", "scorer") != "scorer":
        return scorer.name
    return Path(cfg.model).name or "scorer"


def create_app(scorer: Scorer, cfg: ServeConfig) -> FastAPI:
    """The app for one loaded scorer; its batcher starts and stops with the app's lifespan."""
    model = model_name_of(scorer, cfg)
    batcher = MicroBatcher(
        scorer,
        max_batch_size=cfg.max_batch_size,
        max_wait_s=cfg.max_batch_wait_ms / 1000.0,
        max_queue_pairs=cfg.max_queue_pairs,
        max_queue_wait_s=cfg.max_queue_wait_s,
    )
    drain = Drain()  # flipped by genrel.serve.drain.DrainingServer on SIGTERM
    metrics = ServeMetrics(model, cfg.backend, lambda: batcher.queue_depth)
    batcher.observer = metrics

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await batcher.start()
        log.info("scorer %s ready (batches of up to %d pairs)", model, cfg.max_batch_size)
        yield
        # uvicorn has already let in-flight requests finish; score whatever is still queued, then stop.
        await batcher.stop(timeout_s=cfg.grace_s())

    app = FastAPI(
        title="genrel relevance scorer", version="1", description=API_DESCRIPTION, lifespan=lifespan
    )
    app.state.batcher, app.state.metrics, app.state.config, app.state.drain = batcher, metrics, cfg, drain
    app.add_middleware(RequestGuard, token=cfg.token(), max_body_bytes=cfg.max_body_bytes, metrics=metrics)
    app.add_middleware(CloseWhileDraining, drain=drain)
    _add_error_handlers(app)

    async def scored(req: ScoreRequest) -> list[ScoredDocument]:
        _check_limits(req, cfg)
        pairs = [doc.to_pair(req.query) for doc in req.documents]
        try:
            results = await asyncio.wait_for(batcher.score(pairs, explain=req.explain), cfg.request_timeout_s)
        except TimeoutError:
            metrics.rejected.labels(reason="timeout").inc()
            raise ApiError(
                504, "timeout", f"scoring took longer than request_timeout_s ({cfg.request_timeout_s:g} s)"
            ) from None
        except QueueFull as exc:
            metrics.rejected.labels(reason="queue_full").inc()
            retry = str(max(1, math.ceil(exc.retry_after_s)))
            raise ApiError(503, "queue_full", f"the server is busy: {exc}", headers={"Retry-After": retry}) from None
        except ScoringError as exc:
            if exc.kind == "shutdown":
                raise ApiError(503, "unavailable", str(exc), headers={"Retry-After": "1"}) from None
            raise ApiError(500, "scoring_failed", str(exc)) from None
        return [_document_result(doc.id, s, req.explain) for doc, s in zip(req.documents, results)]

    @app.post("/v1/judge", response_model=ScoreResponse, response_model_exclude_unset=True, responses=_ERRORS,
              tags=["scoring"])
    async def judge(req: ScoreRequest) -> ScoreResponse:
        """Judge every document against the query; results in the request's order."""
        started = time.perf_counter()
        results = await scored(req)
        return ScoreResponse(results=results, model=model, latency_ms=_ms_since(started))

    @app.post("/v1/rank", response_model=RankResponse, response_model_exclude_unset=True, responses=_ERRORS,
              tags=["scoring"])
    async def rank(req: RankRequest) -> RankResponse:
        """Judge every document, then order them by score, best first (ties keep the request's order)."""
        started = time.perf_counter()
        results = await scored(req)
        order = ranking([r.score for r in results])[: req.top_k]
        ranked = [
            RankedDocument(**results[i].model_dump(exclude_unset=True), rank=r) for r, i in enumerate(order, start=1)
        ]
        return RankResponse(results=ranked, model=model, latency_ms=_ms_since(started))

    @app.get("/v1/info", response_model=ModelInfoResponse, tags=["model"])
    async def info() -> ModelInfoResponse:
        """The model, its label scale (worst to best, with gains) and the request limits."""
        crit = scorer.criteria
        limits = {
            "max_documents_per_request": cfg.max_documents_per_request,
            "max_chars_per_document": cfg.max_chars_per_document,
            "max_query_chars": cfg.max_query_chars,
            "max_body_bytes": cfg.max_body_bytes,
        }
        labels = [LabelInfo(name=lab.name, gain=lab.gain) for lab in crit.labels]
        return ModelInfoResponse(model=model, backend=cfg.backend, criteria=crit.name, labels=labels, limits=limits)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict:
        """The process is alive (always open, even with auth on)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"model": ErrorResponse}})
    async def readyz():
        """The model is loaded and the batcher is running; 503 otherwise (from SIGTERM on: draining)."""
        if drain.draining:
            return JSONResponse(error_content("not_ready", "the server is draining (shutting down)"), status_code=503)
        if batcher.running:
            return {"status": "ready", "model": model}
        return JSONResponse(error_content("not_ready", "the batcher is not running"), status_code=503)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def prometheus_metrics() -> Response:
        """Prometheus text format: requests, latency, pairs scored, batch sizes, queue depth, errors."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.state.scored, app.state.model_name = scored, model
    register_dialects(app, scorer.criteria)
    return app


def _check_limits(req: ScoreRequest, cfg: ServeConfig) -> None:
    n = len(req.documents)
    if n > cfg.max_documents_per_request:
        raise _limit("too_many_documents", f"{n} documents in one request", "max_documents_per_request",
                     cfg.max_documents_per_request, n)
    if len(req.query) > cfg.max_query_chars:
        raise _limit("query_too_long", f"query of {len(req.query)} characters", "max_query_chars",
                     cfg.max_query_chars, len(req.query))
    seen: set[str] = set()
    for i, doc in enumerate(req.documents):
        chars = doc.chars()
        if chars > cfg.max_chars_per_document:
            raise _limit("document_too_long", f"document '{doc.id}' has {chars} characters",
                         "max_chars_per_document", cfg.max_chars_per_document, chars, document_id=doc.id)
        if doc.id in seen:
            raise ApiError(422, "invalid_request", f"body.documents.{i}.id: duplicate id '{doc.id}'",
                           errors=[{"loc": f"body.documents.{i}.id", "msg": "duplicate id", "type": "duplicate"}])
        seen.add(doc.id)


def _limit(code: str, what: str, limit: str, limit_value: int, value: int, **extra) -> ApiError:
    return ApiError(413, code, f"{what}; the limit {limit} is {limit_value}",
                    limit=limit, limit_value=limit_value, value=value, **extra)


def _document_result(doc_id: str, s: Scored, explain: bool) -> ScoredDocument:
    result = ScoredDocument(
        id=doc_id,
        label=s.label,
        score=float(s.score),
        probabilities={k: float(v) for k, v in s.probabilities.items()},
    )
    if explain:  # set only when asked, so the field is absent otherwise (responses exclude unset fields)
        result.explanation = Explanation(
            reasoning=s.reasoning, verdicts=dict(s.verdicts or {}), format_error=s.format_error
        )
    return result


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_content(exc.code, exc.message, **exc.extra), status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(e) for e in exc.errors()]
        message = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
        if len(errors) > 5:
            message += f"; … and {len(errors) - 5} more"
        return JSONResponse(error_content("invalid_request", message, errors=errors), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_content(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))


def _field_error(err: dict) -> dict:
    msg = err.get("msg", "invalid")
    detail = (err.get("ctx") or {}).get("error")
    if err.get("type") == "json_invalid" and detail:
        msg = f"{msg} ({detail})"
    return {"loc": ".".join(str(x) for x in err.get("loc", ())), "msg": msg, "type": err.get("type", "invalid")}
