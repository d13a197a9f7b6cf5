"""Concurrent writers in separate processes (``multiprocessing``, spawn) on one store folder.

Each process opens its own ``EditMemory`` on the folder: its own SQLite connection to the shared ledger and,
since the embedded Chroma index must not be shared by processes (``docs/architecture.md``), its own client
of one real ``chroma run`` server, as replicas of ``agentedit serve --chroma-url`` do. Without the ``chroma``
command the same races run against the shared ledger only (each process then keeps a private index).
Workers use a hashing embedder so a process starts in about a second (see ``store_support``).
"""

from __future__ import annotations

import multiprocessing
import queue
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from agentedit.server.process import chroma_process
from agentedit.memory import EditMemory
from store_support import (KEY_FACT, HashEmbedder, LocalIndex, assert_history_chain, assert_single_winner, create_worker,
                           patch_worker, steady_writer)

CTX = multiprocessing.get_context("spawn")


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    if shutil.which("chroma") is None and not Path(sys.executable).with_name("chroma").exists():
        yield None  # ledger-level races only
        return
    tmp = tmp_path_factory.mktemp("chroma-server")
    with chroma_process(tmp / "data", log_path=tmp / "chroma.log") as server:
        yield server.base_url


@pytest.fixture()
def opener(chroma_url: str | None, monkeypatch: pytest.MonkeyPatch):
    """Opens the store in this process the way the workers do (a private index when there is no Chroma server)."""
    if chroma_url is None:
        monkeypatch.setattr("agentedit.memory.store.open_index", LocalIndex)
    return lambda root: EditMemory("t", root=root, embedder=HashEmbedder(), chroma_url=chroma_url)  # type: ignore[arg-type]


def _run(workers: list[tuple[Any, tuple[Any, ...]]], results: Any, timeout: float = 240) -> list[Any]:
    procs = [CTX.Process(target=fn, args=args, daemon=True) for fn, args in workers]
    for p in procs:
        p.start()
    out: list[Any] = []
    try:
        for _ in procs:
            out.extend(results.get(timeout=timeout))
    except queue.Empty:
        pytest.fail("a worker process did not report; exit codes: " + str([p.exitcode for p in procs]))
    for p in procs:
        p.join(30)
        assert p.exitcode == 0, f"worker {p.pid} exited with {p.exitcode}"
    return out


def test_16_creates_of_one_key_from_4_processes_leave_exactly_one_active(tmp_path: Path, chroma_url: str | None,
                                                                          opener) -> None:
    root = str(tmp_path / "stores")
    opener(root).close()  # create the store once, so the workers race on writes, not on setup
    ids = [[f"p{p}t{t}" for t in range(4)] for p in range(4)]
    barrier, results = CTX.Barrier(4), CTX.Queue()
    out = _run([(create_worker, (root, chroma_url, ids[p], barrier, results)) for p in range(4)], results)
    everyone = [i for chunk in ids for i in chunk]
    assert sorted(out) == sorted(everyone), out  # no write failed
    with opener(root) as mem:
        assert_single_winner(mem, everyone)


def test_patches_racing_a_delete_from_other_processes_never_revive_it(tmp_path: Path, chroma_url: str | None,
                                                                      opener) -> None:
    root = str(tmp_path / "stores")
    with opener(root) as mem:
        rec = mem.add({**KEY_FACT, "target_new": "Rome", "id": "contested"})
    barrier, results = CTX.Barrier(4), CTX.Queue()
    roles = ["patch-a", "patch-b", "delete", "patch-c"]
    out = _run([(patch_worker, (root, chroma_url, rec.id, role, 4, barrier, results)) for role in roles], results)
    assert all(v == "lost" or isinstance(v, int) for _, v in out), out
    landed = sorted(v for _, v in out if isinstance(v, int))
    assert landed == list(range(2, 2 + len(landed)))  # every write started from the one before it
    assert ("delete", landed[-1]) in out  # the retraction is the last change, whatever the order
    with opener(root) as mem:
        final = mem.get(rec.id, namespace="default")
        assert final.status == "retracted"
        events = assert_history_chain(mem, "default", rec.id)
        assert events[-1]["action"] == "delete" and [e["action"] for e in events].count("delete") == 1
        assert final.version == len(events) == len(landed) + 1
        assert rec.id not in mem.index.ids("default")


def test_a_killed_writer_loses_no_acknowledged_edit(tmp_path: Path) -> None:
    """SIGKILL a process in the middle of its writes (embedded store: only that process uses it); on reopen every
    write it had acknowledged is there, whole, and the index holds exactly the ledger's active edits."""
    root = str(tmp_path / "stores")
    results = CTX.Queue()
    proc = CTX.Process(target=steady_writer, args=(root, results), daemon=True)
    proc.start()
    acked: list[str] = []
    try:
        while len(acked) < 40:
            acked.extend(results.get(timeout=120))
    finally:
        proc.kill()
        proc.join(30)
    while True:  # what was acknowledged before the kill but not yet read
        try:
            acked.extend(results.get(timeout=0.5))
        except queue.Empty:
            break
    with EditMemory("t", root=root, embedder=HashEmbedder()) as mem:  # type: ignore[arg-type]
        stored = {r.id for r in mem.list()}
        assert set(acked) <= stored
        assert len(stored - set(acked)) <= 5  # at most the batch in flight, committed before its ack was sent
        assert set(mem.index.ids("default")) == stored == mem.ledger.active_ids("default")
        assert not list(mem.dir.glob("PENDING*"))
