"""Upstream failures through the proxy: connection refused, 5xx, 429/503 with retry-after, a malformed reply or
stream, a stream cut short, a timeout, a client that goes away. Each becomes an OpenAI-shaped error with the right
status after bounded retries (never naming the upstream's address or the store), and the edit memory is left as it
was."""

from __future__ import annotations

import json
import socket
import time
from contextlib import contextmanager
from typing import Iterator

import httpx
import openai
import pytest

from agentedit.server import ServerConfig, create_app
from server_support import StubUpstream, free_port, serving

ASK = {"model": "m", "messages": [{"role": "user", "content": "Which city is the Eiffel Tower in?"}], "max_tokens": 8}
EIFFEL = {"prompt": "The Eiffel Tower is located in the city of", "subject": "Eiffel Tower", "target_new": "Rome"}


@pytest.fixture(scope="module")
def stub():
    s = StubUpstream()
    yield s
    s.close()


@contextmanager
def proxy(tmp_path, api_base: str, *, retries: int = 0, timeout: float = 10.0) -> Iterator[httpx.Client]:
    cfg = ServerConfig(model="openai/stub", api_base=api_base, store="up", store_dir=str(tmp_path), auth=False,
                       max_retries=retries, timeout=timeout)
    with serving(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=60) as c:
        c.post("/v1/edits", json=EIFFEL).raise_for_status()
        yield c


def _snapshot(c: httpx.Client) -> list[dict]:
    return c.get("/v1/edits", params={"status": "all"}).json()["data"]


def _assert_error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["type"] in ("upstream_error", "upstream_timeout", "rate_limit_error",
                                                   "upstream_unavailable")
    # a generic message with the request id: no upstream address, no store name
    assert r.headers["x-request-id"] in err["message"] and "127.0.0.1" not in err["message"]
    assert "'up'" not in err["message"] and "openai/stub" not in err["message"]
    return err["message"]


def test_connection_refused_is_a_502_and_memory_is_untouched(tmp_path, caplog):
    with proxy(tmp_path, f"http://127.0.0.1:{free_port()}/v1", retries=1) as c:
        before = _snapshot(c)
        started = time.monotonic()
        r = c.post("/v1/chat/completions", json=ASK)
        message = _assert_error(r, 502, "upstream_error")
        assert "could not be reached" in message
        logged = [rec.getMessage() for rec in caplog.records if r.headers["x-request-id"] in rec.getMessage()]
        assert any("after 2 attempt(s)" in m and "server is running" in m for m in logged)  # the details: in the log
        assert time.monotonic() - started < 10
        _assert_error(c.post("/v1/chat/completions", json={**ASK, "stream": True}), 502, "upstream_error")
        assert _snapshot(c) == before
        assert 'agentedit_upstream_errors_total{status="502"} 2.0' in c.get("/metrics").text


def test_upstream_5xx_is_retried_a_bounded_number_of_times(tmp_path, stub):
    stub.mode = "500"
    try:
        with proxy(tmp_path, stub.base_url, retries=2) as c:
            before, seen = _snapshot(c), len(stub.requests)
            _assert_error(c.post("/v1/chat/completions", json=ASK), 502, "upstream_error")
            assert len(stub.requests) - seen == 3  # one try + two retries, then give up
            seen = len(stub.requests)
            _assert_error(c.post("/v1/chat/completions", json={**ASK, "stream": True}), 502, "upstream_error")
            assert len(stub.requests) - seen == 3
            assert _snapshot(c) == before
    finally:
        stub.mode = "ok"


def test_malformed_upstream_reply_is_a_502(tmp_path, stub):
    stub.mode = "garbage"
    try:
        with proxy(tmp_path, stub.base_url) as c:
            before = _snapshot(c)
            _assert_error(c.post("/v1/chat/completions", json=ASK), 502, "upstream_error")
            assert _snapshot(c) == before
    finally:
        stub.mode = "ok"


def test_upstream_timeout_is_a_504(tmp_path, stub):
    stub.mode, stub.delay = "slow", 4.0
    try:
        with proxy(tmp_path, stub.base_url, timeout=1.0) as c:
            started = time.monotonic()
            message = _assert_error(c.post("/v1/chat/completions", json=ASK), 504, "upstream_timeout")
            assert time.monotonic() - started < 3.5 and "did not answer in time" in message
    finally:
        stub.mode = "ok"


