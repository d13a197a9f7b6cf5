"""Helpers of the store-guarantee tests: invariant checks on a real store, running callables at the same moment
in threads, and the workers that spawned processes run against one store folder.

The process workers use :class:`HashEmbedder` (a deterministic bag-of-words hash, no model to load) so that
several spawned processes start in a second or two on two cores; what they test is the ledger and the index
under concurrent writers, which do not depend on the embedder. The thread tests use the real MiniLM embedder.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Callable, Sequence

import numpy as np

from agentedit.memory import EditMemory

KEY_FACT = {"prompt": "The Eiffel Tower is located in", "subject": "Eiffel Tower"}


class HashEmbedder:
    """Unit vectors from hashed lowercase words: same text, same vector, in every process."""

    name = "hash-bow-64"
    dim = 64

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little") % self.dim] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def together(n: int, fn: Callable[[int], Any], *, timeout: float = 120) -> list[Any]:
    """Run ``fn(0) ... fn(n-1)`` in ``n`` threads released at once; each slot holds a result or the exception raised."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as exc:  # collected for the test to judge
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    return results


# -- invariant checks ---------------------------------------------------------------------------------
def assert_history_chain(mem: EditMemory, namespace: str, edit_id: str) -> list[dict[str, Any]]:
    """The edit's own events: an ``add`` first, each event's ``before`` equal to the previous event's ``after``,
    the version +1 per event, and the last ``after`` equal to the stored record. Returns the events."""
    events = mem.ledger.events(namespace, edit_id)
    assert events and events[0]["action"] == "add" and events[0]["before"] is None, events[:1]
    for prev, ev in zip(events, events[1:]):
        assert ev["seq"] > prev["seq"]
        assert ev["before"] == prev["after"], f"{edit_id}: event {ev['seq']} ({ev['action']}) starts from a stale record"
        assert ev["after"]["version"] == ev["before"]["version"] + 1, (prev, ev)
    assert events[-1]["after"] == mem.get(edit_id, namespace=namespace).to_dict()
    return events


def assert_one_active_per_key(mem: EditMemory, namespace: str | None = None) -> None:
    seen: dict[tuple[str, str, str], str] = {}
    for rec in mem.list(namespace=namespace):
        key = rec.conflict_key
        if key is not None:
            assert key not in seen, f"{rec.id} and {seen[key]} are both active for {key}"
            seen[key] = rec.id


def assert_index_matches_ledger(mem: EditMemory, namespaces: Sequence[str]) -> None:
    for ns in namespaces:
        assert set(mem.index.ids(ns)) == mem.ledger.active_ids(ns), ns


def assert_single_winner(mem: EditMemory, ids: Sequence[str], namespace: str = "default") -> str:
    """Of the edits ``ids`` (all of one conflict key), exactly one is active and the others form one chain of
    supersessions ending at it, each step logged; returns the winner's id."""
    recs = {r.id: r for r in mem.list(namespace=namespace, include_inactive=True) if r.id in set(ids)}
    assert set(recs) == set(ids)
    active = [r for r in recs.values() if r.status == "active"]
    assert len(active) == 1, f"{len(active)} active edits for one key: {[r.id for r in active]}"
    winner = active[0]
    losers = [r for r in recs.values() if r is not winner]
    assert all(r.status == "superseded" and r.superseded_by in recs for r in losers)
    assert len({r.superseded_by for r in losers}) == len(losers)  # a chain: each edit superseded at most one
    assert set(mem.index.ids(namespace)) & set(ids) == {winner.id}
    actions = [(e["edit_id"], e["action"]) for e in mem.history(winner.id, namespace=namespace)]
    assert sorted(i for i, a in actions if a == "add") == sorted(ids)
    assert sorted(i for i, a in actions if a == "supersede") == sorted(r.id for r in losers)
    for rec in recs.values():
        assert_history_chain(mem, namespace, rec.id)
    return winner.id


