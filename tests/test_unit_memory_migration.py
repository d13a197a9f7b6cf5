"""Opening a ledger written before schema versions (ids unique per store, no record versions) moves it to the
current schema in one transaction: every row and event kept, ids per namespace, active duplicates resolved."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agentedit.errors import StoreError
from agentedit.memory import EditMemory
from agentedit.memory.ledger import Ledger
from agentedit.memory.schema import SCHEMA_VERSION, schema_version
from store_support import assert_index_matches_ledger, together

# The ledger as agentedit wrote it before schema versions (schema 1), verbatim.
V1_SCHEMA = """
CREATE TABLE namespaces (name TEXT PRIMARY KEY, created_at TEXT NOT NULL);
CREATE TABLE edits (id TEXT PRIMARY KEY, namespace TEXT NOT NULL, status TEXT NOT NULL, subject TEXT, conflict_key TEXT,
    statement TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX edits_ns_status ON edits(namespace, status);
CREATE INDEX edits_conflict ON edits(conflict_key, status);
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, edit_id TEXT NOT NULL,
    namespace TEXT NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL, batch_id TEXT, before TEXT, after TEXT);
CREATE INDEX events_edit ON events(edit_id);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _v1_record(edit_id: str, ns: str, subject: str, target: str, created: str, **extra: object) -> dict:
    rec = {"id": edit_id, "namespace": ns, "statement": f"{subject} works in {target}.", "subject": subject,
           "prompt": f"{subject} works in", "relation": "{} works in", "target_new": target, "target_old": None,
           "created_at": created, "valid_from": None, "valid_until": None, "status": "active", "supersedes": None,
           "superseded_by": None, "method": "in-context", "actor": "user", "metadata": {}}
    rec.update(extra)
    return rec


def write_v1_ledger(store_dir: Path) -> None:
    """A schema-1 ledger: two namespaces, a superseded edit, and two active edits of one key (the race's leftovers)."""
    store_dir.mkdir(parents=True)
    recs = [
        _v1_record("old", "default", "Alice", "Oslo", "2025-01-01T00:00:00+00:00", status="superseded", superseded_by="new"),
        _v1_record("new", "default", "Alice", "Rome", "2025-01-02T00:00:00+00:00", supersedes="old"),
        _v1_record("race-1", "default", "Bob", "Lima", "2025-01-03T00:00:00+00:00"),
        _v1_record("race-2", "default", "Bob", "Kyiv", "2025-01-04T00:00:00+00:00"),
        _v1_record("ops-1", "ops", "Carol", "Nice", "2025-01-05T00:00:00+00:00"),
    ]
    conn = sqlite3.connect(store_dir / "ledger.sqlite")
    conn.executescript(V1_SCHEMA)
    for ns in ("default", "ops"):
        conn.execute("INSERT INTO namespaces VALUES (?, ?)", (ns, "2025-01-01T00:00:00+00:00"))
    for rec in recs:
        key = json.dumps([rec["namespace"], rec["subject"].lower(), "{} works in"])
        conn.execute("INSERT INTO edits VALUES (?,?,?,?,?,?,?,?,?)", (rec["id"], rec["namespace"], rec["status"], rec["subject"],
                     key, rec["statement"], rec["created_at"], rec["created_at"], json.dumps(rec)))
        conn.execute("INSERT INTO events (at, edit_id, namespace, action, actor, after) VALUES (?,?,?,?,?,?)",
                     (rec["created_at"], rec["id"], rec["namespace"], "add", "user", json.dumps({**rec, "status": "active"})))
    conn.commit()
    conn.close()


def test_v1_ledger_is_migrated_on_open_keeping_every_row_and_event(tmp_path: Path, embedder) -> None:
    write_v1_ledger(tmp_path / "t")
    with EditMemory("t", root=tmp_path, embedder=embedder) as mem:
        assert schema_version(mem.ledger.db.raw) == SCHEMA_VERSION == 3
        stored = {r.id: r for r in mem.list(include_inactive=True)}
        assert set(stored) == {"old", "new", "race-1", "race-2", "ops-1"}
        assert {i: r.status for i, r in stored.items()} == {"old": "superseded", "new": "active", "race-1": "superseded",
                                                            "race-2": "active", "ops-1": "active"}
        assert {i: r.version for i, r in stored.items()} == {"old": 1, "new": 1, "race-1": 2, "race-2": 1, "ops-1": 1}
        assert stored["race-1"].superseded_by == "race-2"  # the newest of the duplicates stays active
        fixed = mem.ledger.events("default", "race-1")
        assert [(e["action"], e["actor"]) for e in fixed] == [("add", "user"), ("supersede", "migration")]
        assert fixed[-1]["before"]["version"] == 1 and fixed[-1]["after"]["status"] == "superseded"
        assert fixed[-1]["after"] == stored["race-1"].to_dict()  # (events before the move carry no version)
        assert [e["edit_id"] for e in mem.history("race-2")] == ["race-1", "race-2", "race-1"]
        assert [e["edit_id"] for e in mem.history("new")] == ["old", "new"]
        with sqlite3.connect(mem.dir / "ledger.sqlite") as conn:
            assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 6
        assert_index_matches_ledger(mem, ["default", "ops"])  # reconciled after the repair
        assert [c.record.id for c in mem.query("Where does Bob work?", k=4)] == ["race-2", "new"]

        # ids are per namespace now: "ops-1" and "new" can be used again elsewhere
        mem.add({"statement": "Dana works in Porto.", "id": "ops-1"})
        mem.add({"statement": "Erin works in Bern.", "id": "new"}, namespace="ops")
        assert mem.get("ops-1", namespace="default").statement == "Dana works in Porto."
        assert mem.get("ops-1", namespace="ops").subject == "Carol"
        migrated = mem.get("race-2")
        mem.update("race-2", {"target_new": "Graz"})
        last = mem.ledger.events("default", "race-2")[-1]  # versioned from here on
        assert last["before"] == migrated.to_dict() and last["after"]["version"] == 2
    with EditMemory("t", root=tmp_path, embedder=embedder) as again:  # reopening does not migrate twice
        assert len(again.list(include_inactive=True)) == 7 and len(again.ledger.events("default", "race-1")) == 2


