"""API models through litellm: any ``provider/model``, or an OpenAI-compatible server via ``api_base``."""

from __future__ import annotations

import asyncio
import logging
import random
import time
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
        return BackendError(f"call to {self._where()} failed after {attempts} attempt(s): {kind}: {detail}.{advice}")

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
        return Completion(text=text, finish_reason=getattr(choice, "finish_reason", None), usage=_usage(resp),
                          model=getattr(resp, "model", "") or "", raw=resp, tool_calls=tool_calls)

    def _retry_delay(self, exc: BaseException, attempt: int) -> float:
        """Seconds to wait before the next attempt, or raise the final :class:`BackendError`."""
        if isinstance(exc, BackendError):
            raise exc
        if attempt >= self.max_retries or not _retryable(exc):
            raise self._error(exc, attempt + 1) from exc
        delay = self._backoff(attempt)
        logger.warning("call to %s failed (%s); retry %d/%d in %.1fs", self._where(), type(exc).__name__,
                       attempt + 1, self.max_retries, delay)
        return delay

    def _call(self, fn_name: str, chat: bool, **kwargs: Any) -> Completion:
        litellm = _litellm()
        fn = getattr(litellm, fn_name)
        for attempt in range(self.max_retries + 1):
            try:
                resp = fn(**self._kwargs(kwargs))
                return self._validated(resp, chat)
            except Exception as exc:  # litellm raises many types; classify by name
                time.sleep(self._retry_delay(exc, attempt))
        raise AssertionError("unreachable")

    async def _acall(self, fn_name: str, chat: bool, **kwargs: Any) -> Completion:
        litellm = _litellm()
        fn = getattr(litellm, fn_name)
        for attempt in range(self.max_retries + 1):
            try:
                resp = await fn(**self._kwargs(kwargs))
                return self._validated(resp, chat)
            except Exception as exc:
                await asyncio.sleep(self._retry_delay(exc, attempt))
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
        :class:`BackendError` (the caller has already sent part of the reply).
        """
        litellm = _litellm()
        kwargs = self._kwargs({**params, "messages": list(messages)})
        kwargs.update(stream=True, stream_options={"include_usage": True})
        for attempt in range(self.max_retries + 1):
            try:
                stream = await litellm.acompletion(**kwargs)
                chunks = stream.__aiter__()
                first = await chunks.__anext__()
                break
            except StopAsyncIteration:
                return
            except Exception as exc:
                await asyncio.sleep(self._retry_delay(exc, attempt))
        yield self._chunk(first)
        try:
            async for chunk in chunks:
                yield self._chunk(chunk)
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, attempt + 1) from exc

    def _chunk(self, chunk: Any) -> dict[str, Any]:
        try:
            choices = []
            for choice in chunk.choices:
                delta = {k: v for k, v in _plain(choice.delta).items()
                         if k in ("role", "content", "tool_calls", "function_call", "refusal") and v is not None}
                choices.append({"index": getattr(choice, "index", 0) or 0, "delta": delta,
                                "finish_reason": getattr(choice, "finish_reason", None)})
        except (AttributeError, TypeError) as exc:
            raise BackendError(f"{self._where()} streamed a malformed chunk ({type(exc).__name__}: {exc})") from exc
        out: dict[str, Any] = {"model": getattr(chunk, "model", "") or "", "choices": choices}
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