# -- process workers (module level: spawned processes import them) -----------------------------------
class LocalIndex:
    """A per-process stand-in for the vector index, for the ledger-only fallback when ``chroma run`` is missing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._docs: dict[str, dict[str, str]] = {}

    def upsert(self, namespace: str, ids: Sequence[str], vectors: Any, documents: Sequence[str], metadatas: Any) -> None:
        self._docs.setdefault(namespace, {}).update(zip(ids, documents))

    def remove(self, namespace: str, ids: Sequence[str]) -> None:
        for i in ids:
            self._docs.get(namespace, {}).pop(i, None)

    def documents(self, namespace: str) -> dict[str, str]:
        return dict(self._docs.get(namespace, {}))

    def has_namespace(self, namespace: str) -> bool:
        return namespace in self._docs

    def query(self, namespace: str, vector: Any, k: int) -> list[tuple[str, float]]:
        return [(i, 1.0) for i in self.ids(namespace)[:k]]

    def ids(self, namespace: str) -> list[str]:
        return sorted(self._docs.get(namespace, {}))

    def count(self, namespace: str | None = None) -> int:
        return sum(len(v) for k, v in self._docs.items() if namespace in (None, k))

    def namespaces(self) -> list[str]:
        return list(self._docs)

    def close(self) -> None:
        pass


def open_store(root: str, chroma_url: str | None) -> EditMemory:
    """The store as a worker process opens it: its own ledger connection and index client. Without a Chroma
    server only the ledger is shared, and each process keeps a private index (never do this in the test process:
    the test patches ``open_index`` with pytest's monkeypatch instead)."""
    if chroma_url is None:
        import agentedit.memory.store as store

        store.open_index = LocalIndex  # type: ignore[assignment]
    return EditMemory("t", root=root, embedder=HashEmbedder(), chroma_url=chroma_url)  # type: ignore[arg-type]


def create_worker(root: str, chroma_url: str | None, ids: list[str], barrier: Any, results: Any) -> None:
    """Create one edit per id, all of the same conflict key, from one thread per id once every process is ready."""
    mem = open_store(root, chroma_url)
    try:
        barrier.wait(timeout=120)
        out = together(len(ids), lambda i: mem.add({**KEY_FACT, "target_new": f"City {ids[i]}", "id": ids[i]}).id)
        results.put([x if isinstance(x, str) else f"error: {type(x).__name__}: {x}" for x in out])
    finally:
        mem.close()


def patch_worker(root: str, chroma_url: str | None, edit_id: str, role: str, n: int, barrier: Any, results: Any) -> None:
    """``role`` "delete": one retraction of ``edit_id``; otherwise ``n`` updates from ``n`` threads, each to its
    own target. Puts ``(role, new version or "lost")`` per write, "lost" being an :class:`EditConflictError`."""
    from agentedit.errors import EditConflictError

    mem = open_store(root, chroma_url)

    def write(i: int) -> int:
        if role == "delete":
            return mem.delete(edit_id, namespace="default").version
        return mem.update(edit_id, {"target_new": f"Town {role} {i}"}, namespace="default").version

    try:
        barrier.wait(timeout=120)
        got = together(1 if role == "delete" else n, write)
        results.put([(role, x if isinstance(x, int) else "lost" if isinstance(x, EditConflictError) else repr(x))
                     for x in got])
    finally:
        mem.close()


def steady_writer(root: str, results: Any) -> None:
    """Writes edits (single and batches of 5, in the embedded store) until killed; puts each id once its write returned."""
    mem = EditMemory("t", root=root, embedder=HashEmbedder())  # type: ignore[arg-type]
    n = 0
    while True:
        batch = [{"statement": f"Service {n + j} runs in region {n + j}.", "subject": f"Service {n + j}", "id": f"s{n + j}"}
                 for j in range(1 if n % 2 else 5)]
        results.put([r.id for r in mem.add_many(batch)])
        n += len(batch)
