"""``Server-Timing: app;dur=<ms>`` on the console's own replies (``/ui`` paths), from the request's arrival to the
start of its reply: what a browser's developer tools and ``evals/console_bench.py`` read as server time."""

from __future__ import annotations

import time

from ..middleware import ASGIApp, Message, Receive, Scope, Send


class ServerTiming:
    def __init__(self, app: ASGIApp, *, prefix: str = "/ui") -> None:
        self.app, self.prefix = app, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == self.prefix or path.startswith(self.prefix + "/")):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                dur = (time.perf_counter() - started) * 1000.0
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", f"app;dur={dur:.2f}".encode())]}
            await send(message)

        await self.app(scope, receive, timed)
