"""API models through litellm: any ``provider/model``, or an OpenAI-compatible server via ``api_base``."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from email.utils import parsedate_to_datetime
from typing import Any, AsyncIterator, Sequence

from ..settings import offline_defaults
from ..errors import BackendError, ConfigError
from .base import Capabilities, Completion

logger = logging.getLogger(__name__)

_RETRYABLE = ("APIConnectionError", "Timeout", "RateLimitError", "ServiceUnavailableError", "InternalServerError",
              "APIError", "BadGatewayError")
_FATAL = ("AuthenticationError", "PermissionDeniedError", "NotFoundError", "BadRequestError", "ContextWindowExceededError",
          "UnprocessableEntityError", "ContentPolicyViolationError", "UnsupportedParamsError")


def _litellm():
    """Import litellm on first use, with its bundled cost map (no network at import)."""
    offline_defaults()
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def _retryable(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & set(_FATAL):
        return False
    if names & set(_RETRYABLE):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status >= 500 or status == 429)


def _plain(obj: Any) -> dict[str, Any]:
    """A pydantic/litellm object (or a dict) as a plain dict."""
    if isinstance(obj, dict):
        return dict(obj)
    dump = getattr(obj, "model_dump", None)
    if dump is None:
        raise TypeError(f"expected an object with fields, got {type(obj).__name__}")
    return dict(dump(exclude_none=True))


def retry_after(exc: BaseException) -> float | None:
    """Seconds the upstream asked to wait (``retry-after-ms``, ``retry-after`` in seconds or as a date), if it did."""
    headers: Any = None
    for source in (exc, getattr(exc, "response", None)):
        for name in ("litellm_response_headers", "headers"):  # litellm keeps the upstream's headers in the first
            found = getattr(source, name, None)
            if headers is None and found and hasattr(found, "items"):
                headers = found
    if headers is None:
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    try:
        if "retry-after-ms" in lower:
            seconds = float(lower["retry-after-ms"]) / 1000.0
        elif "retry-after" in lower:
            value = lower["retry-after"]
            try:
                seconds = float(value)
            except ValueError:
                seconds = parsedate_to_datetime(value).timestamp() - time.time()
        else:
            return None
    except (TypeError, ValueError, OverflowError):
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) and 100 <= status < 600 else None


def _upstream_finished(stream: Any) -> bool:
    """Whether the upstream itself sent a finish reason: litellm makes one up (``stop``) when a stream just ends,
    which would pass a stream cut short, or a reply that is no chat stream at all, for a complete answer."""
    if not hasattr(stream, "received_finish_reason"):
        return True  # not litellm's stream wrapper: nothing is made up
    return bool(getattr(stream, "received_finish_reason", None) or getattr(stream, "intermittent_finish_reason", None))


def ended_early(where: str) -> BackendError:
    """The error for a stream that stopped without a finish reason (cut short, or no chat stream at all)."""
    return BackendError(f"{where} sent a stream that ended before the model finished (no finish reason: cut short, "
                        "or not an OpenAI chat stream)")


def _carries_something(chunk: dict[str, Any]) -> bool:
    return bool(chunk.get("usage")) or any(c["delta"] or c["finish_reason"] for c in chunk["choices"])


async def _close(stream: Any) -> None:
    """Close a litellm stream (and so its HTTP connection) now, not when it is garbage-collected."""
    aclose = getattr(stream, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception as exc:  # closing is best effort; the reply is already decided
        logger.debug("closing the upstream stream failed: %s", exc)


def _logprobs(choice: Any) -> Any:
    """A choice's OpenAI ``logprobs`` object as plain data (None when the upstream sent none)."""
    found = getattr(choice, "logprobs", None)
    if found is None or isinstance(found, (dict, list)):
        return found
    dump = getattr(found, "model_dump", None)
    return dump() if dump is not None else None


def _usage(resp: Any) -> dict[str, int]:
    usage = getattr(resp, "usage", None)
    if usage is None:
        return {}
    return {k: v for k in ("prompt_tokens", "completion_tokens", "total_tokens")
            if isinstance(v := getattr(usage, k, None), int)}


