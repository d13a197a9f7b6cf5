"""``POST /v1/chat/completions`` (plain and streamed) and ``GET /v1/models``.

The client's messages go through ``Editor.prepare_chat`` (the workflow Editor.chat runs, stopped before
the final model call; a decomposed multi-hop question comes back answered); the composed request then
goes to the upstream model with the client's own parameters (tools included). Which edits were applied is reported in the ``x-agentedit-applied`` header and in an
extra ``agentedit`` body field (in the first chunk when streaming), which OpenAI clients ignore.
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from .. import wire
from ..backends.base import Backend, Completion
from ..errors import BackendError
from .access import Principal, require
from ..wire import error_body
from .errors import ApiError, as_api_error
from .schemas import ChatCompletionRequest

router = APIRouter(tags=["chat"])

APPLIED_HEADER = wire.APPLIED_HEADER


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def _upstream_failed(request: Request, exc: BackendError) -> ApiError:
    err = as_api_error(exc)
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
    info = wire.info_block(applied=ids, mode=mode, namespace=who.namespace, timings=prepared.timings)
    headers = wire.headers(applied=ids, mode=mode, namespace=who.namespace)
    params = body.upstream_params()
    called = time.perf_counter()
    if body.stream:
        source = _answered(prepared.completion) if prepared.answered else _chunks(st.backend, prepared.request, params)
        try:
            first = await anext(source, None)
        except BackendError as exc:
            raise _upstream_failed(request, exc) from None
        st.metrics.upstream.observe(time.perf_counter() - called)
        info["timings"]["upstream_first_chunk"] = _ms(called)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = _sse(first, source, info=info, model=st.model_name, include_usage=include_usage)
        return StreamingResponse(events, media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"})
    if prepared.answered:  # a decomposed multi-hop question: its hops called the model, the answer is final
        completion = prepared.completion
    else:
        try:
            completion = await st.backend.achat(prepared.request, **params)
        except BackendError as exc:
            raise _upstream_failed(request, exc) from None
    st.metrics.upstream.observe(time.perf_counter() - called)
    info["timings"].update(upstream=_ms(called), total=_ms(started))
    out = wire.completion(text=completion.text, model=completion.model or st.model_name, info=info,
                          finish_reason=completion.finish_reason, usage=completion.usage or None,
                          tool_calls=completion.tool_calls)
    if not completion.usage:
        out.pop("usage")
    return JSONResponse(out, headers=headers)


async def _answered(done: Completion) -> AsyncIterator[dict[str, Any]]:
    """An answer the workflow already has, as a one-chunk stream."""
    yield {"model": done.model, "choices": [{"index": 0, "delta": {"role": "assistant", "content": done.text},
                                             "finish_reason": done.finish_reason or "stop"}], "usage": done.usage or None}


async def _chunks(backend: Backend, request: Any, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """The backend's stream, or its whole reply as one chunk when it cannot stream."""
    stream = getattr(backend, "astream", None)
    if stream is not None:
        async for chunk in stream(request, **params):
            yield chunk
        return
    done = await backend.achat(request, **params)
    delta: dict[str, Any] = {"role": "assistant", "content": done.text}
    if done.tool_calls:
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(done.tool_calls)]
    yield {"model": done.model, "choices": [{"index": 0, "delta": delta, "finish_reason": done.finish_reason or "stop"}],
           "usage": done.usage}


async def _sse(first: dict[str, Any] | None, rest: AsyncIterator[dict[str, Any]], *, info: dict[str, Any], model: str,
               include_usage: bool) -> AsyncIterator[str]:
    """OpenAI ``chat.completion.chunk`` events, the usage chunk when asked for, then ``[DONE]``."""
    base = wire.chunk_base()
    usage: dict[str, int] | None = None
    sent = False
    chunk = first
    try:
        while chunk is not None:
            usage = chunk.get("usage") or usage
            choices = [{**c, "logprobs": None} for c in chunk.get("choices", []) if c.get("delta") or c.get("finish_reason")]
            if choices or not sent:
                yield wire.sse(wire.chunk(base, model=chunk.get("model") or model, choices=choices,
                                          info=None if sent else info))
                sent = True
            chunk = await anext(rest, None)
        if include_usage and usage:
            yield wire.sse(wire.chunk(base, model=model, choices=[], usage=usage))
        yield wire.SSE_DONE
    except BackendError as exc:  # headers are sent: report in-band the way OpenAI clients expect
        err = as_api_error(exc)
        yield wire.sse(error_body(err.status, err.message, code=err.code))
    finally:
        await rest.aclose()  # type: ignore[attr-defined]


@router.get("/v1/models", summary="The model this proxy serves")
async def list_models(request: Request, who: Principal = require("query")) -> dict[str, Any]:
    st = request.app.state.agentedit
    return {"object": "list", "data": [{"id": st.model_name, "object": "model", "created": st.started, "owned_by": "agentedit"}]}
