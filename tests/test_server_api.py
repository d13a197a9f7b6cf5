"""The proxy's HTTP API over a real uvicorn server, a real store (Chroma + SQLite + MiniLM) and a stub upstream
on loopback: edits CRUD, batch import, filters, injection into chat, SSE format, bad requests, ops endpoints."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from agentedit.server import ServerConfig, create_app
from server_support import StubUpstream, serving

EIFFEL = {"prompt": "The Eiffel Tower is located in the city of", "subject": "Eiffel Tower", "target_new": "Rome"}
QUESTION = [{"role": "user", "content": "Which city is the Eiffel Tower in?"}]


@pytest.fixture(scope="module")
def stub():
    s = StubUpstream("The answer is Rome")
    yield s
    s.close()


@pytest.fixture(scope="module")
def base(stub, tmp_path_factory):
    cfg = ServerConfig(model="openai/stub", api_base=stub.base_url, store="api",
                       store_dir=str(tmp_path_factory.mktemp("stores")), auth=False, max_retries=0, timeout=10)
    with serving(create_app(cfg)) as url:
        yield url


def client(base: str, namespace: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"x-agentedit-namespace": namespace}, timeout=60)


def test_edit_crud_and_history(base):
    c = client(base, "crud")
    r = c.post("/v1/edits", json=EIFFEL)
    assert r.status_code == 201
    rec = r.json()
    assert rec["object"] == "edit" and rec["namespace"] == "crud" and rec["statement"].endswith("Rome.")
    assert rec["actor"] == "local"
    assert c.get(f"/v1/edits/{rec['id']}").json()["target_new"] == "Rome"

    r = c.patch(f"/v1/edits/{rec['id']}", json={"target_new": "Madrid"})
    assert r.status_code == 200 and r.json()["statement"].endswith("Madrid.")
    r = c.delete(f"/v1/edits/{rec['id']}")
    assert r.status_code == 200 and r.json()["deleted"] is True and r.json()["edit"]["status"] == "retracted"

    assert c.get("/v1/edits").json()["data"] == []
    everything = c.get("/v1/edits", params={"status": "all"}).json()["data"]
    assert [e["id"] for e in everything] == [rec["id"]]
    history = c.get(f"/v1/edits/{rec['id']}/history").json()["data"]
    assert [e["action"] for e in history] == ["add", "update", "delete"]
    assert history[1]["before"]["target_new"] == "Rome" and history[1]["after"]["target_new"] == "Madrid"


def test_edit_errors_name_the_problem(base):
    c = client(base, "errs")
    assert c.post("/v1/edits", json={"statement": "Alice's manager is Bob.", "id": "alice-mgr"}).status_code == 201
    dup = c.post("/v1/edits", json={"statement": "Alice's manager is Carol.", "id": "alice-mgr"})
    assert dup.status_code == 409 and "already exists" in dup.json()["error"]["message"]
    missing = c.get("/v1/edits/nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    empty = c.patch("/v1/edits/alice-mgr", json={})
    assert empty.status_code == 400 and "nothing to change" in empty.json()["error"]["message"]
    unknown = c.post("/v1/edits", json={"statement": "x is y.", "colour": "red"})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "colour"
    blank = c.post("/v1/edits", json={"prompt": "The sky is", "target_new": "   "})
    assert blank.status_code == 400 and "target_new" in blank.json()["error"]["message"]
    # another namespace does not see it
    assert client(base, "errs-other").get("/v1/edits/alice-mgr").status_code == 404
    assert [e["id"] for e in c.get("/v1/edits").json()["data"]] == ["alice-mgr"]


def test_batch_import_is_all_or_nothing(base):
    c = client(base, "batch")
    good = [{"statement": f"Project {i} is led by person {i}.", "subject": f"Project {i}"} for i in range(3)]
    r = c.post("/v1/edits/batch", json={"edits": [*good, {"prompt": "The sky is", "target_new": ""}]})
    assert r.status_code == 400 and "#3" in r.json()["error"]["message"]
    assert c.get("/v1/edits").json()["data"] == []

    r = c.post("/v1/edits/batch", json={"edits": good})
    assert r.status_code == 201 and r.json()["imported"] == 3 and len(r.json()["ids"]) == 3
    assert len(c.get("/v1/edits").json()["data"]) == 3
    assert c.post("/v1/edits/batch", json={"edits": []}).status_code == 400


def test_list_filters_and_paging(base):
    c = client(base, "filters")
    c.post("/v1/edits/batch", json={"edits": [
        {"statement": "Alice's manager is Bob.", "subject": "Alice"},
        {"statement": "Alice works in Lisbon.", "subject": "Alice"},
        {"statement": "Carol's manager is Dan.", "subject": "Carol"},
    ]})
    by_subject = c.get("/v1/edits", params={"subject": "alice"}).json()["data"]
    assert sorted(e["statement"] for e in by_subject) == ["Alice works in Lisbon.", "Alice's manager is Bob."]
    by_text = c.get("/v1/edits", params={"text": "manager"}).json()["data"]
    assert sorted(e["subject"] for e in by_text) == ["Alice", "Carol"]
    page1 = c.get("/v1/edits", params={"limit": 2}).json()
    page2 = c.get("/v1/edits", params={"limit": 2, "offset": 2}).json()
    assert len(page1["data"]) == 2 and page1["has_more"] is True
    assert len(page2["data"]) == 1 and page2["has_more"] is False
    assert {e["id"] for e in page1["data"]}.isdisjoint(e["id"] for e in page2["data"])
    bad = c.get("/v1/edits", params={"limit": 0})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"
    assert c.get("/v1/edits", params={"status": "gone"}).status_code == 400


def test_chat_injects_in_scope_edits_and_reports_them(base, stub):
    c = client(base, "chat")
    rec = c.post("/v1/edits", json=EIFFEL).json()

    r = c.post("/v1/chat/completions", json={"model": "anything", "messages": QUESTION, "temperature": 0.2, "max_tokens": 7})
    assert r.status_code == 200
    assert r.headers["x-agentedit-applied"] == rec["id"] and r.headers["x-agentedit-route"] == "in-context"
    body = r.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"] == "The answer is Rome"
    assert body["usage"]["total_tokens"] == 14
    assert body["agentedit"]["applied"] == [rec["id"]] and body["agentedit"]["namespace"] == "chat"
    assert {"retrieve", "scope", "compose", "upstream"} <= set(body["agentedit"]["timings"])
    sent = stub.requests[-1]
    assert sent["messages"][0]["role"] == "system" and '"The Eiffel Tower is located in the city of Rome."' in sent["messages"][0]["content"]
    assert sent["messages"][1:] == QUESTION
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 7

    unrelated = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the capital of Japan?"}]
    r = c.post("/v1/chat/completions", json={"model": "anything", "messages": unrelated})
    assert r.headers["x-agentedit-applied"] == "" and r.json()["agentedit"]["route"] == "passthrough"
    sent = stub.requests[-1]
    assert sent["messages"] == unrelated  # exactly what the client sent
    assert "temperature" not in sent and "max_tokens" not in sent  # no defaults forced on the client

    # another namespace's question about the same thing gets nothing applied
    r = client(base, "chat-elsewhere").post("/v1/chat/completions", json={"model": "m", "messages": QUESTION})
    assert r.status_code == 200 and r.json()["agentedit"]["applied"] == []


def test_tools_are_passed_through_and_tool_calls_returned(base, stub):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}, "required": ["city"]}}}]
    stub.mode = "tool"
    try:
        r = client(base, "tools").post("/v1/chat/completions", json={
            "model": "m", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": tools, "tool_choice": "auto"})
    finally:
        stub.mode = "ok"
    assert r.status_code == 200
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}
    assert stub.requests[-1]["tools"] == tools and stub.requests[-1]["tool_choice"] == "auto"

    # the tool-result turn reaches the upstream as sent, the assistant's null content included (OpenAI allows it)
    convo = [{"role": "user", "content": "Weather in Paris?"},
             {"role": "assistant", "content": None, "tool_calls": choice["message"]["tool_calls"]},
             {"role": "tool", "tool_call_id": "call_1", "content": "18 C and sunny"}]
    r = client(base, "tools").post("/v1/chat/completions", json={"model": "m", "messages": convo, "tools": tools})
    assert r.status_code == 200 and stub.requests[-1]["messages"] == convo


def _events(response: httpx.Response) -> list[str]:
    return [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]


def test_streaming_uses_the_openai_chunk_format(base):
    c = client(base, "stream")
    rec = c.post("/v1/edits", json=EIFFEL).json()
    with c.stream("POST", "/v1/chat/completions", json={"model": "m", "messages": QUESTION, "stream": True,
                                                          "stream_options": {"include_usage": True}}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-agentedit-applied"] == rec["id"]
        events = _events(r)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(ch["object"] == "chat.completion.chunk" and ch["id"] == chunks[0]["id"] for ch in chunks)
    assert chunks[0]["agentedit"]["applied"] == [rec["id"]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks if ch["choices"])
    assert text == "The answer is Rome"
    assert [ch["choices"][0]["finish_reason"] for ch in chunks if ch["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0

    with c.stream("POST", "/v1/chat/completions", json={"model": "m", "messages": QUESTION, "stream": True}) as r:
        plain = [json.loads(e) for e in _events(r)[:-1]]
    assert all("usage" not in ch for ch in plain)  # usage only when asked for, as OpenAI does


def test_bad_requests_get_clear_4xx_and_write_nothing(base):
    c = client(base, "bad")
    c.post("/v1/edits", json={"statement": "Alice's manager is Bob."})

    def err(r: httpx.Response, status: int) -> dict:
        assert r.status_code == status, r.text
        return r.json()["error"]

    assert "not valid JSON" in err(c.post("/v1/chat/completions", content=b'{"model": "m", "messages": [',
                                          headers={"content-type": "application/json"}), 400)["message"]
    assert err(c.post("/v1/chat/completions", json={"model": "m"}), 400)["param"] == "messages"
    assert err(c.post("/v1/chat/completions", json={"messages": QUESTION}), 400)["param"] == "model"
    assert err(c.post("/v1/chat/completions", json={"model": "m", "messages": []}), 400)["param"] == "messages"
    assert err(c.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "wizard", "content": "hi"}]}),
               400)["param"] == "messages.0.role"
    assert err(c.post("/v1/chat/completions", json={"model": "m", "messages": QUESTION, "temperature": "hot"}),
               400)["param"] == "temperature"
    assert err(c.post("/v1/chat/completions", json={"model": "m", "messages": QUESTION, "n": 2}), 400)["param"] == "n"
    assert "JSON object" in err(c.post("/v1/chat/completions", json=[1, 2]), 400)["message"]
    assert err(c.post("/v1/edits", json={"statement": 42}), 400)["param"] == "statement"
    assert "namespace" in err(client(base, "../etc").get("/v1/edits"), 400)["message"]

    big = b'{"model": "m", "messages": [{"role": "user", "content": "' + b"x" * (10 * 1024 * 1024) + b'"}]}'
    for path in ("/v1/chat/completions", "/v1/edits", "/v1/edits/batch"):
        assert "larger than" in err(c.post(path, content=big, headers={"content-type": "application/json"}), 413)["message"]

    def chunked():  # no content-length: the limit holds while reading
        for _ in range(11):
            yield b"x" * (1024 * 1024)

    assert err(c.post("/v1/edits/batch", content=chunked(), headers={"content-type": "application/json"}), 413)
    assert [e["statement"] for e in c.get("/v1/edits").json()["data"]] == ["Alice's manager is Bob."]
    assert err(c.get("/v1/nothing-here"), 404)["type"] == "not_found_error"
    assert err(c.put("/v1/edits"), 405)


def test_models_openapi_health_and_metrics(base):
    c = client(base, "ops")
    models = c.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == "openai/stub"
    spec = c.get("/openapi.json").json()
    assert {"/v1/chat/completions", "/v1/models", "/v1/edits", "/v1/edits/batch", "/v1/edits/{edit_id}",
            "/v1/edits/{edit_id}/history", "/healthz", "/metrics"} <= set(spec["paths"])
    health = c.get("/healthz").json()
    assert health["status"] == "ok" and health["auth"] is False and health["store"] == "api"

    c.post("/v1/edits", json={"statement": "Ops runs on Kubernetes.", "subject": "Ops"})
    c.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "What does Ops run on?"}]})
    text = c.get("/metrics").text
    assert 'agentedit_http_requests_total{method="POST",route="/v1/edits",status="201"}' in text
    assert 'agentedit_active_edits{namespace="ops"} 1.0' in text
    assert "agentedit_prepare_seconds_count" in text and "agentedit_chat_completions_total" in text


def test_no_auth_is_refused_off_loopback(tmp_path: Path):
    from agentedit.errors import ConfigError

    with pytest.raises(ConfigError, match="loopback"):
        ServerConfig(auth=False, host="0.0.0.0", store_dir=str(tmp_path)).validate()
    assert ServerConfig(auth=False, host="::1").validate().auth is False