class LiteLLMBackend:
    """Chat and completion calls with a timeout, bounded retries with backoff, and clear errors."""

    def __init__(self, model: str, *, api_base: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                 max_retries: int = 2, default_params: dict[str, Any] | None = None, logprobs: bool = False) -> None:
        if "/" not in model or model.startswith("/") or model.endswith("/"):
            raise ConfigError(
                f"model {model!r} needs a provider prefix, e.g. 'openai/gpt-4o-mini' or 'anthropic/claude-3-5-haiku-latest'; "
                "for an OpenAI-compatible server use 'openai/<model-name>' with api_base"
            )
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
        self.name = model
        self.model = model
        self.api_base = api_base
        self.api_key = api_key or ("sk-no-key-required" if api_base else None)
        self.timeout = timeout
        self.max_retries = max_retries
        self.default_params = {"temperature": 0.0, "max_tokens": 256, **(default_params or {})}
        self.capabilities = Capabilities(editable_weights=False, logprobs=logprobs, chat_template=True)

    # -- helpers -----------------------------------------------------------------------------
    def _kwargs(self, params: dict[str, Any]) -> dict[str, Any]:
        kw = {**self.default_params, **{k: v for k, v in params.items() if v is not None}}
        kw.update(model=self.model, timeout=self.timeout, num_retries=0)
        if kw.get("tools"):
            # litellm checks every tool list for its own MCP-gateway tools, which imports the optional `mcp`
            # package and fails without it; plain function tools never need that path.
            kw["_skip_mcp_handler"] = True
        if self.api_base:
            kw["api_base"] = self.api_base
        if self.api_key:
            kw["api_key"] = self.api_key
        return kw

    def _where(self) -> str:
        return f"{self.model}" + (f" at {self.api_base}" if self.api_base else "")

    def _error(self, exc: BaseException, attempts: int) -> BackendError:
        kind = type(exc).__name__
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else kind
        advice = ""
        if "Connection" in kind or "connect" in detail.lower():
            advice = " Check that the server is running and api_base is right."
        elif "Authentication" in kind:
            advice = " Check the API key (e.g. OPENAI_API_KEY)."
        elif "Timeout" in kind:
            advice = f" The call took longer than {self.timeout:g}s; raise timeout= or check the server."
        elif "NotFound" in kind:
            advice = " Check the model name."
        return BackendError(f"call to {self._where()} failed after {attempts} attempt(s): {kind}: {detail}.{advice}",
                            status=_status(exc), retry_after=retry_after(exc))

    def _backoff(self, attempt: int) -> float:
        return min(8.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2)

    @staticmethod
    def _completion(resp: Any, chat: bool) -> Completion:
        choice = resp.choices[0]
        if chat:
            text = choice.message.content or ""
        else:
            text = getattr(choice, "text", "") or ""
        tool_calls = [_plain(c) for c in (getattr(choice.message, "tool_calls", None) or [])] if chat else []
        fingerprint = getattr(resp, "system_fingerprint", None)
        return Completion(text=text, finish_reason=getattr(choice, "finish_reason", None), usage=_usage(resp),
                          model=getattr(resp, "model", "") or "", raw=resp, tool_calls=tool_calls,
                          logprobs=_logprobs(choice), system_fingerprint=fingerprint if isinstance(fingerprint, str) else None)

    def _retry_delay(self, exc: BaseException, attempt: int, started: float) -> float:
        """Seconds to wait before the next attempt, or raise the final :class:`BackendError`.

        When the upstream said how long to wait (``retry-after``, e.g. with a 429), the retry waits that long if
        the call still ends within its time budget (``timeout`` seconds from its start); otherwise it is not
        retried and the error carries the wait for the caller (the proxy passes it on as ``Retry-After``)."""
        if isinstance(exc, BackendError):
            raise exc
        if attempt >= self.max_retries or not _retryable(exc):
            raise self._error(exc, attempt + 1) from exc
        asked = retry_after(exc)
        delay = self._backoff(attempt) if asked is None else asked
        if asked is not None and time.monotonic() - started + asked > self.timeout:
            logger.warning("call to %s failed (%s) and the upstream asks to wait %.1fs, past this call's %gs budget; "
                           "not retrying", self._where(), type(exc).__name__, asked, self.timeout)
            raise self._error(exc, attempt + 1) from exc
        logger.warning("call to %s failed (%s); retry %d/%d in %.1fs", self._where(), type(exc).__name__,
                       attempt + 1, self.max_retries, delay)
        return delay

    def _send(self, fn_name: str, chat: bool, kwargs: dict[str, Any]) -> Completion:
        """One attempt of a call (what :meth:`_call` retries); subclasses with another transport replace it."""
        return self._validated(getattr(_litellm(), fn_name)(**self._kwargs(kwargs)), chat)

    async def _asend(self, fn_name: str, chat: bool, kwargs: dict[str, Any]) -> Completion:
        return self._validated(await getattr(_litellm(), fn_name)(**self._kwargs(kwargs)), chat)

    def _call(self, fn_name: str, chat: bool, **kwargs: Any) -> Completion:
        started = time.monotonic()
        for attempt in range(self.max_retries + 1):
            try:
                return self._send(fn_name, chat, kwargs)
            except Exception as exc:  # litellm raises many types; classify by name
                time.sleep(self._retry_delay(exc, attempt, started))
        raise AssertionError("unreachable")

    async def _acall(self, fn_name: str, chat: bool, **kwargs: Any) -> Completion:
        started = time.monotonic()
        for attempt in range(self.max_retries + 1):
            try:
                return await self._asend(fn_name, chat, kwargs)
            except Exception as exc:
                await asyncio.sleep(self._retry_delay(exc, attempt, started))
        raise AssertionError("unreachable")

    def _validated(self, resp: Any, chat: bool) -> Completion:
        try:
            return self._completion(resp, chat)
        except (AttributeError, IndexError, TypeError) as exc:
            raise BackendError(f"{self._where()} returned a malformed reply ({type(exc).__name__}: {exc})") from exc

    # -- public ------------------------------------------------------------------------------
    def chat(self, messages: Sequence[dict[str, Any]], **params: Any) -> Completion:
        return self._call("completion", True, messages=list(messages), **params)

    async def achat(self, messages: Sequence[dict[str, Any]], **params: Any) -> Completion:
        return await self._acall("acompletion", True, messages=list(messages), **params)

    async def astream(self, messages: Sequence[dict[str, Any]], **params: Any) -> AsyncIterator[dict[str, Any]]:
        """Stream a chat reply as OpenAI ``chat.completion.chunk`` dicts (``choices`` with ``delta``; ``usage`` last).

        Failures before the first chunk are retried like :meth:`achat`; a failure after it raises
        :class:`BackendError` (the caller has already sent part of the reply). A stream is valid when its chunks
        parse and the upstream ends it with a finish reason: one that stops without (cut short, or no chat stream
        at all) raises :class:`BackendError`, before the first chunk when nothing valid came. Chunks that carry
        nothing are dropped. The upstream connection is closed when the stream ends or is abandoned.
        """
        litellm = _litellm()
        kwargs = self._kwargs({**params, "messages": list(messages)})
        kwargs.update(stream=True, stream_options={"include_usage": True})
        started = time.monotonic()
        stream: Any = None
        for attempt in range(self.max_retries + 1):
            try:
                stream = await litellm.acompletion(**kwargs)
                chunks = stream.__aiter__()
                chunk = await anext(chunks, None)
                break
            except Exception as exc:
                await _close(stream)
                await asyncio.sleep(self._retry_delay(exc, attempt, started))
        try:
            finished = False
            while chunk is not None:
                out = self._chunk(chunk)
                if any(c["finish_reason"] for c in out["choices"]):
                    if not _upstream_finished(stream):
                        break
                    finished = True
                if _carries_something(out):
                    yield out
                chunk = await anext(chunks, None)
            if not finished:
                raise ended_early(self._where())
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, attempt + 1) from exc
        finally:
            await _close(stream)

    def _chunk(self, chunk: Any) -> dict[str, Any]:
        try:
            choices = []
            for choice in chunk.choices:
                delta = {k: v for k, v in _plain(choice.delta).items()
                         if k in ("role", "content", "tool_calls", "function_call", "refusal") and v is not None}
                entry = {"index": getattr(choice, "index", 0) or 0, "delta": delta,
                         "finish_reason": getattr(choice, "finish_reason", None)}
                logprobs = _logprobs(choice)
                if logprobs is not None:
                    entry["logprobs"] = logprobs
                choices.append(entry)
        except (AttributeError, TypeError) as exc:
            raise BackendError(f"{self._where()} streamed a malformed chunk ({type(exc).__name__}: {exc})") from exc
        out: dict[str, Any] = {"model": getattr(chunk, "model", "") or "", "choices": choices}
        fingerprint = getattr(chunk, "system_fingerprint", None)
        if isinstance(fingerprint, str):
            out["system_fingerprint"] = fingerprint
        usage = _usage(chunk)
        if usage:
            out["usage"] = usage
        return out

    def complete(self, prompt: str, **params: Any) -> Completion:
        return self._call("text_completion", False, prompt=prompt, **params)

    async def acomplete(self, prompt: str, **params: Any) -> Completion:
        return await self._acall("atext_completion", False, prompt=prompt, **params)

    def warm(self) -> None:
        """Pay litellm's slow first import now rather than on the first request."""
        _litellm()

    def close(self) -> None:
        """Nothing to release for a remote API."""
