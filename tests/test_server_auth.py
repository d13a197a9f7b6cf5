"""Authentication and tenancy of the proxy: hashed API keys with roles bound to namespaces (401/403),
namespace selection, audit actors, revocation, and the key-management CLI."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from agentedit.cli import app as cli_app
from agentedit.errors import ConfigError
from agentedit.server import KeyStore, ServerConfig, create_app
from server_support import StubUpstream, serving

FACT = {"prompt": "The Eiffel Tower is located in the city of", "subject": "Eiffel Tower", "target_new": "Rome"}
ASK = {"model": "m", "messages": [{"role": "user", "content": "Which city is the Eiffel Tower in?"}]}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    stub = StubUpstream()
    cfg = ServerConfig(model="openai/stub", api_base=stub.base_url, store="auth", namespace="default",
                       store_dir=str(tmp_path_factory.mktemp("stores")), max_retries=0, timeout=10)
    keys = KeyStore(cfg.resolved_keys_path())
    made = {name: keys.create(role=role, namespaces=ns, name=name)[0] for name, role, ns in [
        ("admin", "admin", ["*"]), ("writer", "write", ["alice", "shared"]), ("reader", "query", ["alice"]),
        ("bob", "write", ["bob"]), ("doomed", "write", ["alice"])]}
    with serving(create_app(cfg)) as url:
        yield url, made, keys, cfg
    keys.close()
    stub.close()


def call(url: str, key: str | None, method: str, path: str, *, ns: str | None = None, **kw) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    if ns:
        headers["x-agentedit-namespace"] = ns
    return httpx.request(method, url + path, headers=headers, timeout=30, **kw)


def test_missing_or_wrong_keys_get_401(env):
    url, made, _, _ = env
    for key, code in [(None, "missing_api_key"), ("ae-000000000000-wrong", "invalid_api_key"), ("sk-not-ours", "invalid_api_key"),
                      (made["writer"][:-1] + "x", "invalid_api_key")]:
        r = call(url, key, "POST", "/v1/chat/completions", json=ASK)
        assert r.status_code == 401 and r.json()["error"]["code"] == code
        assert r.json()["error"]["type"] == "authentication_error" and r.headers["www-authenticate"] == "Bearer"
    r = httpx.get(url + "/v1/edits", headers={"authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 401
    assert httpx.get(url + "/healthz").status_code == 200  # liveness needs no key


def test_health_details_are_for_admin_keys_only(env):
    url, made, _, _ = env
    assert httpx.get(url + "/healthz").json() == {"status": "ok"}  # no edit count, store or model for strangers
    assert call(url, made["reader"], "GET", "/healthz").json() == {"status": "ok"}
    assert call(url, "ae-000000000000-wrong", "GET", "/healthz").json() == {"status": "ok"}
    full = call(url, made["admin"], "GET", "/healthz").json()
    assert full["status"] == "ok" and full["auth"] is True and full["store"] == "auth" and "active_edits" in full


def test_with_auth_any_host_is_accepted(env):
    url, made, _, _ = env
    r = httpx.get(url + "/v1/edits", headers={"authorization": f"Bearer {made['reader']}", "host": "proxy.example:443"})
    assert r.status_code == 200  # keys protect it; --allowed-hosts narrows it


def test_roles_are_enforced_with_403(env):
    url, made, _, _ = env
    r = call(url, made["reader"], "POST", "/v1/edits", json=FACT)
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_role" and "'write'" in r.json()["error"]["message"]
    assert call(url, made["reader"], "GET", "/v1/edits").status_code == 200
    assert call(url, made["reader"], "POST", "/v1/chat/completions", json=ASK).status_code == 200
    assert call(url, made["writer"], "GET", "/metrics").status_code == 403
    metrics = call(url, made["admin"], "GET", "/metrics")
    assert metrics.status_code == 200 and 'agentedit_auth_failures_total{status="403"}' in metrics.text


def test_a_key_for_one_namespace_cannot_touch_another(env):
    url, made, _, _ = env
    created = call(url, made["writer"], "POST", "/v1/edits", json=FACT)  # no header: the key's first namespace
    assert created.status_code == 201 and created.json()["namespace"] == "alice"
    edit_id = created.json()["id"]

    for method, path, kw in [("GET", "/v1/edits", {}), ("GET", f"/v1/edits/{edit_id}", {}), ("POST", "/v1/edits", {"json": FACT}),
                             ("DELETE", f"/v1/edits/{edit_id}", {}), ("POST", "/v1/chat/completions", {"json": ASK})]:
        r = call(url, made["writer"], method, path, ns="bob", **kw)
        assert r.status_code == 403 and r.json()["error"]["code"] == "namespace_forbidden", (method, path)
    # bob's own key sees nothing of alice's
    assert call(url, made["bob"], "GET", f"/v1/edits/{edit_id}").status_code == 404
    assert call(url, made["bob"], "GET", "/v1/edits").json()["data"] == []
    bob_chat = call(url, made["bob"], "POST", "/v1/chat/completions", json=ASK)
    assert bob_chat.status_code == 200 and bob_chat.headers["x-agentedit-applied"] == ""
    alice_chat = call(url, made["reader"], "POST", "/v1/chat/completions", json=ASK)
    assert alice_chat.headers["x-agentedit-applied"] == edit_id
    # the writer may pick its second namespace; the admin key may use any, defaulting to the server's
    assert call(url, made["writer"], "GET", "/v1/edits", ns="shared").json()["namespace"] == "shared"
    assert call(url, made["admin"], "GET", "/v1/edits").json()["namespace"] == "default"
    assert call(url, made["admin"], "GET", f"/v1/edits/{edit_id}", ns="alice").status_code == 200


def test_audit_log_names_the_key_and_revocation_is_immediate(env):
    url, made, keys, _ = env
    doomed_id = made["doomed"].split("-")[1]
    rec = call(url, made["doomed"], "POST", "/v1/edits", json={"statement": "The office moved to Porto.", "subject": "office"}).json()
    assert rec["actor"] == f"key:{doomed_id}"
    history = call(url, made["admin"], "GET", f"/v1/edits/{rec['id']}/history", ns="alice").json()["data"]
    assert history[0]["actor"] == f"key:{doomed_id}"
    keys.revoke(doomed_id)
    r = call(url, made["doomed"], "GET", "/v1/edits")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_only_hashes_are_stored(env):
    _, made, keys, _ = env
    raw = b"".join(p.read_bytes() for p in keys.path.parent.glob(keys.path.name + "*"))
    for secret in made.values():
        assert secret.encode() not in raw and secret.split("-", 2)[2].encode() not in raw
    assert {k.name for k in keys.list()} >= {"admin", "writer", "reader", "bob"}


def test_keys_cli_create_list_revoke(tmp_path: Path):
    runner = CliRunner()
    base = ["--store-dir", str(tmp_path), "--store", "cli"]
    r = runner.invoke(cli_app, [*base, "keys", "create", "--role", "write", "--namespace", "alice", "--namespace", "bob",
                                "--name", "ci", "--json"])
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)
    assert made["key"].startswith(f"ae-{made['id']}-") and made["namespaces"] == ["alice", "bob"]
    store = KeyStore(tmp_path / "cli" / "keys.sqlite")
    assert store.verify(made["key"]).role == "write"

    listed = json.loads(runner.invoke(cli_app, [*base, "keys", "list", "--json"]).stdout)
    assert [k["id"] for k in listed] == [made["id"]] and "key" not in listed[0]
    assert runner.invoke(cli_app, [*base, "keys", "revoke", made["id"]]).exit_code == 0
    assert store.verify(made["key"]) is None
    assert json.loads(runner.invoke(cli_app, [*base, "keys", "list", "--json"]).stdout) == []
    assert len(json.loads(runner.invoke(cli_app, [*base, "keys", "list", "--all", "--json"]).stdout)) == 1

    bad = runner.invoke(cli_app, [*base, "keys", "create", "--role", "root", "--namespace", "alice"])
    assert isinstance(bad.exception, ConfigError) and "unknown role" in str(bad.exception)
    again = runner.invoke(cli_app, [*base, "keys", "revoke", made["id"]])
    assert isinstance(again.exception, ConfigError) and "no active key" in str(again.exception)
    store.close()


def test_serve_refuses_no_auth_on_a_public_interface(tmp_path: Path):
    r = CliRunner().invoke(cli_app, ["--store-dir", str(tmp_path), "serve", "--no-auth", "--host", "0.0.0.0",
                                     "--model", "openai/x", "--api-base", "http://127.0.0.1:9/v1"])
    assert isinstance(r.exception, ConfigError) and "loopback" in str(r.exception)
