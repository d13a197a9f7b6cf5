"""``agentedit serve --workers 2``: two proxy processes on one port over a real Chroma server (``chroma run``).

Requests are spread over both processes; an edit written through one is applied by the other; a worker killed
with SIGKILL is replaced and the port keeps answering; a worker count the store or the model cannot share is
refused before anything starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from agentedit.server.process import chroma_process, proxy_process
from server_support import StubUpstream, admin_key

ASK = {"model": "m", "messages": [{"role": "user", "content": "Which city is the Eiffel Tower in?"}]}
EIFFEL = {"prompt": "The Eiffel Tower is located in the city of", "subject": "Eiffel Tower", "target_new": "Rome"}


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workers")
    stores = tmp / "stores"
    key = admin_key(stores, "w")
    stub = StubUpstream()
    with chroma_process(tmp / "chroma-data", log_path=tmp / "chroma.log") as chroma:
        proc = proxy_process(store="w", store_dir=stores, model="openai/stub", api_base=stub.base_url,
                             chroma_url=chroma.base_url, extra=("--workers", "2", "--retries", "0"), log_path=tmp / "proxy.log")
        try:
            proc.start(timeout=240)
            yield proc, key
        finally:
            proc.stop()
            stub.close()


def _pids(base_url: str, key: str, n: int = 40, want: int = 2, timeout: float = 120) -> set[int]:
    """The worker pids that answered ``n`` requests on fresh connections (waits until ``want`` have answered)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < want and time.monotonic() < deadline:
        for _ in range(n):
            r = httpx.get(base_url + "/healthz", headers={"authorization": f"Bearer {key}"}, timeout=30)
            seen.add(r.json()["pid"])
        time.sleep(0.2)
    return seen


def test_requests_reach_both_workers_and_an_edit_through_one_applies_on_the_other(workers):
    proc, key = workers
    pids = _pids(proc.base_url, key)
    assert len(pids) == 2 and proc.pid not in pids  # two worker processes, apart from the supervisor
    created = httpx.post(proc.base_url + "/v1/edits", json=EIFFEL, headers={"authorization": f"Bearer {key}"}).json()
    applied = set()
    for _ in range(30):  # fresh connections land on either worker: every one applies the edit
        r = httpx.post(proc.base_url + "/v1/chat/completions", json=ASK, headers={"authorization": f"Bearer {key}"})
        assert r.status_code == 200
        applied.add(r.headers["x-agentedit-applied"])
    assert applied == {created["id"]}


def test_a_killed_worker_is_replaced_and_the_port_keeps_answering(workers):
    proc, key = workers
    before = _pids(proc.base_url, key)
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    after = set()
    deadline = time.monotonic() + 180
    while (len(after) < 2 or victim in after) and time.monotonic() < deadline:
        after = _pids(proc.base_url, key, timeout=30) - {victim}
    assert len(after) == 2 and victim not in after


@pytest.mark.parametrize("args, says", [
    (["--model", "openai/stub", "--api-base", "http://127.0.0.1:9/v1"], "needs an index every worker shares"),
    (["--chroma-url", "http://127.0.0.1:9"], "serves API models only"),
    (["--model", "openai/stub", "--api-base", "http://127.0.0.1:9/v1", "--workers", "0"], "at least 1"),
])
def test_a_worker_count_that_cannot_be_shared_is_refused_before_anything_starts(tmp_path, args, says):
    cmd = [sys.executable, "-m", "agentedit", "--store-dir", str(tmp_path / "stores"), "serve", "--store", "w",
           "--no-auth", "--workers", "2", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and says in " ".join(done.stderr.split())
    assert not (tmp_path / "stores").exists()  # nothing opened, nothing written