def test_openai_client_sees_the_error_status_and_message(tmp_path):
    with proxy(tmp_path, f"http://127.0.0.1:{free_port()}/v1") as c:
        client = openai.OpenAI(base_url=str(c.base_url) + "/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="m", messages=ASK["messages"])
        assert info.value.status_code == 502 and "upstream model could not be reached" in info.value.message


def test_upstream_429_passes_through_with_its_retry_after(tmp_path, stub):
    stub.mode, stub.retry_after = "429", "7"
    try:
        with proxy(tmp_path, stub.base_url, retries=2, timeout=5.0) as c:
            seen, started = len(stub.requests), time.monotonic()
            r = c.post("/v1/chat/completions", json=ASK)
            _assert_error(r, 429, "upstream_rate_limited")
            assert r.headers["retry-after"] == "7" and r.json()["error"]["type"] == "rate_limit_error"
            # waiting 7 s does not fit the call's 5 s budget: no retry, the client learns when to come back
            assert len(stub.requests) - seen == 1 and time.monotonic() - started < 3
            streamed = c.post("/v1/chat/completions", json={**ASK, "stream": True})
            assert streamed.status_code == 429 and streamed.headers["retry-after"] == "7"
            client = openai.OpenAI(base_url=str(c.base_url) + "/v1", api_key="unused", max_retries=0)
            with pytest.raises(openai.RateLimitError) as info:
                client.chat.completions.create(model="m", messages=ASK["messages"])
            assert info.value.status_code == 429 and info.value.response.headers["retry-after"] == "7"
            stub.mode, stub.retry_after = "503", "3"
            r = c.post("/v1/chat/completions", json=ASK)
            _assert_error(r, 503, "upstream_unavailable")
            assert r.headers["retry-after"] == "3"
    finally:
        stub.mode, stub.retry_after = "ok", "7"


def test_retry_waits_the_upstreams_retry_after_when_it_fits(tmp_path, stub):
    stub.script, stub.retry_after = ["429", "ok"], "1"
    try:
        with proxy(tmp_path, stub.base_url, retries=2, timeout=10.0) as c:
            seen, started = len(stub.requests), time.monotonic()
            r = c.post("/v1/chat/completions", json=ASK)
            assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "stub reply"
            assert len(stub.requests) - seen == 2 and time.monotonic() - started >= 1.0  # waited as asked
    finally:
        stub.script, stub.retry_after = [], "7"


def _events(r: httpx.Response) -> list[str]:
    return [line[len("data: "):] for line in r.iter_lines() if line.startswith("data: ")]


def test_invalid_streams_are_upstream_errors_never_empty_answers(tmp_path, stub):
    try:
        with proxy(tmp_path, stub.base_url) as c:
            for mode in ("garbage", "empty_stream"):  # nothing valid came: an error status before any byte
                stub.mode = mode
                r = c.post("/v1/chat/completions", json={**ASK, "stream": True})
                _assert_error(r, 502, "upstream_error")
            stub.mode = "cut_stream"  # chunks, then the connection closes: an in-band error, no [DONE]
            with c.stream("POST", "/v1/chat/completions", json={**ASK, "stream": True}) as r:
                assert r.status_code == 200
                events = _events(r)
            assert "[DONE]" not in events
            last = json.loads(events[-1])
            assert last["error"]["code"] == "upstream_error" and "127.0.0.1" not in last["error"]["message"]
            assert "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1]) == "stub"
            client = openai.OpenAI(base_url=str(c.base_url) + "/v1", api_key="unused", max_retries=0)
            with pytest.raises(openai.APIError):
                for _ in client.chat.completions.create(model="m", messages=ASK["messages"], stream=True):
                    pass
    finally:
        stub.mode = "ok"


def _abandoned_request(base_url: str, body: dict) -> socket.socket:
    """A chat request on a raw socket, so that the test can close the connection while the proxy works on it."""
    port = int(base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    data = json.dumps(body).encode()
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    return sock


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_goes_away_cancels_the_upstream_call_and_its_retries(tmp_path, stub, stream):
    stub.mode, stub.delay = "slow", 3.0
    try:
        with proxy(tmp_path, stub.base_url, retries=2, timeout=1.0) as c:
            seen = len(stub.requests)
            sock = _abandoned_request(str(c.base_url), {**ASK, "stream": stream})
            deadline = time.monotonic() + 20
            while len(stub.requests) == seen and time.monotonic() < deadline:  # the proxy is waiting on the stub
                time.sleep(0.02)
            sock.close()
            # without cancellation the 1 s timeout and two retries would have reached the stub twice more by now
            time.sleep(3.5)
            assert len(stub.requests) - seen == 1
            label = str(stream).lower()
            assert f'agentedit_upstream_cancelled_total{{stream="{label}"}} 1.0' in c.get("/metrics").text
            assert c.post("/v1/edits", json={"statement": "The proxy is still up."}).status_code == 201
    finally:
        stub.mode = "ok"


def test_a_client_that_leaves_mid_stream_closes_the_upstream_stream(tmp_path, stub):
    stub.mode, stub.delay = "drip", 6.0
    try:
        with proxy(tmp_path, stub.base_url) as c:
            before = stub.closed_early
            with c.stream("POST", "/v1/chat/completions", json={**ASK, "stream": True}) as r:
                first = next(line for line in r.iter_lines() if line.startswith("data: "))
                assert json.loads(first[len("data: "):])["choices"][0]["delta"]["role"] == "assistant"
            # leaving the block closes the connection half-way; the proxy closes its upstream stream at once
            deadline = time.monotonic() + 4
            while stub.closed_early == before and time.monotonic() < deadline:
                time.sleep(0.05)
            assert stub.closed_early == before + 1
            assert 'agentedit_upstream_cancelled_total{stream="true"} 1.0' in c.get("/metrics").text
    finally:
        stub.mode = "ok"
