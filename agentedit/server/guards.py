"""Two ASGI guards in front of every route: the ``Host`` check (DNS rebinding) and the text check of JSON bodies
(lone surrogates)."""

from __future__ import annotations

import json
import re
from typing import Any, Sequence

from ..wire import error_body
from .config import is_loopback
from .middleware import ASGIApp, BodyTooLarge, Message, Receive, Scope, Send, send_json


def host_name(value: str) -> str:
    """The host of a ``Host`` header value, lower-cased, without its port (``[::1]:8000`` -> ``[::1]``)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[:end + 1] if end > 0 else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def host_allowed(name: str, patterns: Sequence[str]) -> bool:
    """``name`` matches one of ``patterns``: a host name, ``*.example.com`` (its subdomains) or ``*`` (any)."""
    for pattern in patterns:
        pattern = pattern.strip().lower()
        if pattern == "*" or pattern == name or (pattern.startswith("*.") and name.endswith(pattern[1:])):
            return True
    return False


class HostCheck:
    """Refuse requests whose ``Host`` names a host this server does not answer for (421).

    A web page can point a name it controls at 127.0.0.1 (DNS rebinding) and then call this server from the user's
    browser with its own name in ``Host``. Loopback names (``127.0.0.1``, ``localhost``, ``[::1]``, any port) are
    always accepted; others only when they match ``allowed`` (``--allowed-hosts``). With ``allowed=None`` every
    host is accepted unless ``loopback_only`` (the no-auth mode, where nothing else protects the edits)."""

    def __init__(self, app: ASGIApp, *, allowed: Sequence[str] | None, loopback_only: bool) -> None:
        self.app, self.allowed, self.loopback_only = app, list(allowed) if allowed is not None else None, loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (self.allowed is not None or self.loopback_only):
            raw = next((v for k, v in scope.get("headers", ()) if k == b"host"), None)
            name = host_name(raw.decode("latin-1")) if raw is not None else None
            if name is not None and not is_loopback(name) and not host_allowed(name, self.allowed or []):
                where = "--allowed-hosts" if self.allowed is not None else "no-auth mode answers loopback hosts only"
                shown = name.encode("ascii", "backslashreplace").decode("ascii")[:100]
                message = (f"this server does not answer for host {shown!r} ({where}); call it as http://127.0.0.1:PORT "
                           "or http://localhost:PORT, or list the name in --allowed-hosts")
                await send_json(send, 421, error_body(421, message, code="host_not_allowed"))
                return
        await self.app(scope, receive, send)


# A lone surrogate reaches Python from JSON as an escape (\ud800) or as the bytes UTF-8 forbids (ED A0..BF ..);
# NaN and Infinity are no JSON numbers, though Python's parser takes them.
_SUSPECT = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\xed[\xa0-\xbf]|NaN|Infinity")
_LONE = re.compile("[\ud800-\udfff]")  # after parsing, any surrogate left is unpaired


class _NotJsonNumber(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJsonNumber(name)


def body_problem(body: bytes) -> tuple[str, str | None] | None:
    """What makes a JSON body unusable though Python parses it (a message and the field), or None."""
    if not _SUSPECT.search(body):
        return None
    try:
        path = lone_surrogate_path(json.loads(body, parse_constant=_refuse_constant))
    except _NotJsonNumber as exc:
        return (f"the request body is not valid JSON: {exc} is not a JSON number (send a number, or null)", None)
    except (ValueError, RecursionError):
        return None  # not JSON at all: the route says so
    if path is None:
        return None
    param = ".".join(path) or None
    return (f"{repr(param) if param else 'the request body'} holds a lone UTF-16 surrogate (an unpaired "
            "\\ud800-\\udfff), which is not valid Unicode; send valid UTF-8 text (pair the surrogates or remove them)",
            param)


def lone_surrogate_path(value: Any) -> list[str] | None:
    """The path (keys and indexes) to the first string, key or value, holding a lone surrogate, or None."""
    stack: list[tuple[Any, list[str]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _LONE.search(item):
                return path
        elif isinstance(item, dict):
            for key, inner in reversed(list(item.items())):
                if _LONE.search(key):
                    return [*path, key]
                stack.append((inner, [*path, key]))
        elif isinstance(item, list):
            stack.extend((inner, [*path, str(i)]) for i, inner in reversed(list(enumerate(item))))
    return None


class TextCheck:
    """Refuse a JSON body with a string that holds a lone UTF-16 surrogate (400 naming the field), or with NaN or
    Infinity for a number.

    Python's JSON parser accepts ``"\\ud800"``, but such a string is not Unicode: the embedder, the upstream call
    and UTF-8 output all fail on it. The body is read here (inside :class:`~.middleware.BodyLimit`) and handed on
    unchanged; it is parsed only when its bytes could hold one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        parts: list[bytes] = []
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the client left while sending: nobody to answer
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except BodyTooLarge as exc:
            await send_json(send, 413, error_body(413, str(exc.detail)))
            return
        body = b"".join(parts)
        problem = body_problem(body)
        if problem is not None:
            what, param = problem
            code = "invalid_unicode" if "surrogate" in what else "invalid_json"
            await send_json(send, 400, error_body(400, what, code=code, param=param), close=False)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, which the chat route watches for

        await self.app(scope, replay, send)
