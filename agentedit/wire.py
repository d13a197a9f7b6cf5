"""OpenAI wire shapes, built in one place: ``chat.completion`` objects, ``chat.completion.chunk`` events, error
objects and the ``agentedit`` block that reports what was applied (OpenAI clients ignore the extra field).

``Editor.chat`` and the HTTP proxy both answer with these, so a chat app sees the same object whichever
way it calls agentedit.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from typing import Any, Mapping, Sequence

APPLIED_HEADER = "x-agentedit-applied"


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def info_block(*, applied: Sequence[str], mode: str, namespace: str | None = None,
               timings: Mapping[str, float] | None = None, resolved_query: str = "",
               resolution: str = "") -> dict[str, Any]:
    """The ``agentedit`` field: applied edit ids, how the answer was produced, timings in ms, and for a follow-up
    whose pronouns were resolved, the question the scope check saw (``resolved_query``, ``resolution``).

    ``route`` repeats ``mode`` for clients written against agentedit 0.1."""
    out: dict[str, Any] = {"applied": list(applied), "mode": mode, "route": mode}
    if namespace is not None:
        out["namespace"] = namespace
    if resolved_query:
        out["resolved_query"], out["resolution"] = resolved_query, resolution
    out["timings"] = dict(timings or {})
    return out


def headers(*, applied: Sequence[str], mode: str, namespace: str) -> dict[str, str]:
    """Response headers naming the applied edits (for clients that cannot read the body's extra field)."""
    return {APPLIED_HEADER: ",".join(applied), "x-agentedit-mode": mode, "x-agentedit-route": mode,
            "x-agentedit-namespace": namespace}


def message(text: str | None, tool_calls: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An assistant message; ``content`` is None when the reply is only tool calls, as OpenAI sends it."""
    out: dict[str, Any] = {"role": "assistant", "content": text if (text or not tool_calls) else None}
    if tool_calls:
        out["tool_calls"] = list(tool_calls)
    return out


def completion(*, text: str | None, model: str, info: Mapping[str, Any] | None = None, finish_reason: str | None = None,
               usage: Mapping[str, int] | None = None, tool_calls: Sequence[dict[str, Any]] | None = None,
               logprobs: Any = None, system_fingerprint: str | None = None) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    out: dict[str, Any] = {
        "id": completion_id(), "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message(text, tool_calls), "finish_reason": finish_reason or "stop",
                     "logprobs": logprobs}],
        "usage": dict(usage) if usage else {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }
    if system_fingerprint:
        out["system_fingerprint"] = system_fingerprint
    if info is not None:
        out["agentedit"] = dict(info)
    return out


def chunk(base: Mapping[str, Any], *, model: str, choices: list[dict[str, Any]], usage: Mapping[str, int] | None = None,
          info: Mapping[str, Any] | None = None, system_fingerprint: str | None = None) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object sharing ``base``'s id and creation time."""
    out: dict[str, Any] = {**base, "model": model, "choices": choices}
    if system_fingerprint:
        out["system_fingerprint"] = system_fingerprint
    if usage is not None:
        out["usage"] = dict(usage)
    if info is not None:
        out["agentedit"] = dict(info)
    return out


def chunk_base() -> dict[str, Any]:
    return {"id": completion_id(), "object": "chat.completion.chunk", "created": int(time.time())}


_SURROGATE = re.compile("[\ud800-\udfff]")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_text(data: Any) -> str:
    """``data`` as strict JSON that UTF-8 can carry: an upstream's infinite or NaN numbers (a ``-inf`` logprob)
    become null and lone surrogates are escaped, instead of failing the reply half-way."""
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_finite(data), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return json.dumps(json.loads(text), separators=(",", ":")) if _SURROGATE.search(text) else text


def safe_text(text: str) -> str:
    """``text`` with lone surrogates written as ``\\udxxx`` escapes (for messages that quote bad input)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if _SURROGATE.search(text) else text


def sse(data: Mapping[str, Any]) -> str:
    """One server-sent event."""
    return f"data: {json_text(data)}\n\n"


SSE_DONE = "data: [DONE]\n\n"

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                405: "invalid_request_error", 409: "conflict_error", 412: "invalid_request_error", 413: "invalid_request_error",
                421: "invalid_request_error", 429: "rate_limit_error", 502: "upstream_error", 503: "upstream_unavailable",
                504: "upstream_timeout"}


def error_body(status: int, message: str, *, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """An OpenAI error object: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": safe_text(message), "type": _ERROR_TYPES.get(status, "server_error"),
                      "param": safe_text(param) if param is not None else None, "code": code}}
