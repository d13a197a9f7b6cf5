"""What a hostile or careless client can send the proxy, over a real uvicorn server and a stub upstream: lone
surrogates (400 naming the field, the keep-alive connection still usable), a foreign ``Host`` in no-auth mode
(DNS rebinding: 421), OpenAI and unknown chat parameters (forwarded, never able to redirect the call), logprobs
and ``system_fingerprint`` coming back, request ids, and an unexpected failure that does not reset the connection."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from typer.testing import CliRunner

from agentedit.cli import app as cli_app
from agentedit.errors import ConfigError
from agentedit.server import ServerConfig, create_app
from agentedit.server.guards import HostCheck, host_name
from server_support import StubUpstream, serving

ASK = {"model": "m", "messages": [{"role": "user", "content": "Which city is the Eiffel Tower in?"}]}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def stub():
    s = StubUpstream()
    yield s
    s.close()


@pytest.fixture(scope="module")
def served(stub, tmp_path_factory):
    cfg = ServerConfig(model="openai/stub", api_base=stub.base_url, store="hard",
                       store_dir=str(tmp_path_factory.mktemp("stores")), auth=False, max_retries=0, timeout=10)
    app = create_app(cfg)
    with serving(app) as url:
        yield url, app


def _local_port(r: httpx.Response) -> int:
    return r.extensions["network_stream"].get_extra_info("client_addr")[1]


def test_lone_surrogates_get_a_400_naming_the_field_and_the_connection_stays_usable(served):
    url, _ = served
    with httpx.Client(base_url=url, timeout=60) as c:
        first = c.post("/v1/edits", json={"statement": "Alice's manager is Bob.", "id": "alice"})
        assert first.status_code == 201
        cases = [
            ("POST", "/v1/chat/completions", b'{"model":"m","messages":[{"role":"user","content":"hi \\ud800 there"}]}',
             "messages.0.content"),
            ("POST", "/v1/chat/completions", b'{"model":"m","messages":[{"role":"user","content":"x"}],"user":"\\udfff"}',
             "user"),
            ("POST", "/v1/edits", b'{"statement":"Alice\'s manager is \\udc00Bob."}', "statement"),
            ("POST", "/v1/edits", b'{"statement":"Alice\'s manager is \xed\xa0\x80Bob."}', "statement"),  # raw bytes
            ("POST", "/v1/edits/batch", b'{"edits":[{"statement":"A is B."},{"prompt":"C is","target_new":"\\ud83d"}]}',
             "edits.1.target_new"),
            ("PATCH", "/v1/edits/alice", b'{"target_new":"Bo\\udc00b"}', "target_new"),
            ("POST", "/v1/edits", b'{"statement":"x is y.","metadata":{"k\\ud800":"v"}}', "metadata.k\\ud800"),
        ]
        for method, path, raw, param in cases:
            r = c.request(method, path, content=raw, headers=JSON)
            assert r.status_code == 400, (path, r.text)
            err = r.json()["error"]
            assert err["param"] == param and err["code"] == "invalid_unicode" and "surrogate" in err["message"]
            assert r.headers.get("connection") != "close"
            after = c.get("/v1/edits")  # the same keep-alive connection answers the next request
            assert after.status_code == 200 and _local_port(after) == _local_port(first)
        assert [e["statement"] for e in after.json()["data"]] == ["Alice's manager is Bob."]
        for raw, param in [(b'{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":NaN}', None),
                           (b'{"statement":"x is y.","metadata":{"n":-Infinity}}', None)]:
            r = c.post("/v1/chat/completions" if b"messages" in raw else "/v1/edits", content=raw, headers=JSON)
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json", r.text
        for content, param in [([{"type": "image_url"}], "messages.0.content"), ([{"a": 1}], "messages.0.content"),
                               ([{"type": "refusal", "refusal": "no"}], "messages.0")]:  # litellm would fail on these
            r = c.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": content}]})
            assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
        ok = c.post("/v1/edits", content=b'{"statement":"Carol likes \\ud83d\\ude00 emoji."}', headers=JSON)
        assert ok.status_code == 201 and "\U0001F600" in ok.json()["statement"]  # a surrogate pair is fine
        assert c.post("/v1/chat/completions", json=ASK).status_code == 200 and _local_port(ok) == _local_port(first)


def test_an_unexpected_failure_is_a_500_with_a_request_id_and_keeps_the_connection(served):
    url, app = served
    editor = app.state.agentedit.editor
    original = editor.prepare_chat

    def broken(*args, **kwargs):
        raise RuntimeError("boom at /secret/path")

    with httpx.Client(base_url=url, timeout=60) as c:
        editor.prepare_chat = broken
        try:
            r = c.post("/v1/chat/completions", json=ASK, headers={"x-request-id": "trace-42"})
        finally:
            editor.prepare_chat = original
        assert r.status_code == 500 and r.headers["x-request-id"] == "trace-42"
        message = r.json()["error"]["message"]
        assert "trace-42" in message and "/secret/path" not in message
        again = c.post("/v1/chat/completions", json=ASK, headers={"x-request-id": "bad id with spaces"})
        assert again.status_code == 200 and _local_port(again) == _local_port(r)
        assert again.headers["x-request-id"].startswith("req_")
        missing = c.get("/v1/edits/nope")
        assert missing.status_code == 404 and "'hard'" not in missing.json()["error"]["message"]  # no store name


def test_no_auth_answers_only_requests_addressed_to_loopback(served):
    url, _ = served
    port = url.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost", "LOCALHOST:1"):
        r = httpx.get(url + "/v1/edits", headers={"host": host})
        assert r.status_code == 200, host
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.io", "[::2]:80"):
        r = httpx.get(url + "/v1/edits", headers={"host": host})
        assert r.status_code == 421 and r.json()["error"]["code"] == "host_not_allowed", host
        assert "--allowed-hosts" in r.json()["error"]["message"]
    r = httpx.post(url + "/v1/edits", json={"statement": "Rebinding wrote this."}, headers={"host": "evil.example"})
    assert r.status_code == 421
    assert all("Rebinding" not in e["statement"] for e in httpx.get(url + "/v1/edits").json()["data"])


def test_allowed_hosts_patterns():
    async def hello(request):
        return PlainTextResponse("hi")

    def call(allowed, loopback_only, host):
        app = HostCheck(Starlette(routes=[Route("/", hello)]), allowed=allowed, loopback_only=loopback_only)
        return TestClient(app).get("/", headers={"host": host}).status_code

    allowed = ["api.example.com", "*.corp.example"]
    assert call(allowed, False, "api.example.com:443") == 200 and call(allowed, False, "a.b.corp.example") == 200
    assert call(allowed, False, "localhost:8000") == 200  # loopback names always
    assert call(allowed, False, "evil.example") == 421 and call(allowed, False, "corp.example.evil") == 421
    assert call(None, False, "anything.example") == 200  # auth on, no list: keys protect it
    assert call(None, True, "anything.example") == 421 and call(["*"], True, "anything.example") == 200
    assert host_name("[::1]:8000") == "[::1]" and host_name("Example.COM:80") == "example.com"


def test_allowed_hosts_option(tmp_path):
    cfg = ServerConfig(store_dir=str(tmp_path), allowed_hosts=["a.example, *.b.example", "c.example"]).validate()
    assert cfg.allowed_hosts == ["a.example", "*.b.example", "c.example"]
    assert ServerConfig(store_dir=str(tmp_path)).allowed_hosts is None
    with pytest.raises(ConfigError, match="allowed-hosts"):
        ServerConfig(store_dir=str(tmp_path), allowed_hosts=["http://a.example/"]).validate()
    r = CliRunner().invoke(cli_app, ["--store-dir", str(tmp_path), "serve", "--allowed-hosts", "https://x:1",
                                     "--model", "openai/x", "--api-base", "http://127.0.0.1:9/v1"])
    assert isinstance(r.exception, ConfigError) and "allowed-hosts" in str(r.exception)


def test_openai_parameters_pass_through_and_unknown_ones_go_in_the_body(served, stub):
    url, _ = served
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    resp = client.chat.completions.create(
        model="m", messages=ASK["messages"], user="u-1", metadata={"team": "search"}, store=False, seed=7,
        logit_bias={"50256": -100}, logprobs=True, top_logprobs=2, service_tier="auto", reasoning_effort="low",
        extra_body={"top_k": 40, "min_p": 0.05, "api_base": "http://127.0.0.1:9/v1", "mock_response": "hijacked"})
    sent = stub.requests[-1]
    expected = {"user": "u-1", "metadata": {"team": "search"}, "store": False, "seed": 7, "logit_bias": {"50256": -100},
                "logprobs": True, "top_logprobs": 2, "service_tier": "auto", "reasoning_effort": "low", "top_k": 40,
                "min_p": 0.05, "api_base": "http://127.0.0.1:9/v1", "mock_response": "hijacked"}
    assert {k: sent.get(k) for k in expected} == expected  # all of them reach the upstream, as data
    assert resp.choices[0].message.content == "stub reply"  # and none of them redirected or faked the call
    assert resp.system_fingerprint == "fp_stub" and resp.choices[0].logprobs.content[0].token == "stub"
    assert resp.choices[0].logprobs.content[0].logprob == -0.25

    stream = client.chat.completions.create(model="m", messages=ASK["messages"], logprobs=True, stream=True)
    chunks = list(stream)
    assert {ch.system_fingerprint for ch in chunks} == {"fp_stub"}
    assert any(ch.choices and ch.choices[0].logprobs and ch.choices[0].logprobs.content for ch in chunks)
    bad = httpx.post(url + "/v1/chat/completions", json={**ASK, "metadata": {"k": 1}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "metadata.k"


def test_health_of_a_no_auth_server_shows_the_details(served):
    url, _ = served
    health = httpx.get(url + "/healthz").json()
    assert health["status"] == "ok" and health["store"] == "hard" and "active_edits" in health
    assert json.loads(httpx.get(url + "/healthz").text) == health
