"""Rewrite genrel's error body into a dialect's own, for the dialect's paths only.

Every error is first produced in genrel's shape ``{"error": {"code", "message", ...}}``: by the request
guard (401, 413, 415), by FastAPI validation (422) and by the routes (``ApiError``). This outermost ASGI
middleware holds back an error answer on a dialect path, turns its body into the dialect's shape with
the dialect's function ``shape(status, error) -> (status, body)``, and sends it with the same headers
(``WWW-Authenticate``, ``Retry-After``) and a corrected length. Success answers pass through untouched.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Shape = Callable[[int, dict], tuple[int, object]]


class DialectErrors:
    def __init__(self, app: ASGIApp, *, shapes: dict[str, Shape]):
        self.app = app
        self.shapes = shapes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        shape = self.shapes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if shape is None:
            await self.app(scope, receive, send)
            return
        held: dict[str, Message] = {}
        chunks: list[bytes] = []

        async def reshaping_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held["start"] = message
                return
            if "start" not in held:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await _send_reshaped(send, held["start"], b"".join(chunks), shape)

        await self.app(scope, receive, reshaping_send)


async def _send_reshaped(send: Send, start: Message, body: bytes, shape: Shape) -> None:
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    status = start["status"]
    if not isinstance(error, dict):
        error = {"code": "http_error", "message": body.decode("utf-8", "replace")}
    status, content = shape(status, error)
    payload = json.dumps(content, ensure_ascii=False).encode("utf-8")
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length", b"content-type")]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})
