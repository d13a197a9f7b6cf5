"""Replicas without a shared disk: two ``agentedit serve`` processes, each with its own working folder, over one
real PostgreSQL server (ledger, keys, settings) and one real Chroma server (index).

An edit or key written through one replica is served by the other; a revoked key stops working on both; a
``kill -9`` of a replica in the middle of a batch leaves no half batch and loses no acknowledged edit, and the
surviving replica heals the index; a replica started while the database is down says so, retries, and serves
once the database is back."""

from __future__ import annotations

import threading
import time

import httpx
import psycopg
import pytest

from agentedit.memory.store import EditMemory
from agentedit.server.auth import KeyStore
from agentedit.server.pg_process import LocalPostgres
from agentedit.server.process import chroma_process, proxy_process
from server_support import StubUpstream

STORE = "fleet"
SCHEMA = "agentedit_fleet"
ASK = {"model": "m", "messages": [{"role": "user", "content": "Which city is the Eiffel Tower in?"}]}
EIFFEL = {"prompt": "The Eiffel Tower is located in the city of", "subject": "Eiffel Tower", "target_new": "Rome"}


def _replica(tmp, name: str, pg_url: str, chroma_url: str, upstream: str):
    return proxy_process(store=STORE, store_dir=tmp / f"host-{name}", model="openai/stub", api_base=upstream,
                         chroma_url=chroma_url, extra=("--database-url", pg_url, "--retries", "0"),
                         log_path=tmp / f"replica-{name}.log")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    stub = StubUpstream()
    with LocalPostgres() as pg, chroma_process(tmp / "chroma", log_path=tmp / "chroma.log") as chroma:
        keys = KeyStore(pg.url, store=STORE)
        admin, _ = keys.create(role="admin", namespaces=["*"])
        procs = [_replica(tmp, n, pg.url, chroma.base_url, stub.base_url) for n in "ab"]
        try:
            for proc in procs:
                proc.launch()
            for proc in procs:
                proc.wait_ready(timeout=240)
            yield {"pg": pg, "chroma": chroma.base_url, "stub": stub, "keys": keys, "admin": admin, "procs": procs,
                   "tmp": tmp}
        finally:
            for proc in procs:
                proc.stop()
            keys.close()
            stub.close()


def _client(proc, key: str) -> httpx.Client:
    return httpx.Client(base_url=proc.base_url, headers={"authorization": f"Bearer {key}"}, timeout=120)


def test_writes_and_keys_through_one_replica_hold_on_the_other(fleet):
    a, b = (_client(p, fleet["admin"]) for p in fleet["procs"])
    assert a.get("/healthz").json()["database"].startswith("postgresql://")
    rec = a.post("/v1/edits", json=EIFFEL).json()
    via_b = b.post("/v1/chat/completions", json=ASK)
    assert via_b.status_code == 200 and via_b.headers["x-agentedit-applied"] == rec["id"]
    assert [e["action"] for e in b.get(f"/v1/edits/{rec['id']}/history").json()["data"]] == ["add"]

    # a key made after both started (as `agentedit keys create --database-url` does) works on both; revoked, on neither
    secret, key = fleet["keys"].create(role="query", namespaces=["default"])
    assert all(_client(p, secret).get("/v1/edits").status_code == 200 for p in fleet["procs"])
    fleet["keys"].revoke(key.id)
    assert all(_client(p, secret).get("/v1/edits").status_code == 401 for p in fleet["procs"])
    assert b.delete(f"/v1/edits/{rec['id']}").status_code == 200
    assert a.post("/v1/chat/completions", json=ASK).headers["x-agentedit-applied"] == ""


def _pending(pg_url: str) -> int:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {SCHEMA}.pending").fetchone()[0]


def test_kill_9_mid_batch_leaves_no_half_batch_and_the_other_replica_heals(fleet):
    pg_url, (a_proc, b_proc) = fleet["pg"].url, fleet["procs"]
    a, b = _client(a_proc, fleet["admin"]), _client(b_proc, fleet["admin"])
    singles = [a.post("/v1/edits", json={"statement": f"Depot {i} is run by crew {i}.", "subject": f"Depot {i}"})
               for i in range(5)]
    acked = {r.json()["id"] for r in singles if r.status_code == 201}
    assert len(acked) == 5
    batch = {"edits": [{"statement": f"Relay {i} is in sector {i}.", "subject": f"Relay {i}"} for i in range(3000)]}
    reply: dict[str, object] = {}

    def send() -> None:
        try:
            reply["status"] = a.post("/v1/edits/batch", json=batch).status_code
        except httpx.HTTPError as exc:
            reply["error"] = type(exc).__name__

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 240
    while _pending(pg_url) == 0:  # the batch's ledger transaction is open and its index write has begun
        assert time.monotonic() < deadline and "status" not in reply, f"the batch never reached its index write: {reply}"
        time.sleep(0.01)
    a_proc.kill()
    sender.join(timeout=60)
    assert "error" in reply  # the client never got an acknowledgement

    # the survivor notices the dead writer's marker and reconciles the shared index
    deadline = time.monotonic() + 120
    while _pending(pg_url):
        assert time.monotonic() < deadline, "the surviving replica never healed the index"
        time.sleep(0.5)
    listed = b.get("/v1/edits", params={"limit": 1000}).json()["data"]
    assert not [e for e in listed if e["statement"].startswith("Relay ")]  # all or nothing: nothing
    assert acked <= {e["id"] for e in listed}  # nothing acknowledged was lost
    check = EditMemory(STORE, root=fleet["tmp"] / "checker", database_url=pg_url, chroma_url=fleet["chroma"])
    assert check.index.count() == check.ledger.count(status="active")
    check.close()
    a_proc.start(timeout=240)  # and the killed replica comes back
    assert _client(a_proc, fleet["admin"]).get("/v1/edits").status_code == 200


def test_a_replica_started_while_the_database_is_down_waits_and_recovers(fleet):
    tmp = fleet["tmp"]
    pg = LocalPostgres()  # initialised, not running
    try:
        proc = _replica(tmp, "late", pg.url, fleet["chroma"], fleet["stub"].base_url).launch()
        deadline = time.monotonic() + 120
        log = tmp / "replica-late.log"
        while "unreachable" not in (log.read_text("utf-8", errors="replace") if log.exists() else ""):
            assert time.monotonic() < deadline, "the replica never said the database is unreachable"
            time.sleep(0.5)
        assert "retrying" in log.read_text("utf-8")
        pg.start()
        keys = KeyStore(pg.url, store=STORE)
        admin, _ = keys.create(role="admin", namespaces=["*"])
        keys.close()
        proc.wait_ready(timeout=240)
        late = _client(proc, admin)
        assert late.post("/v1/edits", json=EIFFEL).status_code == 201
        assert len(late.get("/v1/edits").json()["data"]) == 1
        proc.stop()
    finally:
        pg.close()
