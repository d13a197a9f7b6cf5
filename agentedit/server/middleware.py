"""Small ASGI middlewares: request ids and the last-resort 500, a request-body size limit (413), per-route
Prometheus timing."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any, Awaitable, Callable, Mapping

from starlette.exceptions import HTTPException

from ..wire import error_body, json_text

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit:,} bytes; send less "
                              "(batch imports: split the batch, or raise the server's --max-batch-mb)")


class BodyLimit:
    """Refuse bodies over ``limit`` bytes (``limits`` overrides it per path) with 413, before or while reading."""

    def __init__(self, app: ASGIApp, *, limit: int, limits: Mapping[str, int] | None = None) -> None:
        self.app, self.limit, self.limits = app, limit, dict(limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope.get("path", ""), self.limit)
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_json(send, 413, error_body(413, BodyTooLarge(limit).detail))
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


async def send_json(send: Send, status: int, body: dict[str, Any], *, close: bool = True) -> None:
    """A whole JSON reply; ``close`` when the request body was not read (the connection cannot be reused)."""
    data = json_text(body).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": headers + ([(b"connection", b"close")] if close else [])})
    await send({"type": "http.response.body", "body": data})


_CLIENT_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


class RequestContext:
    """Give every request an id (the client's ``x-request-id`` when it is a plain token, else a new one), echoed in
    the ``x-request-id`` reply header and quoted by error messages and the log, and answer an unexpected exception
    with a 500 in the OpenAI shape. The exception is not raised on to the server, which would reset a keep-alive
    connection and so fail the client's next request too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope.get("headers", ()) if k == b"x-request-id"), b"")
        rid = given.decode("ascii") if _CLIENT_ID.fullmatch(given) else "req_" + uuid.uuid4().hex[:20]
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def tagged(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode("ascii"))]}
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        except Exception:
            logger.exception("request %s: %s %s failed unexpectedly", rid, scope.get("method"), scope.get("path"))
            if not started:
                await send_json(tagged, 500, error_body(500, f"internal error (request id {rid}); the server log has "
                                                             "the details"), close=False)


class RequestMetrics:
    """Count and time every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, *, observe: Callable[[str, str, int, float], None]) -> None:
        self.app, self.observe = app, observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.observe(scope.get("method", ""), route, status, time.perf_counter() - started)
