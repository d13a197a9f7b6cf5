"""``POST /v1/chat/completions`` (plain and streamed) and ``GET /v1/models``.

The client's messages go through ``Editor.prepare_chat`` (the workflow Editor.chat runs, stopped before
the final model call; a decomposed multi-hop question comes back answered); the composed request then
goes to the upstream model with the client's own parameters (tools included; unknown ones in the request
body). Which edits were applied is reported in the ``x-agentedit-applied`` header and in an extra ``agentedit``
body field (in the first chunk when streaming), which OpenAI clients ignore. The upstream call is cancelled when
the client goes away (:mod:`.upstream`).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from .. import wire
from ..errors import BackendError
from .access import Principal, require
from .errors import ApiError, WireJSON, as_api_error
from .schemas import ChatCompletionRequest
from .upstream import answered, chunks, sse, unless_gone

router = APIRouter(tags=["chat"])

APPLIED_HEADER = wire.APPLIED_HEADER


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def _upstream_failed(request: Request, exc: BackendError) -> ApiError:
    err = as_api_error(exc, request)
    request.app.state.agentedit.metrics.upstream_errors.labels(str(err.status)).inc()
    return err


@router.post("/v1/chat/completions", summary="Chat completion with in-scope edits applied (OpenAI-compatible)")
async def chat_completions(body: ChatCompletionRequest, request: Request, who: Principal = require("query")) -> Any:
    st = request.app.state.agentedit
    started = time.perf_counter()
    prepared = await st.prepare(body.plain_messages(), who.namespace)
    st.metrics.prepare.observe(time.perf_counter() - started)
    ids, mode = prepared.applied_ids, prepared.mode
    st.metrics.chats.labels(mode, str(body.stream).lower()).inc()
    st.metrics.applied.inc(len(ids))
    info = wire.info_block(applied=ids, mode=mode, namespace=who.namespace, timings=prepared.timings,
                           resolved_query=prepared.resolved_query, resolution=prepared.resolution)
    headers = wire.headers(applied=ids, mode=mode, namespace=who.namespace)
    params = body.upstream_params()
    called = time.perf_counter()
    if body.stream:
        source = answered(prepared.completion) if prepared.answered else chunks(st.backend, prepared.request, params)
        try:  # the first chunk before any byte is sent: a failure until then is a plain error status
            first = await unless_gone(request, anext(source, None), stream=True)
        except BackendError as exc:
            raise _upstream_failed(request, exc) from None
        st.metrics.upstream.observe(time.perf_counter() - called)
        info["timings"]["upstream_first_chunk"] = _ms(called)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = sse(request, first, source, info=info, model=st.model_name, include_usage=include_usage)
        return StreamingResponse(events, media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"})
    if prepared.answered:  # a decomposed multi-hop question: its hops called the model, the answer is final
        completion = prepared.completion
    else:
        try:
            completion = await unless_gone(request, st.backend.achat(prepared.request, **params), stream=False)
        except BackendError as exc:
            raise _upstream_failed(request, exc) from None
    st.metrics.upstream.observe(time.perf_counter() - called)
    info["timings"].update(upstream=_ms(called), total=_ms(started))
    out = wire.completion(text=completion.text, model=completion.model or st.model_name, info=info,
                          finish_reason=completion.finish_reason, usage=completion.usage or None,
                          tool_calls=completion.tool_calls, logprobs=completion.logprobs,
                          system_fingerprint=completion.system_fingerprint)
    if not completion.usage:
        out.pop("usage")
    return WireJSON(out, headers=headers)


@router.get("/v1/models", summary="The model this proxy serves")
async def list_models(request: Request, who: Principal = require("query")) -> dict[str, Any]:
    st = request.app.state.agentedit
    return {"object": "list", "data": [{"id": st.model_name, "object": "model", "created": st.started, "owned_by": "agentedit"}]}