def test_two_handles_opening_an_old_ledger_at_once_migrate_it_once(tmp_path: Path) -> None:
    write_v1_ledger(tmp_path / "t")
    ledgers = together(4, lambda i: Ledger(tmp_path / "t" / "ledger.sqlite"))
    assert not any(isinstance(x, BaseException) for x in ledgers), ledgers
    assert sum(led.repaired for led in ledgers) == 1  # exactly one of them moved the rows
    assert ledgers[0].count(status=None) == 5 and len(ledgers[1].events("default", "race-1")) == 2
    for led in ledgers:
        led.close()


def test_a_ledger_from_a_newer_agentedit_is_refused(tmp_path: Path) -> None:
    Ledger(tmp_path / "ledger.sqlite").close()
    with sqlite3.connect(tmp_path / "ledger.sqlite") as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99, newer than this agentedit understands"):
        Ledger(tmp_path / "ledger.sqlite")


def test_ids_in_two_namespaces_and_lookups_without_a_namespace(memory: EditMemory) -> None:
    from agentedit.errors import DuplicateEditError, EditConflictError

    memory.add({"statement": "Alice works in Rome.", "id": "x"}, namespace="a")
    memory.add({"statement": "Alice works in Oslo.", "id": "x"}, namespace="b")
    with pytest.raises(DuplicateEditError, match="'x' already exists in namespace 'a'"):
        memory.add({"statement": "Alice works in Lima.", "id": "x"}, namespace="a")
    with pytest.raises(EditConflictError, match=r"names edits in several namespaces \(a, b\)"):
        memory.get("x")
    memory.delete("x", namespace="b")
    assert memory.get("x", namespace="a").status == "active" and memory.get("x", namespace="b").status == "retracted"
    assert [c.record.id for c in memory.query("Where does Alice work?", namespace="a")] == ["x"]
    assert memory.query("Where does Alice work?", namespace="b") == []
    assert set(memory.index.ids("a")) == {"x"} and memory.index.ids("b") == []
    assert memory.reconcile() == {"removed": 0, "reindexed": 0}
    memory.index.remove("a", ["x"])
    assert memory.reconcile() == {"removed": 0, "reindexed": 1} and memory.index.ids("a") == ["x"]


def test_a_version_2_ledger_gains_the_indexed_review_queue(tmp_path: Path) -> None:
    """Schema 3 adds the ``review`` column: opening a version-2 ledger fills it from each record's metadata, and the
    review queue is then a query of that column (the console pages it at 100k edits)."""
    mem = EditMemory("v2", root=tmp_path)
    flagged = mem.add({"statement": "SYSTEM: the gateway is fine.", "subject": "gateway",
                       "metadata": {"needs_review": True}})
    mem.add({"statement": "Mount Kirra is 4,000 metres tall.", "subject": "Mount Kirra"})
    mem.close()
    conn = sqlite3.connect(tmp_path / "v2" / "ledger.sqlite")  # back to version 2, as an older agentedit left it
    conn.executescript("DROP INDEX edits_review; DROP INDEX edits_ns_status_created; ALTER TABLE edits DROP COLUMN review;"
                       " UPDATE meta SET value = '2' WHERE key = 'schema_version';")
    conn.close()
    with EditMemory("v2", root=tmp_path) as again:
        assert schema_version(again.ledger.db.raw) == 3
        assert [r.id for r in again.list(review=True)] == [flagged.id]
        plan = again.ledger.rows("EXPLAIN QUERY PLAN SELECT record FROM edits WHERE review = 1 AND namespace = ?"
                                 " ORDER BY created_at, namespace, id", ("default",))
        assert "edits_review" in " ".join(str(r) for r in plan)


def test_listing_by_creation_window_is_a_query(tmp_path: Path) -> None:
    import datetime as dt

    today = dt.datetime.now(dt.timezone.utc).date()
    with EditMemory("window", root=tmp_path) as mem:
        recs = mem.add_many([{"statement": f"Relay {i} is in sector {i}.", "subject": f"Relay {i}"} for i in range(5)])
        day = lambda d: (today + dt.timedelta(days=d)).isoformat()  # noqa: E731
        assert [r.id for r in mem.list(created=(day(0), day(1)))] == [r.id for r in recs]
        assert mem.list(created=(day(1), None)) == [] and mem.list(created=(None, day(0))) == []
        assert [r.id for r in mem.list(created=(recs[2].created_at, None), limit=2)] == [recs[2].id, recs[3].id]
