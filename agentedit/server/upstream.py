"""The chat route's upstream side: the call cancelled when the client goes away, the backend's stream (or a whole
reply) as chunks, and the SSE events sent to the client."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Awaitable, TypeVar

from fastapi import Request
from starlette.types import Receive

from .. import wire
from ..backends.base import Backend, Completion
from ..errors import BackendError
from .errors import ClientGone, as_api_error, request_id

logger = logging.getLogger(__name__)

T = TypeVar("T")


async def _disconnected(receive: Receive) -> None:
    """Return when the client closes the connection (the request body has been read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_gone(request: Request, work: Awaitable[T], *, stream: bool) -> T:
    """Await ``work`` (the upstream call, retries included) unless the client disconnects first: then cancel it
    and raise :class:`ClientGone`, so that no model time is spent on a reply nobody reads."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request.receive))
    try:
        done, _ = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
        await asyncio.wait({task})
        request.app.state.agentedit.metrics.upstream_cancelled.labels(str(stream).lower()).inc()
        logger.info("request %s: the client went away; upstream call cancelled", request_id(request))
        raise ClientGone()
    finally:
        watch.cancel()
        task.cancel()  # the handler itself was cancelled (shutdown): the call goes with it


async def answered(done: Completion) -> AsyncIterator[dict[str, Any]]:
    """An answer the workflow already has, as a one-chunk stream."""
    yield {"model": done.model, "choices": [{"index": 0, "delta": {"role": "assistant", "content": done.text},
                                             "finish_reason": done.finish_reason or "stop"}], "usage": done.usage or None}


async def chunks(backend: Backend, request: Any, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """The backend's stream, or its whole reply as one chunk when it cannot stream."""
    stream = getattr(backend, "astream", None)
    if stream is not None:
        inner = stream(request, **params)
        try:
            async for chunk in inner:
                yield chunk
        finally:  # closing this generator closes the backend's stream (and its connection) now, not when collected
            await inner.aclose()
        return
    done = await backend.achat(request, **params)
    delta: dict[str, Any] = {"role": "assistant", "content": done.text}
    if done.tool_calls:
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(done.tool_calls)]
    yield {"model": done.model, "choices": [{"index": 0, "delta": delta, "finish_reason": done.finish_reason or "stop",
                                             "logprobs": done.logprobs}],
           "usage": done.usage, "system_fingerprint": done.system_fingerprint}


async def sse(request: Request, first: dict[str, Any] | None, rest: AsyncIterator[dict[str, Any]], *,
              info: dict[str, Any], model: str, include_usage: bool) -> AsyncIterator[str]:
    """OpenAI ``chat.completion.chunk`` events, the usage chunk when asked for, then ``[DONE]``; a failure of the
    upstream after the first event is a final ``data: {"error": ...}`` event instead of ``[DONE]``. When the client
    disconnects, the server cancels this generator and with it the upstream stream."""
    base = wire.chunk_base()
    usage: dict[str, int] | None = None
    sent = False
    chunk = first
    try:
        while chunk is not None:
            usage = chunk.get("usage") or usage
            choices = [{**c, "logprobs": c.get("logprobs")} for c in chunk.get("choices", [])
                       if c.get("delta") or c.get("finish_reason")]
            if choices or not sent:
                yield wire.sse(wire.chunk(base, model=chunk.get("model") or model, choices=choices,
                                          info=None if sent else info, system_fingerprint=chunk.get("system_fingerprint")))
                sent = True
            chunk = await anext(rest, None)
        if include_usage and usage:
            yield wire.sse(wire.chunk(base, model=model, choices=[], usage=usage))
        yield wire.SSE_DONE
    except BackendError as exc:  # headers are sent: report in-band the way OpenAI clients expect
        err = as_api_error(exc, request)
        yield wire.sse(wire.error_body(err.status, err.message, code=err.code))
    except asyncio.CancelledError:
        request.app.state.agentedit.metrics.upstream_cancelled.labels("true").inc()
        logger.info("request %s: the client went away mid-stream; upstream stream closed", request_id(request))
        raise
    finally:
        await rest.aclose()  # type: ignore[attr-defined]
