"""The direct httpx client for OpenAI-compatible upstreams gives what the litellm client gave, call for call.

Both clients talk to the same stub upstream (a real HTTP server on loopback); replies, tool calls, log-probs,
streams, usage and errors must be the same, so that switching the proxy's hot path off litellm changes nothing a
client sees."""

from __future__ import annotations

import asyncio

import pytest

from agentedit.backends import LiteLLMBackend, OpenAIHTTPBackend, resolve_backend
from agentedit.backends.openai_http import openai_compatible
from agentedit.errors import BackendError, ConfigError
from server_support import StubUpstream, free_port

ASK = [{"role": "user", "content": "Which city is the Eiffel Tower in?"}]
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}]


@pytest.fixture(scope="module")
def stub():
    s = StubUpstream()
    yield s
    s.close()


def _both(stub: StubUpstream, **kw) -> tuple[LiteLLMBackend, OpenAIHTTPBackend]:
    return (LiteLLMBackend("openai/stub", api_base=stub.base_url, **kw),
            OpenAIHTTPBackend("openai/stub", api_base=stub.base_url, **kw))


def _fields(c) -> tuple:
    # the SDK under litellm adds "refusal": None to log-probs; the direct client passes the upstream's as sent
    logprobs = {k: v for k, v in c.logprobs.items() if v is not None} if c.logprobs else c.logprobs
    return c.text, c.finish_reason, c.usage, c.tool_calls, logprobs, c.system_fingerprint


def test_the_resolver_picks_the_direct_client_only_for_an_openai_compatible_api_base(monkeypatch, stub):
    assert type(resolve_backend("openai/stub", api_base=stub.base_url)) is OpenAIHTTPBackend
    assert type(resolve_backend("openai/gpt-4o-mini")) is LiteLLMBackend  # hosted: litellm
    assert type(resolve_backend("anthropic/claude-3-5-haiku-latest")) is LiteLLMBackend
    monkeypatch.setenv("AGENTEDIT_UPSTREAM_CLIENT", "litellm")
    assert type(resolve_backend("openai/stub", api_base=stub.base_url)) is LiteLLMBackend
    monkeypatch.setenv("AGENTEDIT_UPSTREAM_CLIENT", "curl")
    with pytest.raises(ConfigError, match="'direct' or 'litellm'"):
        openai_compatible("openai/stub", api_base=stub.base_url)


@pytest.mark.parametrize("mode, params", [("ok", {}), ("ok", {"logprobs": True, "top_logprobs": 1}),
                                          ("tool", {"tools": TOOLS, "tool_choice": "auto"})])
def test_a_plain_reply_is_the_same_through_both_clients(stub, mode, params):
    stub.mode = mode
    try:
        via_litellm, direct = _both(stub)
        a = via_litellm.chat(ASK, **params)
        sent_litellm = stub.requests[-1]
        b = direct.chat(ASK, **params)
        sent_direct = stub.requests[-1]
        assert _fields(a) == _fields(b) and b.text or b.tool_calls
        assert asyncio.run(direct.achat(ASK, **params)).text == b.text
        # the upstream received the same request: model name without the provider, the same parameters
        assert sent_direct == sent_litellm and sent_direct["model"] == "stub"
    finally:
        stub.mode = "ok"


def test_extra_body_fields_reach_the_upstream_and_none_values_do_not(stub):
    direct = OpenAIHTTPBackend("openai/stub", api_base=stub.base_url, default_params={"max_tokens": 9})
    direct.chat(ASK, seed=3, stop=None, extra_body={"top_k": 4, "min_p": 0.1})
    sent = stub.requests[-1]
    assert sent["seed"] == 3 and sent["top_k"] == 4 and sent["min_p"] == 0.1 and sent["max_tokens"] == 9
    assert "stop" not in sent and "extra_body" not in sent and "timeout" not in sent
    direct.chat(ASK, temperature=None)  # None in a call keeps the default, as litellm does
    assert stub.requests[-1]["temperature"] == 0.0
    OpenAIHTTPBackend("openai/stub", api_base=stub.base_url, default_params={"temperature": None}).chat(ASK)
    assert "temperature" not in stub.requests[-1]  # a None default leaves it to the server (the proxy's choice)


async def _collect(backend, **params) -> list[dict]:
    return [chunk async for chunk in backend.astream(ASK, **params)]


def test_a_stream_is_the_same_through_both_clients(stub):
    via_litellm, direct = _both(stub)
    a, b = asyncio.run(_collect(via_litellm)), asyncio.run(_collect(direct))
    text = lambda chunks: "".join(c["delta"].get("content") or "" for ch in chunks for c in ch["choices"])  # noqa: E731
    assert text(a) == text(b) == "stub reply"
    assert [c["choices"][0]["finish_reason"] for c in b if c["choices"]][-1] == "stop"
    assert b[-1]["usage"] == a[-1]["usage"] == {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    assert stub.requests[-1]["stream_options"] == {"include_usage": True}


def test_a_stream_without_usage_gets_counted_usage(stub, monkeypatch):
    monkeypatch.setattr(stub, "_answer", _without_usage(stub._answer))
    chunks = asyncio.run(_collect(OpenAIHTTPBackend("openai/stub", api_base=stub.base_url)))
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == [] and usage["completion_tokens"] >= 2 and usage["prompt_tokens"] >= 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def _without_usage(answer):
    def wrapped(h, body, mode):
        return answer(h, {k: v for k, v in body.items() if k != "stream_options"}, mode)
    return wrapped


@pytest.mark.parametrize("mode, match", [("garbage", "not JSON"), ("empty_stream", "ended before the model finished"),
                                         ("cut_stream", "ended before the model finished")])
def test_an_invalid_stream_is_a_backend_error(stub, mode, match):
    stub.mode = mode
    try:
        with pytest.raises(BackendError, match=match):
            asyncio.run(_collect(OpenAIHTTPBackend("openai/stub", api_base=stub.base_url, max_retries=0)))
    finally:
        stub.mode = "ok"


def test_errors_carry_status_and_retry_after_and_4xx_is_not_retried(stub):
    direct = OpenAIHTTPBackend("openai/stub", api_base=stub.base_url, max_retries=2, timeout=5.0)
    stub.mode, stub.retry_after = "429", "9"
    try:
        seen = len(stub.requests)
        with pytest.raises(BackendError) as info:
            direct.chat(ASK)
        assert info.value.status == 429 and info.value.retry_after == 9.0  # 9 s does not fit 5 s: not retried
        assert len(stub.requests) - seen == 1
        stub.mode = "500"
        seen = len(stub.requests)
        with pytest.raises(BackendError, match="after 3 attempt"):
            asyncio.run(direct.achat(ASK))
        assert len(stub.requests) - seen == 3
    finally:
        stub.mode, stub.retry_after = "ok", "7"
    with pytest.raises(BackendError, match="server is running"):
        OpenAIHTTPBackend("openai/stub", api_base=f"http://127.0.0.1:{free_port()}/v1", max_retries=0).chat(ASK)
