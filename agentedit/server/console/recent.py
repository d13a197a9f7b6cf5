"""A small bounded record of the chat questions the proxy answered with edits, per namespace, in memory.

:class:`RecentQuestions` is an ASGI middleware in front of ``POST /v1/chat/completions``: it copies the request body
as it streams past (at most :data:`MAX_BODY` bytes) and reads the reply's ``x-agentedit-applied`` and
``x-agentedit-namespace`` headers; when the reply is a success it keeps the last user message with the ids of the
edits applied. Nothing in the chat path waits on it, and it holds at most :data:`PER_NAMESPACE` questions per
namespace (lost on restart: this is a recent view for the console, not an audit log; the ledger is that).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ... import wire
from ..middleware import ASGIApp, Message, Receive, Scope, Send

CHAT_PATH = "/v1/chat/completions"
MAX_BODY = 256 * 1024
PER_NAMESPACE = 500
QUESTION_CHARS = 400


def last_user_text(body: bytes) -> str:
    """The text of the last user message of a chat request body ("" when there is none or it is not JSON)."""
    try:
        messages = json.loads(body).get("messages") or []
    except (ValueError, AttributeError):
        return ""
    for m in reversed(messages if isinstance(messages, list) else []):
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")[:QUESTION_CHARS]
    return ""


@dataclass
class _Namespace:
    questions: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=PER_NAMESPACE))
    chats: int = 0
    with_edits: int = 0


class Recent:
    """The record itself: what the middleware saw, per namespace (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_ns: dict[str, _Namespace] = {}

    def add(self, namespace: str, question: str, applied: list[str], mode: str) -> None:
        with self._lock:
            ns = self._by_ns.setdefault(namespace, _Namespace())
            ns.chats += 1
            if applied:
                ns.with_edits += 1
                ns.questions.append({"at": time.time(), "question": question, "applied": applied, "mode": mode})

    def for_edit(self, namespace: str, edit_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The latest questions answered with ``edit_id``, newest first."""
        with self._lock:
            found = [q for q in reversed((self._by_ns.get(namespace) or _Namespace()).questions) if edit_id in q["applied"]]
        return found[:limit]

    def counts(self, namespaces: list[str] | None = None) -> dict[str, dict[str, int]]:
        """Chats seen since start and how many had at least one edit applied, per namespace."""
        with self._lock:
            return {ns: {"chats": v.chats, "with_edits": v.with_edits} for ns, v in sorted(self._by_ns.items())
                    if namespaces is None or ns in namespaces}


class RecentQuestions:
    """The middleware that fills a :class:`Recent` from successful chat replies."""

    def __init__(self, app: ASGIApp, *, recent: Recent) -> None:
        self.app, self.recent = app, recent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") != CHAT_PATH:
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def copying() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < MAX_BODY:
                body.extend(message.get("body", b"")[: MAX_BODY - len(body)])
            return message

        async def watching(message: Message) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 200:
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", [])}
                if wire.APPLIED_HEADER.lower() in headers:
                    applied = [i for i in headers[wire.APPLIED_HEADER.lower()].split(",") if i]
                    self.recent.add(headers.get("x-agentedit-namespace", ""), last_user_text(bytes(body)), applied,
                                    headers.get("x-agentedit-mode", ""))
            await send(message)

        await self.app(scope, copying, watching)
