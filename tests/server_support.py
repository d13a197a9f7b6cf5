"""Helpers for the proxy tests: a uvicorn server in a thread, and a tiny OpenAI-compatible upstream on loopback.

The stub upstream is a real HTTP server (it stands in for a paid API and lets tests make the upstream
fail on purpose: 500s, 429s, garbage bodies and streams, streams cut short, slowness); the model tests use a
real llama.cpp server.
"""

from __future__ import annotations

import json
import selectors
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import uvicorn

from agentedit.server.process import free_port

__all__ = ["StubUpstream", "admin_key", "free_port", "serving"]


def admin_key(stores: Any, store: str, namespaces: tuple[str, ...] = ("*",)) -> str:
    """A new admin key in the key store of ``store`` under the folder ``stores`` (what `serve` reads)."""
    from agentedit.server import KeyStore, ServerConfig

    keys = KeyStore(ServerConfig(store=store, store_dir=str(stores)).resolved_keys_path())
    try:
        return keys.create(role="admin", namespaces=list(namespaces))[0]
    finally:
        keys.close()


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


USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
LOGPROBS = {"content": [{"token": "stub", "logprob": -0.25, "bytes": [115, 116, 117, 98], "top_logprobs": []}]}


class StubUpstream:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 whose behaviour a test sets with :attr:`mode`.

    Modes: ``ok`` (a canned reply, with ``system_fingerprint`` and, when asked for, ``logprobs``; SSE when asked
    to stream), ``tool`` (a call of the first tool), ``500``, ``429`` and ``503`` (with ``retry-after:
    {retry_after}`` unless that is None), ``garbage`` (200 with a body that is not JSON; streamed: SSE events that
    are not JSON), ``empty_stream`` (only ``[DONE]``), ``cut_stream`` (two chunks, then the connection closes:
    no finish reason, no ``[DONE]``), ``slow`` (waits :attr:`delay` seconds, then answers), ``drip`` (streams two
    chunks, then waits up to :attr:`delay` seconds for the rest; a caller that closes the connection meanwhile is
    counted in :attr:`closed_early`). :attr:`script` holds modes for the next requests, one each, before
    :attr:`mode` applies again. Every request body it received is kept in :attr:`requests`.
    """

    def __init__(self, reply: str = "stub reply") -> None:
        self.mode = "ok"
        self.script: list[str] = []
        self.reply = reply
        self.delay = 5.0
        self.retry_after: str | None = "7"
        self.requests: list[dict[str, Any]] = []
        self.closed_early = 0
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
                mode = stub.script.pop(0) if stub.script else stub.mode
                stub._answer(self, body, mode)

            def _send(self, status: int, data: Any, content_type: str = "application/json",
                      headers: dict[str, str] | None = None, *, cut: bool = False) -> None:
                raw = data if isinstance(data, bytes) else json.dumps(data).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", content_type)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    if cut:  # no length: the body ends where the connection does
                        self.send_header("connection", "close")
                        self.close_connection = True
                    else:
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

    def _answer(self, h: Any, body: dict[str, Any], mode: str) -> None:
        stream = bool(body.get("stream"))
        if mode in ("500", "429", "503"):
            headers = {"retry-after": self.retry_after} if mode != "500" and self.retry_after is not None else {}
            kind = {"500": "server_error", "429": "rate_limit_exceeded", "503": "overloaded"}[mode]
            h._send(int(mode), {"error": {"message": f"stub upstream says {mode}", "type": kind}}, headers=headers)
            return
        if mode == "garbage":
            if stream:
                h._send(200, b"data: <html>not json</html>\n\ndata: {\"broken\": \n\ndata: [DONE]\n\n", "text/event-stream")
            else:
                h._send(200, b"<html>this is not an OpenAI reply", "application/json")
            return
        if mode == "slow":
            time.sleep(self.delay)
        message: dict[str, Any] = {"role": "assistant", "content": self.reply}
        finish = "stop"
        if mode == "tool" and body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": name, "arguments": "{\"city\": \"Paris\"}"}}]}
            finish = "tool_calls"
        logprobs = LOGPROBS if body.get("logprobs") else None
        if not stream:
            h._send(200, {"id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": "stub",
                          "system_fingerprint": "fp_stub",
                          "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": logprobs}],
                          "usage": USAGE})
            return
        base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": "stub",
                "system_fingerprint": "fp_stub"}
        words = self.reply.split(" ")
        deltas = [{"role": "assistant", "content": ""}] + [{"content": w if i == 0 else " " + w} for i, w in enumerate(words)]
        events = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None,
                                        "logprobs": logprobs if i else None}]} for i, d in enumerate(deltas)]
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": USAGE})
        if mode == "empty_stream":
            events = []
        if mode == "cut_stream":
            h._send(200, "".join(f"data: {json.dumps(e)}\n\n" for e in events[:2]).encode(), "text/event-stream", cut=True)
            return
        if mode == "drip":
            self._drip(h, ["".join(f"data: {json.dumps(e)}\n\n" for e in part) for part in (events[:2], events[2:])])
            return
        raw = "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode() + b"data: [DONE]\n\n"
        h._send(200, raw, "text/event-stream")

    def _drip(self, h: Any, parts: list[str]) -> None:
        """The first part of a stream, then the rest after :attr:`delay` seconds unless the caller hangs up first."""
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("connection", "close")
        h.close_connection = True
        h.end_headers()
        h.wfile.write(parts[0].encode())
        h.wfile.flush()
        with selectors.DefaultSelector() as sel:  # not select(): a long test run has file descriptors past 1024
            sel.register(h.connection, selectors.EVENT_READ)
            readable = sel.select(self.delay)
        if readable:  # the caller sends nothing more on this connection: readable means it closed it
            self.closed_early += 1
            return
        try:
            h.wfile.write(parts[1].encode() + b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            self.closed_early += 1
