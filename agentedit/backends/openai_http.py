"""OpenAI-compatible servers (``openai/<model>`` with ``api_base``) called directly over httpx.

The proxy's hot path is one chat call per request. Through litellm that call goes litellm -> the OpenAI SDK ->
its HTTP client, and that stack was the largest single cost of a proxied request measured on the request path
(``evals/results/proxy-bench-session4/NOTES.md``: 36% of the proxy's busy samples). An OpenAI-compatible server
needs none of litellm's translation: the request body is the OpenAI one, so this backend posts it over a pooled
httpx client and reads the reply (or the SSE stream) itself.

It keeps :class:`~agentedit.backends.api.LiteLLMBackend`'s contract exactly (it replaces only its transport,
:meth:`_send`, and reuses its validation, retries,
``retry-after`` handling and error messages): a timeout, bounded retries with backoff for connection errors, 429
and 5xx; 4xx refusals raised at once with the upstream's own message; a malformed reply or a stream that ends
without a finish reason is a :class:`~agentedit.errors.BackendError`. Other providers (``anthropic/...``, hosted
``openai/...`` without ``api_base``) stay on litellm; ``AGENTEDIT_UPSTREAM_CLIENT=litellm`` puts every model there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from typing import Any, AsyncIterator, Sequence

import httpx

from ..errors import BackendError, ConfigError
from ..settings import env
from .api import LiteLLMBackend, _carries_something, _litellm, ended_early
from .base import Completion

logger = logging.getLogger(__name__)

_CLOSING: set[asyncio.Future[None]] = set()  # connections being closed for abandoned streams
_PATHS = {True: "/chat/completions", False: "/completions"}
_DROP = ("timeout", "num_retries", "_skip_mcp_handler", "api_base", "api_key", "extra_body")


class UpstreamStatusError(Exception):
    """The upstream answered with an error status. ``body`` is its parsed JSON (when it sent JSON), ``headers``
    its headers (``retry-after``). Subclasses are named like the OpenAI SDK's errors, which is how the retry
    policy and the proxy's status mapping classify a failure."""

    def __init__(self, status_code: int, body: Any, headers: httpx.Headers) -> None:
        inner = body.get("error") if isinstance(body, dict) else None
        message = inner.get("message") if isinstance(inner, dict) else (inner if isinstance(inner, str) else None)
        super().__init__(f"Error code: {status_code} - {message or body!s:.300}")
        self.status_code, self.body, self.headers = status_code, body, headers


class BadRequestError(UpstreamStatusError): ...
class AuthenticationError(UpstreamStatusError): ...
class PermissionDeniedError(UpstreamStatusError): ...
class NotFoundError(UpstreamStatusError): ...
class UnprocessableEntityError(UpstreamStatusError): ...
class RateLimitError(UpstreamStatusError): ...
class ServiceUnavailableError(UpstreamStatusError): ...
class InternalServerError(UpstreamStatusError): ...
class APIError(UpstreamStatusError): ...


class APIConnectionError(Exception):
    """The upstream could not be reached, or dropped the connection before answering."""


class Timeout(Exception):
    """The upstream did not answer within the call's timeout (named like the SDK's, which the retry policy and
    the proxy's 504 read)."""


_BY_STATUS = {400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
              413: BadRequestError, 422: UnprocessableEntityError, 429: RateLimitError, 503: ServiceUnavailableError}


def status_error(status: int, raw: bytes, headers: httpx.Headers) -> UpstreamStatusError:
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw[:300].decode("utf-8", "replace")
    cls = _BY_STATUS.get(status) or (InternalServerError if status >= 500 else APIError)
    return cls(status, body, headers)


def _transport(exc: httpx.TransportError) -> Exception:
    if isinstance(exc, httpx.TimeoutException):
        return Timeout(f"no answer in time ({type(exc).__name__})")
    return APIConnectionError(f"connection failed: {type(exc).__name__}: {exc}")


