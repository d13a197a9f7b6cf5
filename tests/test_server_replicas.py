"""Two proxy processes (``agentedit serve --chroma-url``) over one real Chroma server (``chroma run``) and one
store folder: an edit written through either replica is seen, listed and applied by the other at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from agentedit.server import KeyStore, ServerConfig
from server_support import StubUpstream, free_port

EIFFEL = {"prompt": "The Eiffel Tower is located in the city of", "subject": "Eiffel Tower", "target_new": "Rome"}
ASK = {"model": "m", "messages": [{"role": "user", "content": "Which city is the Eiffel Tower in?"}]}


def _wait(url: str, proc: subprocess.Popen, what: str, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{what} did not answer {url} within {seconds}s:\n{log.read_text()[-3000:]}")


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replicas")
    chroma_bin = shutil.which("chroma")
    assert chroma_bin, "the chroma CLI (from the chromadb package) is needed for this test"
    chroma_port = free_port()
    chroma = _spawn([chroma_bin, "run", "--path", str(tmp / "chroma-data"), "--host", "127.0.0.1", "--port", str(chroma_port)],
                    tmp / "chroma.log")
    stub = StubUpstream()
    procs: list[subprocess.Popen] = []
    try:
        _wait(f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", chroma, "chroma run", tmp / "chroma.log")
        stores = tmp / "stores"
        keys = KeyStore(ServerConfig(store="shared", store_dir=str(stores)).resolved_keys_path())
        key, _ = keys.create(role="admin", namespaces=["team"])
        keys.close()
        urls = []
        for name in ("a", "b"):
            port = free_port()
            procs.append(_spawn([sys.executable, "-m", "agentedit", "--store-dir", str(stores), "serve", "--store", "shared",
                                 "--model", "openai/stub", "--api-base", stub.base_url, "--port", str(port),
                                 "--chroma-url", f"http://127.0.0.1:{chroma_port}", "--retries", "0", "--log-level", "warning"],
                                tmp / f"replica-{name}.log"))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc, name in zip(urls, procs, "ab"):
            _wait(url + "/healthz", proc, f"replica {name}", tmp / f"replica-{name}.log")
        clients = [httpx.Client(base_url=u, headers={"authorization": f"Bearer {key}"}, timeout=60) for u in urls]
        yield clients, stores / "shared"
        for c in clients:
            c.close()
    finally:
        for proc in procs:
            _stop(proc)
        _stop(chroma)
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
