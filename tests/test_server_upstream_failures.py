"""Upstream failures through the proxy: connection refused, 5xx, a malformed reply, a timeout. Each becomes an
OpenAI-shaped error with the right status after bounded retries, and the edit memory is left as it was."""

from __future__ import annotations

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
    assert err["code"] == code and err["type"] in ("upstream_error", "upstream_timeout")
    return err["message"]


def test_connection_refused_is_a_502_and_memory_is_untouched(tmp_path):
    with proxy(tmp_path, f"http://127.0.0.1:{free_port()}/v1", retries=1) as c:
        before = _snapshot(c)
        started = time.monotonic()
        message = _assert_error(c.post("/v1/chat/completions", json=ASK), 502, "upstream_error")
        assert "after 2 attempt(s)" in message and "server is running" in message
        assert time.monotonic() - started < 10
        _assert_error(c.post("/v1/chat/completions", json={**ASK, "stream": True}), 502, "upstream_error")
        assert _snapshot(c) == before
        assert 'agentedit_upstream_errors_total{status="502"} 2.0' in c.get("/metrics").text


def test_upstream_5xx_is_retried_a_bounded_number_of_times(tmp_path, stub):
    stub.mode = "500"
    try:
        with proxy(tmp_path, stub.base_url, retries=2) as c:
            before, seen = _snapshot(c), len(stub.requests)
            message = _assert_error(c.post("/v1/chat/completions", json=ASK), 502, "upstream_error")
            assert len(stub.requests) - seen == 3  # one try + two retries, then give up
            assert "after 3 attempt(s)" in message
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
            assert time.monotonic() - started < 3.5 and "longer than 1s" in message
    finally:
        stub.mode = "ok"


def test_openai_client_sees_the_error_status_and_message(tmp_path):
    with proxy(tmp_path, f"http://127.0.0.1:{free_port()}/v1") as c:
        client = openai.OpenAI(base_url=str(c.base_url) + "/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="m", messages=ASK["messages"])
        assert info.value.status_code == 502 and "upstream model failed" in info.value.message
