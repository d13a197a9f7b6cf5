"""Fuzzed request bodies against a real proxy (uvicorn, store, stub upstream): random JSON values and random text
(lone surrogates, control characters, huge and non-finite numbers, nested junk), shaped like chat and edit bodies
or not at all. The server answers 2xx or 4xx, never 5xx, errors come in the OpenAI shape, and it stays up."""

from __future__ import annotations

import json
import tempfile
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentedit.server import ServerConfig, create_app
from server_support import StubUpstream, serving

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# any code point, lone surrogates included (Hypothesis leaves them out unless asked)
TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
CONTROL = st.text(st.characters(max_codepoint=0x9F), max_size=10)
NUMBERS = st.integers(min_value=-(10**40), max_value=10**40) | st.floats(allow_nan=True, allow_infinity=True)
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT | CONTROL
JUNK = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=12)


def _mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` nine times in ten, else junk: bodies get past validation often enough to reach the upstream."""
    return st.integers(0, 9).flatmap(lambda n: JUNK if n == 9 else valid)  # Hypothesis favours small numbers


ROLES = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function"])
PART = st.fixed_dictionaries({"type": _mostly(st.sampled_from(["text", "image_url", "input_audio", "file", "refusal",
                                                                "video"]))},
                             optional={k: _mostly(TEXT | st.dictionaries(TEXT, TEXT, max_size=2))
                                       for k in ("text", "image_url", "input_audio", "file", "refusal")})
MESSAGE = st.fixed_dictionaries({"role": _mostly(ROLES), "content": _mostly(TEXT | st.lists(PART, max_size=3))},
                                optional={"name": _mostly(TEXT), "tool_calls": _mostly(st.lists(st.dictionaries(TEXT, JUNK, max_size=3),
                                                                                          max_size=2)),
                                          "tool_call_id": _mostly(TEXT)})
OBJECT = st.dictionaries(TEXT, JUNK, max_size=3)
CHAT_PARAMS = {  # the right types with any content, plus parameters the proxy does not know (forwarded as data)
    "temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "max_tokens": st.integers(1, 10**40),
    "max_completion_tokens": st.integers(1, 10**6), "stop": TEXT | st.lists(TEXT, max_size=3),
    "seed": st.integers(-(10**40), 10**40), "logit_bias": st.dictionaries(TEXT, st.floats(-100, 100), max_size=3),
    "logprobs": st.booleans(), "top_logprobs": st.integers(0, 20), "tools": st.lists(OBJECT, max_size=2),
    "tool_choice": TEXT | OBJECT, "response_format": OBJECT, "user": TEXT, "metadata": st.dictionaries(TEXT, TEXT, max_size=3),
    "store": st.booleans(), "n": st.just(1), "stream": st.booleans(), "stream_options": st.fixed_dictionaries(
        {}, optional={"include_usage": st.booleans()}), "parallel_tool_calls": st.booleans(), "reasoning_effort": TEXT,
    "top_k": JUNK, "min_p": JUNK, "extra_body": JUNK, "x-unknown": JUNK,
}
CHAT = _mostly(st.fixed_dictionaries(
    {"model": _mostly(st.just("m")), "messages": _mostly(st.lists(MESSAGE, min_size=1, max_size=3))},
    optional={p: _mostly(v) for p, v in CHAT_PARAMS.items()}))
EDIT_TEXT = ("prompt", "target_new", "subject", "statement", "target_old")
WHEN = st.sampled_from(["2026-01-31", "2026-01-31T12:00:00Z", "1999-12-31T23:59:59+02:00"]) | TEXT
EDIT_MORE = {"metadata": _mostly(OBJECT), "aliases": _mostly(st.lists(TEXT, max_size=3)), "valid_from": _mostly(WHEN),
             "valid_until": _mostly(WHEN), "id": _mostly(st.from_regex(r"[A-Za-z0-9_.:-]{1,40}", fullmatch=True) | TEXT)}
EDIT = _mostly(st.one_of(
    st.fixed_dictionaries({"statement": _mostly(TEXT)},
                          optional={**{f: _mostly(TEXT) for f in EDIT_TEXT if f != "statement"}, **EDIT_MORE}),
    st.fixed_dictionaries({"prompt": _mostly(TEXT), "target_new": _mostly(TEXT)},
                          optional={**{f: _mostly(TEXT) for f in EDIT_TEXT if f not in ("prompt", "target_new")},
                                    **EDIT_MORE})))
ENCODING = st.sampled_from(["ascii", "utf-8"])  # escapes (\ud800), or raw bytes (surrogates as CESU bytes)


def _encode(value: Any, encoding: str) -> bytes:
    if encoding == "ascii":
        return json.dumps(value).encode("ascii")
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def client():
    stub = StubUpstream()
    with tempfile.TemporaryDirectory() as stores:
        cfg = ServerConfig(model="openai/stub", api_base=stub.base_url, store="fuzz", store_dir=stores, auth=False,
                           max_retries=0, timeout=10)
        with serving(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=60) as c:
            yield c
    stub.close()


def _check(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:500], r.request.content[:300])
    if r.status_code >= 400:
        err = r.json()["error"]
        assert isinstance(err["message"], str) and err["message"] and {"type", "param", "code"} <= set(err)
    elif r.headers.get("content-type", "").startswith("text/event-stream"):
        assert r.text.rstrip().endswith("data: [DONE]"), r.text[-300:]


@FUZZ
@given(body=CHAT, encoding=ENCODING)
def test_fuzzed_chat_bodies_never_get_a_5xx(client: httpx.Client, body: Any, encoding: str) -> None:
    _check(client.post("/v1/chat/completions", content=_encode(body, encoding), headers={"content-type": "application/json"}))


@FUZZ
@given(body=EDIT, batch=st.booleans(), encoding=ENCODING)
def test_fuzzed_edit_bodies_never_get_a_5xx(client: httpx.Client, body: Any, batch: bool, encoding: str) -> None:
    path, sent = ("/v1/edits/batch", {"edits": [body]}) if batch else ("/v1/edits", body)
    r = client.post(path, content=_encode(sent, encoding), headers={"content-type": "application/json"})
    _check(r)
    if r.status_code == 201 and not batch:  # and a change to what was stored
        _check(client.patch(f"/v1/edits/{r.json()['id']}", content=_encode(body, encoding),
                            headers={"content-type": "application/json"}))


def test_the_server_is_still_up_after_fuzzing(client: httpx.Client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}).status_code == 200
