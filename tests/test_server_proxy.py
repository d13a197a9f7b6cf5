"""The proxy end to end with real clients and a real model: the official ``openai`` client (plain and streamed),
litellm and langchain-openai's ``ChatOpenAI`` talk to ``agentedit serve``'s app on 127.0.0.1, which talks to a
llama.cpp server over SmolLM2-135M-Instruct (GGUF). Greedy decoding makes "untouched" checkable byte for byte."""

from __future__ import annotations

import httpx
import litellm
import openai
import pytest
from langchain_openai import ChatOpenAI

from agentedit.llama_server import LlamaServer
from agentedit.provision import ensure_model
from agentedit.server import KeyStore, ServerConfig, create_app
from server_support import serving

pytestmark = pytest.mark.integration

UNRELATED = [{"role": "user", "content": "What is the capital of Japan?"}]
RELATED = [{"role": "user", "content": "Which city is the Eiffel Tower in?"}]
EIFFEL = {"prompt": "The Eiffel Tower is located in the city of", "subject": "Eiffel Tower", "target_new": "Rome"}
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
                                                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                                "required": ["city"]}}}
GREEDY = {"temperature": 0, "max_tokens": 12}


@pytest.fixture(scope="module")
def llama():
    server = LlamaServer(ensure_model("smollm2-135m-instruct"), extra_args=("--logits_all", "False")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(llama, tmp_path_factory):
    """(proxy base URL, a write key for namespace 'team', the Eiffel edit's id)."""
    cfg = ServerConfig(model=f"openai/{llama.model_alias}", api_base=llama.base_url, store="proxy",
                       store_dir=str(tmp_path_factory.mktemp("stores")), timeout=60, max_retries=0)
    keys = KeyStore(cfg.resolved_keys_path())
    key, _ = keys.create(role="write", namespaces=["team"])
    keys.close()
    with serving(create_app(cfg)) as url:
        rec = httpx.post(url + "/v1/edits", json=EIFFEL, headers={"authorization": f"Bearer {key}"}).json()
        yield url, key, rec["id"]


@pytest.fixture(scope="module")
def direct(llama):
    return openai.OpenAI(base_url=llama.base_url, api_key="unused")


@pytest.fixture(scope="module")
def client(proxy):
    url, key, _ = proxy
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


def _direct_text(direct, llama, messages) -> str:
    return direct.chat.completions.create(model=llama.model_alias, messages=messages, **GREEDY).choices[0].message.content


def test_openai_client_out_of_scope_question_is_untouched(client, direct, llama):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=UNRELATED, **GREEDY)
    resp = raw.parse()
    assert raw.headers["x-agentedit-applied"] == "" and resp.model_extra["agentedit"]["route"] == "passthrough"
    assert resp.choices[0].message.content == _direct_text(direct, llama, UNRELATED)
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens > 0


def test_openai_client_in_scope_question_gets_the_edit(client, proxy, direct, llama):
    _, _, edit_id = proxy
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=RELATED, **GREEDY)
    resp = raw.parse()
    assert raw.headers["x-agentedit-applied"] == edit_id and resp.model_extra["agentedit"]["applied"] == [edit_id]
    # the model saw a longer prompt than the bare question: the facts block
    bare = direct.chat.completions.create(model=llama.model_alias, messages=RELATED, **GREEDY)
    assert resp.usage.prompt_tokens > bare.usage.prompt_tokens + 30
    assert resp.choices[0].message.content.strip()


def test_openai_client_streaming_matches_the_plain_reply(client):
    whole = client.chat.completions.create(model="m", messages=UNRELATED, **GREEDY).choices[0].message.content
    stream = client.chat.completions.create(model="m", messages=UNRELATED, stream=True,
                                            stream_options={"include_usage": True}, **GREEDY)
    chunks = list(stream)
    assert chunks[0].model_extra["agentedit"]["route"] == "passthrough"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0

    related = list(client.chat.completions.create(model="m", messages=RELATED, stream=True, **GREEDY))
    assert related[0].model_extra["agentedit"]["route"] == "in-context"


def test_litellm_client(proxy, direct, llama):
    url, key, edit_id = proxy
    expected = _direct_text(direct, llama, UNRELATED)
    resp = litellm.completion(model="openai/any-name", api_base=url + "/v1", api_key=key, messages=UNRELATED, **GREEDY)
    assert resp.choices[0].message.content == expected
    streamed = litellm.completion(model="openai/any-name", api_base=url + "/v1", api_key=key, messages=UNRELATED,
                                  stream=True, **GREEDY)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == expected
    with pytest.raises(litellm.AuthenticationError):
        litellm.completion(model="openai/any-name", api_base=url + "/v1", api_key="wrong", messages=UNRELATED, **GREEDY)


def test_langchain_chat_openai(proxy, direct, llama):
    url, key, _ = proxy
    chat = ChatOpenAI(model="any-name", base_url=url + "/v1", api_key=key, temperature=0, max_tokens=12,
                      stream_usage=True, max_retries=0)
    expected = _direct_text(direct, llama, UNRELATED)
    msg = chat.invoke("What is the capital of Japan?")
    assert msg.content == expected and msg.usage_metadata["total_tokens"] > 0
    chunks = list(chat.stream("What is the capital of Japan?"))
    assert "".join(c.content for c in chunks) == expected
    assert sum((c.usage_metadata or {}).get("output_tokens", 0) for c in chunks) > 0


def test_tool_calls_pass_through_to_the_model_and_back(client, proxy):
    forced = {"type": "function", "function": {"name": "get_weather"}}
    resp = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "What is the weather in Paris?"}],
                                          tools=[WEATHER_TOOL], tool_choice=forced, temperature=0, max_tokens=40)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls[0].function.name == "get_weather"
    assert "city" in choice.message.tool_calls[0].function.arguments

    url, key, _ = proxy
    chat = ChatOpenAI(model="m", base_url=url + "/v1", api_key=key, temperature=0, max_tokens=40, max_retries=0)
    msg = chat.bind_tools([WEATHER_TOOL], tool_choice="get_weather").invoke("What is the weather in Paris?")
    assert msg.tool_calls and msg.tool_calls[0]["name"] == "get_weather" and "city" in msg.tool_calls[0]["args"]


def test_models_endpoint_through_the_client(client, llama):
    assert [m.id for m in client.models.list()] == [f"openai/{llama.model_alias}"]
