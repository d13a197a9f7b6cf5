"""Store guarantees over HTTP (a real uvicorn server, a real store, a stub upstream): versions as ETags, If-Match
(412 naming the current version, nothing written), 409 for a change that lost a race, the conflict policy on
PATCH, and edit ids scoped per namespace (two keys bound to two namespaces)."""

from __future__ import annotations

import httpx
import pytest

from agentedit.server import KeyStore, ServerConfig, create_app
from server_support import StubUpstream, serving
from store_support import together

MGR = {"prompt": "Alice's manager is", "subject": "Alice", "target_new": "Bob"}
CITY = {"prompt": "Alice works in", "subject": "Alice", "target_new": "Lyon"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    stub = StubUpstream()
    cfg = ServerConfig(model="openai/stub", api_base=stub.base_url, store="versions", namespace="default",
                       store_dir=str(tmp_path_factory.mktemp("stores")), max_retries=0, timeout=10)
    keys = KeyStore(cfg.resolved_keys_path())
    made = {ns: keys.create(role="write", namespaces=[ns], name=ns)[0] for ns in ("tenant-a", "tenant-b", "plain")}
    with serving(create_app(cfg)) as url:
        clients = {ns: httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=60)
                   for ns, key in made.items()}
        yield clients
        for c in clients.values():
            c.close()
    keys.close()
    stub.close()


def _history(c: httpx.Client, edit_id: str) -> list[dict]:
    return c.get(f"/v1/edits/{edit_id}/history").json()["data"]


