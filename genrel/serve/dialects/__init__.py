"""The rerank APIs other clients already speak, served beside genrel's native routes.

- ``POST /v1/rerank``, ``POST /v2/rerank``: Cohere's rerank v1 and v2 (Jina's and vLLM's rerank copy
  v1's shape) — :mod:`.cohere`;
- ``POST /rerank``: text-embeddings-inference (TEI) — :mod:`.tei`;
- ``POST /v1/score``: vLLM's score API (``text_1``, ``text_2``) — :mod:`.vllm`.

Every dialect builds native :class:`~genrel.serve.schema.DocumentIn` documents and calls the app's one
scoring path (``app.state.scored``), so limits, micro-batching, timeouts, auth and metrics are the
native routes' own. ``relevance_score`` is :func:`genrel.score.base.relevance_score` (expected gain ÷
max gain, in [0, 1], same order as genrel's score); genrel's ``label`` and ``probabilities`` ride along
in each result. Errors are produced in genrel's shape and rewritten into each dialect's own at the edge
(:mod:`.errors`), so a client's SDK raises its usual exception types.
"""

from __future__ import annotations

from fastapi import FastAPI

from genrel.criteria import Criteria
from genrel.serve.dialects import cohere, tei, vllm
from genrel.serve.dialects.errors import DialectErrors

ERROR_SHAPES = {**cohere.ERROR_SHAPES, **tei.ERROR_SHAPES, **vllm.ERROR_SHAPES}


def register_dialects(app: FastAPI, criteria: Criteria) -> None:
    """Add every dialect's routes to ``app`` and the middleware that answers their errors in their shape."""
    app.state.criteria = criteria
    for module in (cohere, tei, vllm):
        app.include_router(module.router)
    app.add_middleware(DialectErrors, shapes=ERROR_SHAPES)
