"""``POST /ui/api/try``: one question (or a short conversation) answered without edits and with them, side by side.

The "with" side is exactly what ``/v1/chat/completions`` does (``Editor.prepare_chat``, then the composed request
to the model); the "without" side sends the caller's messages to the model untouched. The reply carries every
candidate the memory retrieved with the scope checker's decision, reason and score, the exact request sent to the
model, and the timings. It calls the model twice (query role, like a chat).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from ...errors import AgentEditError, BackendError
from ..access import Principal, require
from ..errors import as_api_error
from ..schemas import ChatMessage
from ..edits import edit_fields

router = APIRouter(prefix="/ui/api", tags=["console"], include_in_schema=False)


class TryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[ChatMessage] = Field(min_length=1, max_length=20)
    max_tokens: int = Field(256, ge=1, le=4096)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 1)


async def _ask(backend: Any, request: Any, params: dict[str, Any]) -> tuple[str, float]:
    started = time.perf_counter()
    completion = await backend.achat(request, **params)
    return completion.text, _ms(started)


@router.post("/try")
async def try_it(body: TryIn, request: Request, who: Principal = require("query")) -> dict[str, Any]:
    st = request.app.state.agentedit
    messages = [m.model_dump(exclude_unset=True) for m in body.messages]
    started = time.perf_counter()
    try:
        prepared = await st.prepare(messages, who.namespace)
    except AgentEditError as exc:
        raise as_api_error(exc, request) from None
    prepare_ms = _ms(started)
    params = {"max_tokens": body.max_tokens}
    try:
        if prepared.answered:  # a decomposed multi-hop question: its hops already called the model
            without, with_ = await _ask(st.backend, messages, params), (prepared.completion.text, 0.0)
        else:
            without, with_ = await asyncio.gather(_ask(st.backend, messages, params),
                                                  _ask(st.backend, prepared.request, params))
    except BackendError as exc:
        raise as_api_error(exc, request) from None
    candidates = []
    for d in prepared.decisions:
        try:
            rec: dict[str, Any] | None = edit_fields(st.editor.get(d.edit_id, namespace=who.namespace))
        except AgentEditError:
            rec = None
        candidates.append({**d.to_dict(), "score": round(float(d.similarity), 4), "edit": rec})
    applied = prepared.applied_ids
    return {"namespace": who.namespace, "mode": prepared.mode, "applied": applied, "query": prepared.query,
            "resolved_query": prepared.resolved_query, "resolution": prepared.resolution,
            "without": {"text": without[0], "request": messages, "upstream_ms": without[1]},
            "with": {"text": with_[0], "request": prepared.request, "upstream_ms": with_[1],
                     "hops": prepared.hops, "plan_reason": prepared.plan_reason},
            "candidates": candidates,
            "timings": {**{k: round(float(v), 3) for k, v in prepared.timings.items()}, "prepare_ms": prepare_ms,
                        "total_ms": _ms(started)}}