def _counted_usage(model: str, messages: list[dict[str, Any]], text: str) -> dict[str, int]:
    """Token counts for a stream whose server sent none (litellm's tokenizer-based count, as litellm reports)."""
    litellm = _litellm()
    prompt = int(litellm.token_counter(model=model, messages=messages))
    completion = int(litellm.token_counter(model=model, text=text, count_response_tokens=True))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class _Reply:
    """Attribute access over a reply's JSON, for :meth:`LiteLLMBackend._completion` (which reads objects)."""

    def __init__(self, data: Any) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or not isinstance(self._data, dict):
            raise AttributeError(name)
        value = self._data.get(name)
        if isinstance(value, list):
            return [_Reply(v) if isinstance(v, dict) else v for v in value]
        if isinstance(value, dict) and name not in ("logprobs",):
            return _Reply(value)
        return value

    def model_dump(self, exclude_none: bool = False) -> dict[str, Any]:
        if not isinstance(self._data, dict):
            raise TypeError("not an object")
        return {k: v for k, v in self._data.items() if not (exclude_none and v is None)}


def openai_compatible(model: str, *, api_base: str | None, **kwargs: Any) -> LiteLLMBackend:
    """The backend for ``model``: this direct client for ``openai/<name>`` at an ``api_base``, litellm otherwise
    (and for every model when ``AGENTEDIT_UPSTREAM_CLIENT=litellm``)."""
    choice = (env("AGENTEDIT_UPSTREAM_CLIENT", "direct") or "direct").strip().lower()
    if choice not in ("direct", "litellm"):
        raise ConfigError(f"AGENTEDIT_UPSTREAM_CLIENT must be 'direct' or 'litellm', got {choice!r}")
    if api_base and model.startswith("openai/") and choice == "direct":
        return OpenAIHTTPBackend(model, api_base=api_base, **kwargs)
    return LiteLLMBackend(model, api_base=api_base, **kwargs)


