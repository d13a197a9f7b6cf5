"""Helpers for the proxy tests: a uvicorn server in a thread, and a tiny OpenAI-compatible upstream on loopback.

The stub upstream is a real HTTP server (it stands in for a paid API and lets tests make the upstream
fail on purpose: 500s, garbage bodies, slowness); the model tests use a real llama.cpp server.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import uvicorn

from agentedit.server.process import free_port

__all__ = ["StubUpstream", "free_port", "serving"]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 (free port) in a thread; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the proxy did not start (see the log above)")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class StubUpstream:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 whose behaviour a test sets with :attr:`mode`.

    Modes: ``ok`` (a canned reply; SSE when asked to stream), ``tool`` (a call of the first tool),
    ``500``, ``garbage`` (200 with a body that is not JSON), ``slow`` (waits :attr:`delay` seconds).
    Every request body it received is kept in :attr:`requests`.
    """

    def __init__(self, reply: str = "stub reply") -> None:
        self.mode = "ok"
        self.reply = reply
        self.delay = 5.0
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # /v1/models
                self._send(200, {"object": "list", "data": [{"id": "stub", "object": "model", "created": 0, "owned_by": "t"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                stub.requests.append(body)
                stub._answer(self, body)

            def _send(self, status: int, data: Any, content_type: str = "application/json") -> None:
                raw = data if isinstance(data, bytes) else json.dumps(data).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", content_type)
                    self.send_header("content-length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):  # the proxy gave up waiting (timeout tests)
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, h: Any, body: dict[str, Any]) -> None:
        if self.mode == "500":
            h._send(500, {"error": {"message": "stub upstream is broken", "type": "server_error"}})
            return
        if self.mode == "garbage":
            h._send(200, b"<html>this is not an OpenAI reply", "application/json")
            return
        if self.mode == "slow":
            time.sleep(self.delay)
        message: dict[str, Any] = {"role": "assistant", "content": self.reply}
        finish = "stop"
        if self.mode == "tool" and body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": name, "arguments": "{\"city\": \"Paris\"}"}}]}
            finish = "tool_calls"
        usage = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
        if not body.get("stream"):
            h._send(200, {"id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": "stub",
                          "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage})
            return
        base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": "stub"}
        words = self.reply.split(" ")
        deltas = [{"role": "assistant", "content": ""}] + [{"content": w if i == 0 else " " + w} for i, w in enumerate(words)]
        events = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": usage})
        raw = "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode() + b"data: [DONE]\n\n"
        h._send(200, raw, "text/event-stream")
