"""Issue 17 over HTTP, on a real uvicorn server, store (Chroma + SQLite + MiniLM) and a stub upstream: a
correction's reply names what it superseded, a possible conflict is reported, listed and resolved under
/v1/conflicts (write role, per namespace), and a chat follow-up's resolved question is in the agentedit block."""

from __future__ import annotations

import httpx
import pytest

from agentedit.server import KeyStore, ServerConfig, create_app
from server_support import StubUpstream, serving

STUDY = {"prompt": "Ada Quill studied at", "subject": "Ada Quill", "target_new": "Lisbon", "id": "study"}
GRAD = {"prompt": "Ada Quill graduated from", "subject": "Ada Quill", "target_new": "Porto", "id": "grad"}
CEO = {"prompt": "The CEO of Acme Corp is", "subject": "Acme Corp", "target_new": "Alice Smith", "id": "ceo-a"}
NEW_CEO = {"prompt": "Acme Corp's new chief executive is", "subject": "Acme Corp", "target_new": "Bob Jones", "id": "ceo-b"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    stub = StubUpstream("stub answer")
    cfg = ServerConfig(model="openai/stub", api_base=stub.base_url, store="conflicts", namespace="default",
                       store_dir=str(tmp_path_factory.mktemp("stores")), max_retries=0, timeout=10)
    keys = KeyStore(cfg.resolved_keys_path())
    made = {name: keys.create(role=role, namespaces=ns, name=name)[0] for name, role, ns in [
        ("alice", "write", ["alice"]), ("reader", "query", ["alice"]), ("bob", "write", ["bob"])]}
    with serving(create_app(cfg)) as url:
        yield url, made, stub
    keys.close()
    stub.close()


def call(url: str, key: str, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, url + path, headers={"authorization": f"Bearer {key}"}, timeout=60, **kw)


def test_correction_conflict_and_resolution_over_http(env) -> None:
    url, keys, _ = env
    alice = keys["alice"]
    assert call(url, alice, "POST", "/v1/edits", json=CEO).status_code == 201
    r = call(url, alice, "POST", "/v1/edits", json=NEW_CEO)
    assert r.status_code == 201 and r.json()["supersedes"] == "ceo-a" and "conflicts" not in r.json()
    assert call(url, alice, "POST", "/v1/edits", json=STUDY).status_code == 201
    r = call(url, alice, "POST", "/v1/edits", json=GRAD)
    assert r.status_code == 201 and r.json()["supersedes"] is None
    [reported] = r.json()["conflicts"]
    assert reported["edit_id"] == "study" and "same subject" in reported["reason"] and reported["score"] > 0.6
    listed = call(url, alice, "GET", "/v1/conflicts")
    assert listed.status_code == 200
    [c] = listed.json()["data"]
    assert c["id"] == reported["conflict_id"] and c["object"] == "conflict" and c["namespace"] == "alice"
    # a query key may not see or resolve conflicts; another namespace's key does not find this one
    assert call(url, keys["reader"], "GET", "/v1/conflicts").status_code == 403
    assert call(url, keys["bob"], "GET", "/v1/conflicts").json()["data"] == []
    assert call(url, keys["bob"], "POST", f"/v1/conflicts/{c['id']}/resolve", json={"keep": "new"}).status_code == 404
    bad = call(url, alice, "POST", f"/v1/conflicts/{c['id']}/resolve", json={"keep": "neither"})
    assert bad.status_code == 400 and "keep must be" in bad.json()["error"]["message"]
    done = call(url, alice, "POST", f"/v1/conflicts/{c['id']}/resolve", json={"keep": "new"})
    assert done.status_code == 200 and done.json()["resolution"] == "kept:grad"
    assert call(url, alice, "GET", "/v1/edits/study").json()["status"] == "superseded"
    assert call(url, alice, "GET", "/v1/conflicts").json()["data"] == []
    assert len(call(url, alice, "GET", "/v1/conflicts", params={"status": "all"}).json()["data"]) == 1
    again = call(url, alice, "POST", f"/v1/conflicts/{c['id']}/resolve", json={"keep": "new"})
    assert again.status_code == 409


def test_batch_reply_names_supersessions(env) -> None:
    url, keys, _ = env
    bob = keys["bob"]
    assert call(url, bob, "POST", "/v1/edits", json=CEO).status_code == 201
    r = call(url, bob, "POST", "/v1/edits/batch", json={"edits": [NEW_CEO]})
    assert r.status_code == 201 and r.json()["supersedes"] == {"ceo-b": "ceo-a"}


def test_a_chat_follow_up_is_resolved_in_the_proxy(env) -> None:
    url, keys, stub = env
    msgs = [{"role": "user", "content": "Who runs Acme Corp?"}, {"role": "assistant", "content": "Bob Jones runs it."},
            {"role": "user", "content": "Who is the CEO of the company?"}]
    r = call(url, keys["bob"], "POST", "/v1/chat/completions", json={"model": "m", "messages": msgs})
    assert r.status_code == 200
    info = r.json()["agentedit"]
    assert info["resolved_query"] == "Who is the CEO of Acme Corp?" and info["applied"] == ["ceo-b"]
    sent = stub.requests[-1]["messages"]
    assert sent[:2] == msgs[:2]  # after the model's answer the facts lead the last user turn, not a system message
    assert sent[-1]["content"].endswith("\n\nWho is the CEO of the company?") and "Bob Jones" in sent[-1]["content"]