def test_versions_are_etags_and_if_match_guards_changes(env):
    c = env["plain"]
    made = c.post("/v1/edits", json={**MGR, "id": "mgr"})
    assert made.status_code == 201 and made.headers["etag"] == '"1"' and made.json()["version"] == 1
    assert c.get("/v1/edits/mgr").headers["etag"] == '"1"'

    ok = c.patch("/v1/edits/mgr", json={"target_new": "Carol"}, headers={"if-match": '"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"2"' and ok.json()["version"] == 2

    stale = c.patch("/v1/edits/mgr", json={"target_new": "Dan"}, headers={"if-match": '"1"'})
    err = stale.json()["error"]
    assert stale.status_code == 412 and err["code"] == "version_conflict" and stale.headers["etag"] == '"2"'
    assert "at version 2, not 1" in err["message"]
    assert c.delete("/v1/edits/mgr", headers={"if-match": "1"}).status_code == 412  # unquoted works too
    assert c.get("/v1/edits/mgr").json()["target_new"] == "Carol"  # nothing was written
    assert [e["action"] for e in _history(c, "mgr")] == ["add", "update"]

    bad = c.patch("/v1/edits/mgr", json={"target_new": "Dan"}, headers={"if-match": "latest"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "If-Match"
    assert c.patch("/v1/edits/mgr", json={"target_new": "Eve"}, headers={"if-match": "*"}).headers["etag"] == '"3"'

    gone = c.delete("/v1/edits/mgr", headers={"if-match": 'W/"3"'})
    assert gone.status_code == 200 and gone.headers["etag"] == '"4"' and gone.json()["edit"]["version"] == 4


def test_changes_to_an_edit_no_longer_active_are_409(env):
    c = env["plain"]
    c.post("/v1/edits", json={**CITY, "id": "city"})
    assert c.delete("/v1/edits/city").status_code == 200
    late_patch = c.patch("/v1/edits/city", json={"target_new": "Nice"})
    late_delete = c.delete("/v1/edits/city")
    assert late_patch.status_code == 409 and late_patch.json()["error"]["code"] == "edit_conflict"
    assert "retracted" in late_patch.json()["error"]["message"]
    assert late_delete.status_code == 409 and "already retracted" in late_delete.json()["error"]["message"]
    assert c.get("/v1/edits/city").json()["status"] == "retracted"  # never revived


def test_patch_onto_another_edits_subject_and_relation_supersedes_it(env):
    c = env["plain"]
    c.post("/v1/edits", json={**MGR, "subject": "Zoe", "prompt": "Zoe's manager is", "id": "zoe-mgr"})
    c.post("/v1/edits", json={"prompt": "Zoe works in", "subject": "Zoe", "target_new": "Oslo", "id": "zoe-city"})
    moved = c.patch("/v1/edits/zoe-city", json={"prompt": "Zoe's manager is", "target_new": "Yan"})
    assert moved.status_code == 200 and moved.json()["supersedes"] == "zoe-mgr"
    old = c.get("/v1/edits/zoe-mgr").json()
    assert old["status"] == "superseded" and old["superseded_by"] == "zoe-city" and old["version"] == 2
    active = [e["id"] for e in c.get("/v1/edits", params={"subject": "Zoe"}).json()["data"]]
    assert active == ["zoe-city"]
    assert ("zoe-mgr", "supersede") in [(e["edit_id"], e["action"]) for e in _history(c, "zoe-city")]


def test_ids_are_scoped_per_namespace(env):
    a, b = env["tenant-a"], env["tenant-b"]
    first = a.post("/v1/edits", json={**MGR, "id": "same-id"})
    second = b.post("/v1/edits", json={**MGR, "target_new": "Mallory", "id": "same-id"})
    assert first.status_code == second.status_code == 201
    assert a.get("/v1/edits/same-id").json()["target_new"] == "Bob"
    assert b.get("/v1/edits/same-id").json()["target_new"] == "Mallory"

    assert b.post("/v1/edits", json={**CITY, "id": "b-only"}).status_code == 201
    for method, path in [("GET", "/v1/edits/b-only"), ("GET", "/v1/edits/b-only/history"), ("DELETE", "/v1/edits/b-only")]:
        r = a.request(method, path)
        assert r.status_code == 404 and "namespace 'tenant-a'" in r.json()["error"]["message"]
    assert a.patch("/v1/edits/b-only", json={"target_new": "Nice"}).status_code == 404
    taken = a.post("/v1/edits", json={**CITY, "target_new": "Nice", "id": "b-only"})
    assert taken.status_code == 201  # A learns nothing about B's ids, and cannot take them from B

    assert b.delete("/v1/edits/same-id").status_code == 200  # B's change leaves A's edit alone
    assert a.get("/v1/edits/same-id").json()["status"] == "active"
    assert b.get("/v1/edits/b-only").json()["target_new"] == "Lyon"  # untouched by A
    assert [e["namespace"] for e in _history(a, "same-id")] == ["tenant-a"]
    dup = a.post("/v1/edits", json={**MGR, "id": "same-id"})
    assert dup.status_code == 409 and "namespace 'tenant-a'" in dup.json()["error"]["message"]


def test_concurrent_patches_and_a_delete_over_http(env):
    c = env["plain"]
    c.post("/v1/edits", json={"prompt": "Acme is led by", "subject": "Acme", "target_new": "Ann", "id": "acme"})

    def write(i: int) -> httpx.Response:
        if i == 5:
            return c.delete("/v1/edits/acme")
        return c.patch("/v1/edits/acme", json={"target_new": f"Lead {i}"})

    out = together(12, write)
    assert {r.status_code for r in out} <= {200, 409}, [r.text for r in out if r.status_code not in (200, 409)]
    assert out[5].status_code == 200
    landed = sorted(int(r.headers["etag"].strip('"')) for r in out if r.status_code == 200)
    assert landed == list(range(2, 2 + len(landed))) and out[5].headers["etag"] == f'"{landed[-1]}"'
    assert c.get("/v1/edits/acme").json()["status"] == "retracted"
    events = _history(c, "acme")
    assert all(ev["before"] == prev["after"] for prev, ev in zip(events, events[1:]))
    assert events[-1]["action"] == "delete"