class OpenAIHTTPBackend(LiteLLMBackend):
    """An OpenAI-compatible server at ``api_base``, called over a pooled httpx client (no litellm)."""

    def __init__(self, model: str, *, api_base: str, **kwargs: Any) -> None:
        super().__init__(model, api_base=api_base, **kwargs)
        self.wire_model = model.split("/", 1)[1]
        self._url = api_base.rstrip("/")
        self._headers = {"authorization": f"Bearer {self.api_key}", "content-type": "application/json"}
        self._limits = httpx.Limits(max_connections=512, max_keepalive_connections=128)
        self._sync: httpx.Client | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()

    # -- transport ---------------------------------------------------------------------------
    def _client(self) -> httpx.Client:
        if self._sync is None:
            self._sync = httpx.Client(timeout=self.timeout, limits=self._limits, headers=self._headers)
        return self._sync

    def _aclient(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()  # an AsyncClient's connections belong to the loop that made them
        client = self._async.get(loop)
        if client is None:
            client = self._async[loop] = httpx.AsyncClient(timeout=self.timeout, limits=self._limits, headers=self._headers)
        return client

    def _body(self, params: dict[str, Any]) -> bytes:
        # as litellm: a None in the call leaves the default, a None default sends nothing (the server's own)
        kw = {**self.default_params, **{k: v for k, v in params.items() if v is not None}}
        extra = kw.pop("extra_body", None) or {}
        body = {k: v for k, v in kw.items() if v is not None and k not in _DROP}
        body.update(extra)
        body["model"] = self.wire_model
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def _parse(self, resp: httpx.Response, chat: bool) -> Completion:
        if resp.status_code >= 400:
            raise status_error(resp.status_code, resp.content, resp.headers)
        try:
            data = json.loads(resp.content)
        except ValueError as exc:
            raise BackendError(f"{self._where()} returned a reply that is not JSON ({exc})", status=resp.status_code) from exc
        if isinstance(data, dict) and isinstance(data.get("error"), dict):  # some servers say 200 and an error
            raise status_error(502, resp.content, resp.headers)
        return self._validated(_Reply(data), chat)

    def _send(self, fn_name: str, chat: bool, kwargs: dict[str, Any]) -> Completion:
        try:
            resp = self._client().post(self._url + _PATHS[chat], content=self._body(kwargs))
        except httpx.TransportError as exc:
            raise _transport(exc) from exc
        return self._parse(resp, chat)

    async def _asend(self, fn_name: str, chat: bool, kwargs: dict[str, Any]) -> Completion:
        try:
            resp = await self._aclient().post(self._url + _PATHS[chat], content=self._body(kwargs))
        except httpx.TransportError as exc:
            raise _transport(exc) from exc
        return self._parse(resp, chat)

    # -- streaming ---------------------------------------------------------------------------
    async def _open_stream(self, body: bytes) -> tuple[httpx.Response, AsyncIterator[str]]:
        client = self._aclient()
        request = client.build_request("POST", self._url + _PATHS[True], content=body)
        try:
            resp = await client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise _transport(exc) from exc
        if resp.status_code >= 400:
            raw = await resp.aread()
            await resp.aclose()
            raise status_error(resp.status_code, raw, resp.headers)
        return resp, resp.aiter_lines()

    async def _events(self, lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
        """The stream's JSON events until ``[DONE]`` or the end of the body."""
        try:
            async for line in lines:
                if not line.startswith("data:"):
                    continue  # blank separators, ": keep-alive" comments, event: names
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                try:
                    event = json.loads(payload)
                except ValueError as exc:
                    raise BackendError(f"{self._where()} streamed an event that is not JSON ({exc})") from exc
                if isinstance(event, dict) and isinstance(event.get("error"), dict):
                    raise status_error(502, payload.encode(), httpx.Headers())
                yield event
        except httpx.TransportError as exc:
            raise _transport(exc) from exc

    async def astream(self, messages: Sequence[dict[str, Any]], **params: Any) -> AsyncIterator[dict[str, Any]]:
        """Stream a chat reply as OpenAI ``chat.completion.chunk`` dicts, with the same contract as
        :meth:`LiteLLMBackend.astream`: retried until the first event, a stream without a finish reason is a
        :class:`BackendError`, and the upstream connection is closed when the stream ends or is abandoned."""
        body = self._body({**params, "messages": list(messages), "stream": True,
                           "stream_options": {"include_usage": True}})
        started = time.monotonic()
        resp: httpx.Response | None = None
        for attempt in range(self.max_retries + 1):
            try:
                resp, lines = await self._open_stream(body)
                events = self._events(lines)
                event = await anext(events, None)
                break
            except Exception as exc:
                if resp is not None:
                    await resp.aclose()
                    resp = None
                await asyncio.sleep(self._retry_delay(exc, attempt, started))
        assert resp is not None
        try:
            finished, counted, text = False, False, []
            while event is not None:
                out = self._chunk(_Reply(event))
                finished = finished or any(c["finish_reason"] for c in out["choices"])
                counted = counted or "usage" in out
                text.extend(c["delta"].get("content") or "" for c in out["choices"])
                if _carries_something(out):
                    yield out
                event = await anext(events, None)
            if not finished:
                raise ended_early(self._where())
            if not counted:  # e.g. llama-cpp-python ignores include_usage: count the way litellm does for it
                yield {"model": self.wire_model, "choices": [],
                       "usage": await asyncio.to_thread(_counted_usage, self.model, list(messages), "".join(text))}
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, attempt + 1) from exc
        finally:
            # a task of its own: the connection is closed even when this generator is closed by a cancelled caller
            # (anyio cancels every further await of a cancelled scope, which would skip a plain await here)
            closing = asyncio.ensure_future(resp.aclose())
            _CLOSING.add(closing)  # held until done: the loop keeps only a weak reference to a task
            closing.add_done_callback(_CLOSING.discard)
            await asyncio.shield(closing)
            await events.aclose()  # type: ignore[attr-defined]

    def warm(self) -> None:
        """Nothing to import: the client is made on the first call."""

    async def aclose(self) -> None:
        """Close the pooled connections of this event loop's client (the server calls it as it shuts down, so that
        sockets are not left for the garbage collector), then :meth:`close`."""
        client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        self.close()

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        self._async.clear()  # clients of other loops: their loops own them; their sockets close when collected
