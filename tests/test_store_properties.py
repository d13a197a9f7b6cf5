"""Property-based test of the store (hypothesis, stateful): random sequences of create, batch, import, update and
retract across three namespaces, on a real store (SQLite ledger, embedded Chroma, MiniLM), each step compared with
a small in-memory model of what must be true.

The vocabulary is small on purpose, so ids collide within and across namespaces, keys collide, updates move an
edit onto another's subject and relation, and writers pass stale versions.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from agentedit.errors import DuplicateEditError, EditConflictError, EditNotFoundError, VersionConflictError
from agentedit.memory import EditMemory, shared_embedder
from store_support import assert_history_chain

NAMESPACES = ("a", "b", "c")
IDS = ("e1", "e2", "e3", "e4")
SUBJECTS = ("Alice", "Bob")
RELATIONS = ("{}'s manager is", "{} works in")
TARGETS = ("Rome", "Oslo", "Lima")

namespaces, ids, subjects, relations, targets = (st.sampled_from(v) for v in (NAMESPACES, IDS, SUBJECTS, RELATIONS, TARGETS))
items = st.lists(st.tuples(ids, subjects, relations, targets), min_size=1, max_size=3)
versions = st.one_of(st.none(), st.integers(1, 4))


class CachedEmbedder:
    """The real MiniLM embedder, each distinct text embedded once (the vocabulary makes about a dozen statements)."""

    def __init__(self) -> None:
        self.inner = shared_embedder()
        self.name = self.inner.name
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            self._cache.update(zip(todo, self.inner.embed(todo)))
        return np.stack([self._cache[t] for t in texts]) if texts else self.inner.embed([])

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


EMBEDDER = CachedEmbedder()


@dataclass
class Model:
    """What the store must hold for one edit."""

    status: str
    version: int
    key: tuple[str, str]


def fact(edit_id: str, subject: str, relation: str, target: str) -> dict[str, Any]:
    return {"id": edit_id, "subject": subject, "prompt": relation.format(subject), "target_new": target}


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="ae-props-")
        self.mem = EditMemory("t", root=self.dir, embedder=EMBEDDER)  # type: ignore[arg-type]
        self.model: dict[tuple[str, str], Model] = {}  # (namespace, id) -> model
        self.touched: set[tuple[str, str]] = set()

    def teardown(self) -> None:
        self.mem.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the model's view of a write ---------------------------------------------------------------
    def _active_of(self, ns: str, key: tuple[str, str]) -> str | None:
        return next((i for (n, i), m in self.model.items() if n == ns and m.status == "active" and m.key == key), None)

    def _supersede(self, ns: str, key: tuple[str, str], but: str | None = None) -> None:
        old = self._active_of(ns, key)
        if old is not None and old != but:
            m = self.model[(ns, old)]
            m.status, m.version = "superseded", m.version + 1
            self.touched.add((ns, old))

    def _expect_batch(self, ns: str, batch: list[tuple[str, str, str, str]]) -> bool:
        """Apply a batch to the model if the store must accept it (no id taken, none twice); returns that."""
        batch_ids = [b[0] for b in batch]
        if len(set(batch_ids)) < len(batch_ids) or any((ns, i) in self.model for i in batch_ids):
            return False
        for edit_id, subject, relation, _ in batch:
            key = (subject.lower(), relation.lower())
            self._supersede(ns, key)
            self.model[(ns, edit_id)] = Model("active", 1, key)
            self.touched.add((ns, edit_id))
        return True

    def _write_batch(self, ns: str, batch: list[tuple[str, str, str, str]], how: str) -> None:
        ok = self._expect_batch(ns, batch)
        facts = [fact(*b) for b in batch]
        try:
            if how == "import":
                path = Path(self.dir) / "import.jsonl"
                path.write_text("".join(json.dumps(f) + "\n" for f in facts), "utf-8")
                self.mem.import_file(path, namespace=ns)
            else:
                self.mem.add_many(facts, namespace=ns)
        except DuplicateEditError:
            assert not ok, f"{how} of {batch} in {ns} was refused as a duplicate"
            return
        assert ok, f"{how} of {batch} in {ns} should have been refused (an id is taken)"

    # -- rules ---------------------------------------------------------------------------------------
    @initialize()
    def start(self) -> None:
        for ns in NAMESPACES:
            self.mem.create_namespace(ns)

    @rule(ns=namespaces, item=st.tuples(ids, subjects, relations, targets))
    def create(self, ns: str, item: tuple[str, str, str, str]) -> None:
        self._write_batch(ns, [item], "create")

    @rule(ns=namespaces, batch=items)
    def batch(self, ns: str, batch: list[tuple[str, str, str, str]]) -> None:
        self._write_batch(ns, batch, "batch")

    @rule(ns=namespaces, batch=items)
    def import_file(self, ns: str, batch: list[tuple[str, str, str, str]]) -> None:
        self._write_batch(ns, batch, "import")

    def _expected_error(self, ns: str, edit_id: str, expected: int | None, *, retract: bool) -> type[Exception] | None:
        m = self.model.get((ns, edit_id))
        if m is None:
            return EditNotFoundError
        if expected is not None and expected != m.version:
            return VersionConflictError
        if m.status == "retracted" or (not retract and m.status != "active"):
            return EditConflictError
        return None

    @rule(ns=namespaces, edit_id=ids, move=st.one_of(st.none(), st.tuples(subjects, relations)), to=targets,
          expected=versions)
    def update(self, ns: str, edit_id: str, move: tuple[str, str] | None, to: str, expected: int | None) -> None:
        error = self._expected_error(ns, edit_id, expected, retract=False)
        changes: dict[str, Any] = {"target_new": to}
        if move is not None:
            changes.update(subject=move[0], prompt=move[1].format(move[0]))
        try:
            got = self.mem.update(edit_id, changes, namespace=ns, expected_version=expected)
        except (EditNotFoundError, EditConflictError) as exc:
            assert error is not None and type(exc) is error, f"update raised {exc!r}, expected {error}"
            return
        assert error is None, f"update should have raised {error.__name__}"
        m = self.model[(ns, edit_id)]
        if move is not None:
            m.key = (move[0].lower(), move[1].lower())
        self._supersede(ns, m.key, but=edit_id)  # the conflict policy holds on update too
        m.version += 1
        self.touched.add((ns, edit_id))
        assert got.version == m.version

    @rule(ns=namespaces, edit_id=ids, expected=versions)
    def retract(self, ns: str, edit_id: str, expected: int | None) -> None:
        error = self._expected_error(ns, edit_id, expected, retract=True)
        try:
            self.mem.delete(edit_id, namespace=ns, expected_version=expected)
        except (EditNotFoundError, EditConflictError) as exc:
            assert error is not None and type(exc) is error, f"retract raised {exc!r}, expected {error}"
            return
        assert error is None, f"retract should have raised {error.__name__}"
        m = self.model[(ns, edit_id)]
        m.status, m.version = "retracted", m.version + 1
        self.touched.add((ns, edit_id))

    # -- what must hold after every step ------------------------------------------------------------------
    @invariant()
    def matches_the_model(self) -> None:
        for ns in NAMESPACES:
            stored = {r.id: r for r in self.mem.list(namespace=ns, include_inactive=True)}
            assert all(r.namespace == ns for r in stored.values())
            want = {i: m for (n, i), m in self.model.items() if n == ns}
            assert {i: (r.status, r.version) for i, r in stored.items()} == {i: (m.status, m.version) for i, m in want.items()}
            active = [r for r in stored.values() if r.status == "active"]
            keys = [r.conflict_key for r in active]
            assert len(keys) == len(set(keys)), f"two active edits share a key in {ns}"
            assert set(self.mem.index.ids(ns)) == {r.id for r in active} == self.mem.ledger.active_ids(ns)
            for other, i in self.model:  # another namespace's ids are not found here
                if other != ns and i not in want:
                    with pytest.raises(EditNotFoundError):
                        self.mem.get(i, namespace=ns)

    @invariant()
    def history_is_a_chain(self) -> None:
        for ns, edit_id in sorted(self.touched):
            assert_history_chain(self.mem, ns, edit_id)
            assert {e["namespace"] for e in self.mem.history(edit_id, namespace=ns)} == {ns}
        self.touched.clear()

    @invariant()
    def queries_stay_in_their_namespace(self) -> None:
        for ns in NAMESPACES:
            hits = self.mem.query("Who is Alice's manager?", namespace=ns, k=8)
            assert {c.record.id for c in hits} <= {i for (n, i), m in self.model.items() if n == ns and m.status == "active"}
            assert all(c.record.namespace == ns for c in hits)


def test_store_follows_the_model() -> None:
    run_state_machine_as_test(StoreMachine, settings=settings(max_examples=25, stateful_step_count=12, deadline=None,
                                                              suppress_health_check=list(HealthCheck),
                                                              database=None, derandomize=True))
