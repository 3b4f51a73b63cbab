"""ASGI middleware in front of the API: request metrics, bearer-token auth, and the body-size cap.

It runs before FastAPI reads or parses anything, so an unauthorised client gets 401 and an oversized
body gets 413 without the body being parsed. The rest of an oversized body is read and thrown away
(up to ``DISCARD_FACTOR`` × the cap) before the answer goes out: the connection closes after a 413,
and closing a socket with unread bytes in it resets the connection, so a client still sending would
get a reset instead of its 413. A body declared larger than that is refused unread.
"""

from __future__ import annotations

import hmac
import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genrel.serve.dialects import ERROR_SHAPES as DIALECT_ERROR_SHAPES
from genrel.serve.metrics import ServeMetrics

PROTECTED_PREFIXES = ("/v1/", "/v2/", "/rerank", "/metrics")
DISCARD_FACTOR = 4
KNOWN_ENDPOINTS = frozenset(
    {"/v1/judge", "/v1/rank", "/v1/info", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"}
    | set(DIALECT_ERROR_SHAPES)  # every dialect route has its error shape
)


def error_content(code: str, message: str, **extra) -> dict:
    """The one error body every non-2xx answer uses: ``{"error": {"code", "message", ...}}``."""
    return {"error": {"code": code, "message": message, **{k: v for k, v in extra.items() if v is not None}}}


class RequestGuard:
    def __init__(self, app: ASGIApp, *, token: str | None, max_body_bytes: int, metrics: ServeMetrics):
        self.app = app
        self.token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._guarded(scope, receive, send_noting_status)
        finally:
            path = scope["path"]
            endpoint = path if path in KNOWN_ENDPOINTS else "other"
            self.metrics.request_done(endpoint, status[0], time.perf_counter() - started)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is not None and scope["path"].startswith(PROTECTED_PREFIXES):
            problem = self._auth_problem(scope)
            if problem is not None:
                self.metrics.rejected.labels(reason="unauthorized").inc()
                await self._refuse_unauthorized(problem, scope, receive, send)
                return
        if scope["method"] in ("POST", "PUT", "PATCH"):
            media_type = _media_type(scope)
            if media_type and media_type != "application/json" and not media_type.endswith("+json"):
                self.metrics.rejected.labels(reason="not_json").inc()
                content = error_content(
                    "unsupported_media_type",
                    f"send the body as JSON with 'Content-Type: application/json' (got '{media_type}')",
                )
                await JSONResponse(content, status_code=415)(scope, receive, send)
                return
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                if declared <= DISCARD_FACTOR * self.max_body_bytes:
                    await self._discard_body(receive)
                await self._refuse_body(declared, scope, receive, send)
                return
            body, more = await self._read_body(receive)
            if body is None:  # client went away
                return
            if len(body) > self.max_body_bytes:
                if more:
                    await self._discard_body(receive)
                await self._refuse_body(len(body), scope, receive, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _auth_problem(self, scope: Scope) -> str | None:
        header = dict(scope["headers"]).get(b"authorization")
        if not header:
            return "missing"
        scheme, _, credentials = header.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(credentials.strip(), self.token):
            return "invalid"
        return None

    async def _refuse_unauthorized(self, problem: str, scope: Scope, receive: Receive, send: Send) -> None:
        if problem == "missing":
            message, challenge = "this endpoint needs 'Authorization: Bearer <token>'", 'Bearer realm="genrel"'
        else:
            message, challenge = "the bearer token is not valid", 'Bearer realm="genrel", error="invalid_token"'
        response = JSONResponse(
            error_content("unauthorized", message), status_code=401, headers={"WWW-Authenticate": challenge}
        )
        await response(scope, receive, send)

    async def _refuse_body(self, size: int, scope: Scope, receive: Receive, send: Send) -> None:
        self.metrics.rejected.labels(reason="body_too_large").inc()
        content = error_content(
            "body_too_large",
            f"request body of {size} bytes (or more); the limit max_body_bytes is {self.max_body_bytes}",
            limit="max_body_bytes", limit_value=self.max_body_bytes, value=size,
        )
        await JSONResponse(content, status_code=413, headers={"Connection": "close"})(scope, receive, send)

    async def _read_body(self, receive: Receive) -> tuple[bytes | None, bool]:
        """(the whole body, or as much as just passes the cap, which the caller refuses; whether more is
        coming); (None, False) on disconnect."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, False
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if size > self.max_body_bytes or not more:
                return b"".join(chunks), more

    async def _discard_body(self, receive: Receive) -> None:
        """Read and drop the rest of the body, up to DISCARD_FACTOR × the cap, so closing does not reset."""
        budget = DISCARD_FACTOR * self.max_body_bytes
        while budget > 0:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                return
            budget -= len(message.get("body", b""))


def _content_length(scope: Scope) -> int | None:
    raw = dict(scope["headers"]).get(b"content-length")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _media_type(scope: Scope) -> str:
    raw = dict(scope["headers"]).get(b"content-type", b"")
    return raw.decode("latin-1").split(";", 1)[0].strip().lower()


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the buffered body once, then defers to the server (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
