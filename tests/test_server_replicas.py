"""Two proxy processes (``agentedit serve --chroma-url``) over one real Chroma server (``chroma run``) and one
store folder: an edit written through either replica is seen, listed and applied by the other at once."""

from __future__ import annotations

import httpx
import pytest

from agentedit.server.process import chroma_process, proxy_process
from server_support import StubUpstream, admin_key

EIFFEL = {"prompt": "The Eiffel Tower is located in the city of", "subject": "Eiffel Tower", "target_new": "Rome"}
ASK = {"model": "m", "messages": [{"role": "user", "content": "Which city is the Eiffel Tower in?"}]}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replicas")
    stores = tmp / "stores"
    key = admin_key(stores, "shared", ("team",))
    stub = StubUpstream()
    with chroma_process(tmp / "chroma-data", log_path=tmp / "chroma.log") as chroma:
        procs = [proxy_process(store="shared", store_dir=stores, model="openai/stub", api_base=stub.base_url,
                               chroma_url=chroma.base_url, extra=("--retries", "0"), log_path=tmp / f"replica-{n}.log")
                 for n in "ab"]
        try:
            for proc in procs:  # both start in parallel
                proc.launch()
            for proc in procs:
                proc.wait_ready(timeout=240)
            clients = [httpx.Client(base_url=p.base_url, headers={"authorization": f"Bearer {key}"}, timeout=60) for p in procs]
            yield clients, stores / "shared"
            for c in clients:
                c.close()
        finally:
            for proc in procs:
                proc.stop()
            stub.close()


def test_replicas_see_each_others_writes_immediately(replicas):
    (a, b), store_dir = replicas
    assert a.get("/healthz").json()["chroma"].startswith("http://127.0.0.1:")

    rec = a.post("/v1/edits", json=EIFFEL).json()
    assert [e["id"] for e in b.get("/v1/edits").json()["data"]] == [rec["id"]]
    via_b = b.post("/v1/chat/completions", json=ASK)
    assert via_b.status_code == 200 and via_b.headers["x-agentedit-applied"] == rec["id"]

    updated = b.patch(f"/v1/edits/{rec['id']}", json={"target_new": "Madrid"}).json()
    assert a.get(f"/v1/edits/{rec['id']}").json()["statement"] == updated["statement"]
    assert [e["action"] for e in a.get(f"/v1/edits/{rec['id']}/history").json()["data"]] == ["add", "update"]

    batch = b.post("/v1/edits/batch", json={"edits": [{"statement": f"Service {i} runs in region {i}.", "subject": f"Service {i}"}
                                                      for i in range(20)]})
    assert batch.status_code == 201
    assert len(a.get("/v1/edits", params={"limit": 1000}).json()["data"]) == 21
    assert a.post("/v1/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": "Which region does Service 7 run in?"}]}).headers["x-agentedit-applied"] != ""

    assert a.delete(f"/v1/edits/{rec['id']}").status_code == 200
    after = b.post("/v1/chat/completions", json=ASK)
    assert after.headers["x-agentedit-applied"] == "" and after.json()["agentedit"]["route"] == "passthrough"
    assert not (store_dir / "chroma").exists()  # the index lives in the Chroma server, not beside the ledger
