"""Unit tests of agentedit.memory: the Chroma index over the SQLite ledger, on real disk."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agentedit.errors import (DuplicateEditError, EditError, EditNotFoundError, ImportFormatError, StoreError,
                              UnknownNamespaceError)
from agentedit.memory import DEFAULT_NAMESPACE, EditMemory
from agentedit.memory.index import ChromaIndex

EIFFEL = {"prompt": "The Eiffel Tower is located in", "subject": "Eiffel Tower", "target_new": "Rome", "id": "eiffel"}
CEO = {"prompt": "The CEO of Acme Corp is", "subject": "Acme Corp", "target_new": "Jane Doe", "id": "acme-ceo"}
LYON = {"statement": "The Globex office moved to Lyon.", "id": "globex-office"}


def _event_count(mem: EditMemory) -> int:
    with sqlite3.connect(mem.dir / "ledger.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def _ledger_count(mem: EditMemory) -> int:
    with sqlite3.connect(mem.dir / "ledger.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM edits").fetchone()[0]


def _default_collection(mem: EditMemory) -> Any:
    """The Chroma collection behind the default namespace (the tests' way to corrupt the index directly)."""
    assert isinstance(mem.index, ChromaIndex)
    return mem.index.collection(DEFAULT_NAMESPACE)


def _indexed_ids(mem: EditMemory) -> set[str]:
    return set(_default_collection(mem).get(include=[])["ids"])


def _open(root: Path, embedder) -> EditMemory:
    return EditMemory("t", root=root, embedder=embedder)


# -- add / get / list ------------------------------------------------------------------------------
def test_add_get_and_list_filters(memory: EditMemory) -> None:
    memory.add(EIFFEL)
    memory.add(CEO)
    memory.add(LYON, namespace="ops")
    got = memory.get("eiffel")
    assert got.statement == "The Eiffel Tower is located in Rome." and got.status == "active"
    assert [r.id for r in memory.list(namespace="default")] == ["eiffel", "acme-ceo"]
    assert [r.id for r in memory.list(namespace="ops")] == ["globex-office"]
    assert {r.id for r in memory.list()} == {"eiffel", "acme-ceo", "globex-office"}
    assert [r.id for r in memory.list(subject="acme corp")] == ["acme-ceo"]
    assert [r.id for r in memory.list(text="LYON")] == ["globex-office"]
    assert [r.id for r in memory.list(text="50%")] == []  # LIKE wildcards are escaped
    assert [r.id for r in memory.list(limit=1, offset=1, namespace="default")] == ["acme-ceo"]
    assert memory.count("default") == 2 and memory.count() == 3
    assert memory.namespaces() == ["default", "ops"]


def test_text_filter_matches_edit_text_not_record_field_names(memory: EditMemory) -> None:
    # `list(text=...)` (CLI: "--text: Substring of the fact") also searches the stored JSON record, so
    # field names such as "created_at" or "superseded_by" must not match every edit.
    memory.add_many([EIFFEL, LYON])
    assert [r.id for r in memory.list(text="Rome")] == ["eiffel"]
    assert memory.list(text="superseded_by") == []
    assert memory.list(text="created_at") == []


def test_get_unknown_or_wrong_namespace(memory: EditMemory) -> None:
    memory.add(EIFFEL)
    with pytest.raises(EditNotFoundError, match="no edit with id 'nope'"):
        memory.get("nope")
    with pytest.raises(EditNotFoundError, match="in namespace 'ops'"):
        memory.get("eiffel", namespace="ops")


def test_list_unknown_namespace_raises(memory: EditMemory) -> None:
    with pytest.raises(UnknownNamespaceError, match="namespace 'ghost' does not exist"):
        memory.list(namespace="ghost")
    memory.create_namespace("ghost")
    assert memory.list(namespace="ghost") == []


def test_query_returns_nearest_with_similarity(memory: EditMemory) -> None:
    memory.add_many([EIFFEL, CEO])
    cands = memory.query("In which city is the Eiffel Tower?", k=2)
    assert [c.record.id for c in cands] == ["eiffel", "acme-ceo"]
    assert cands[0].similarity > 0.6 > cands[1].similarity
    assert memory.query("anything", k=0) == []


def test_namespaces_isolate_queries(memory: EditMemory) -> None:
    memory.add(EIFFEL, namespace="tenant-a")
    memory.add(CEO, namespace="tenant-b")
    hits_b = memory.query("Where is the Eiffel Tower located?", namespace="tenant-b", k=4)
    assert [c.record.id for c in hits_b] == ["acme-ceo"]
    hits_a = memory.query("Where is the Eiffel Tower located?", namespace="tenant-a", k=4)
    assert [c.record.id for c in hits_a] == ["eiffel"]
    assert memory.query("Where is the Eiffel Tower located?", namespace="default") == []


def test_validity_window_is_respected(memory: EditMemory) -> None:
    memory.add({**EIFFEL, "valid_from": "2030-01-01T00:00:00+00:00"})
    assert memory.query("Where is the Eiffel Tower?") == []
    assert [c.record.id for c in memory.query("Where is the Eiffel Tower?", at="2031-01-01T00:00:00+00:00")] == ["eiffel"]


# -- update ----------------------------------------------------------------------------------------
def test_update_is_logged_and_reindexed(memory: EditMemory) -> None:
    memory.add(EIFFEL)
    new = memory.update("eiffel", {"target_new": "Berlin"}, actor="alice")
    assert new.statement == "The Eiffel Tower is located in Berlin."
    assert new.relation == "The {} is located in"
    assert memory.get("eiffel").target_new == "Berlin"
    events = memory.history("eiffel")
    assert [e["action"] for e in events] == ["add", "update"]
    upd = events[-1]
    assert upd["actor"] == "alice"
    assert upd["before"]["target_new"] == "Rome" and upd["after"]["target_new"] == "Berlin"
    hit = memory.query("The Eiffel Tower is located in Berlin.", k=1)[0]
    assert hit.record.id == "eiffel" and hit.record.target_new == "Berlin"
    assert hit.similarity > 0.99  # the index holds the new text, not the old one
    assert memory.count() == 1 and _indexed_ids(memory) == {"eiffel"}


def test_update_statement_of_statement_edit(memory: EditMemory) -> None:
    memory.add(LYON)
    new = memory.update("globex-office", {"statement": "The Globex office moved to Marseille."})
    assert new.statement == "The Globex office moved to Marseille."
    top = memory.query("Where is the Globex office now?", k=1)[0]
    assert top.record.statement == "The Globex office moved to Marseille."


def test_update_target_of_statement_edit_keeps_statement_consistent(memory: EditMemory) -> None:
    # A statement-shaped edit with subject and target: changing the target must not leave the
    # injected statement naming the old target (nor lose the relation that keys supersession).
    memory.add({"statement": "Alice's manager is Bob.", "subject": "Alice", "target_new": "Bob", "id": "mgr"})
    new = memory.update("mgr", {"target_new": "Carol"})
    assert new.target_new == "Carol"
    assert "Carol" in new.statement and "Bob" not in new.statement
    assert new.relation == "{}'s manager is"


def test_update_refuses_protected_fields_and_inactive_edits(memory: EditMemory) -> None:
    memory.add(EIFFEL)
    with pytest.raises(EditError, match="status cannot be changed"):
        memory.update("eiffel", {"status": "retracted"})
    with pytest.raises(EditError, match="target_new is empty"):
        memory.update("eiffel", {"target_new": "  "})
    assert memory.get("eiffel").target_new == "Rome"
    memory.delete("eiffel")
    with pytest.raises(EditError, match="is retracted; only active edits"):
        memory.update("eiffel", {"target_new": "Berlin"})


# -- delete ----------------------------------------------------------------------------------------
def test_delete_leaves_retrieval_but_keeps_history(memory: EditMemory) -> None:
    memory.add_many([EIFFEL, CEO])
    gone = memory.delete("eiffel", actor="bob")
    assert gone.status == "retracted"
    assert [c.record.id for c in memory.query("Where is the Eiffel Tower?", k=4)] == ["acme-ceo"]
    assert [r.id for r in memory.list()] == ["acme-ceo"]
    listed = {r.id: r.status for r in memory.list(include_inactive=True)}
    assert listed == {"eiffel": "retracted", "acme-ceo": "active"}
    events = memory.history("eiffel")
    assert [(e["action"], e["actor"]) for e in events] == [("add", "user"), ("delete", "bob")]
    assert events[-1]["before"]["status"] == "active" and events[-1]["after"]["status"] == "retracted"
    with pytest.raises(EditError, match="already retracted"):
        memory.delete("eiffel")
    assert _indexed_ids(memory) == {"acme-ceo"}


# -- duplicates and atomic batches -----------------------------------------------------------------
def test_duplicate_of_existing_id_writes_nothing(memory: EditMemory) -> None:
    memory.add(EIFFEL)
    before_events, before_rows = _event_count(memory), _ledger_count(memory)
    with pytest.raises(DuplicateEditError, match="'eiffel' already exists"):
        memory.add_many([CEO, {**LYON, "id": "eiffel"}])
    assert _event_count(memory) == before_events
    assert _ledger_count(memory) == before_rows == 1
    assert _indexed_ids(memory) == {"eiffel"}
    assert memory.get("eiffel").statement == "The Eiffel Tower is located in Rome."


def test_add_many_with_bad_third_record_writes_nothing(memory: EditMemory) -> None:
    memory.add(LYON)
    before_events = _event_count(memory)
    batch = [EIFFEL, CEO, {"prompt": "The mayor of Springfield is", "target_new": ""}, {"statement": "Later."}]
    with pytest.raises(EditError, match=r"edit #2: target_new is empty"):
        memory.add_many(batch)
    assert _ledger_count(memory) == 1
    assert _default_collection(memory).count() == 1
    assert _event_count(memory) == before_events
    with pytest.raises(EditNotFoundError):
        memory.get("eiffel")


def test_failed_index_write_raises_store_error_and_ledger_stays_empty(memory: EditMemory,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_upsert(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(_default_collection(memory), "upsert", broken_upsert)
    with pytest.raises(StoreError, match="disk full.*nothing was stored"):
        memory.add_many([EIFFEL, CEO])
    assert _ledger_count(memory) == 0
    assert _event_count(memory) == 0
    assert _default_collection(memory).count() == 0
    monkeypatch.undo()
    assert memory.add(EIFFEL).id == "eiffel"  # the store still works afterwards


def test_failed_index_write_on_supersede_keeps_old_edit_active(memory: EditMemory,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    memory.add(EIFFEL)

    def broken_upsert(**kwargs):
        raise RuntimeError("index offline")

    monkeypatch.setattr(_default_collection(memory), "upsert", broken_upsert)
    with pytest.raises(StoreError):
        memory.add({**EIFFEL, "id": "eiffel-2", "target_new": "Berlin"})
    monkeypatch.undo()
    assert memory.get("eiffel").status == "active"
    assert [c.record.id for c in memory.query("Where is the Eiffel Tower?", k=4)] == ["eiffel"]


# -- conflict policy -----------------------------------------------------------------------------
def test_newer_edit_supersedes_older_same_subject_and_relation(memory: EditMemory) -> None:
    memory.add(EIFFEL)
    newer = memory.add({"prompt": "the eiffel tower is located in", "subject": "eiffel tower", "target_new": "Berlin",
                        "id": "eiffel-2"})
    assert newer.supersedes == "eiffel"
    old = memory.get("eiffel")
    assert old.status == "superseded" and old.superseded_by == "eiffel-2"
    assert [c.record.id for c in memory.query("Where is the Eiffel Tower located?", k=4)] == ["eiffel-2"]
    assert [r.id for r in memory.list()] == ["eiffel-2"]
    hist = memory.history("eiffel-2")
    assert [(e["edit_id"], e["action"]) for e in hist] == [("eiffel", "add"), ("eiffel-2", "add"), ("eiffel", "supersede")]
    assert hist[-1]["after"]["superseded_by"] == "eiffel-2"


def test_other_relation_or_namespace_does_not_supersede(memory: EditMemory) -> None:
    memory.add(EIFFEL)
    memory.add({"prompt": "The Eiffel Tower was designed by", "subject": "Eiffel Tower", "target_new": "Gaudi", "id": "design"})
    memory.add({**EIFFEL, "id": "eiffel-ops"}, namespace="ops")
    assert memory.get("eiffel").status == "active"
    assert memory.get("design").supersedes is None
    assert memory.get("eiffel-ops").supersedes is None


def test_supersession_within_one_batch(memory: EditMemory) -> None:
    recs = memory.add_many([EIFFEL, CEO, {**EIFFEL, "id": "eiffel-2", "target_new": "Berlin"}])
    by_id = {r.id: r for r in recs}
    assert by_id["eiffel"].status == "superseded" and by_id["eiffel"].superseded_by == "eiffel-2"
    assert by_id["eiffel-2"].supersedes == "eiffel"
    assert memory.get("eiffel").status == "superseded"
    assert _indexed_ids(memory) == {"acme-ceo", "eiffel-2"}
    hist = memory.history("eiffel-2")
    assert ("eiffel", "supersede") in [(e["edit_id"], e["action"]) for e in hist]
    assert len({e["batch_id"] for e in hist}) == 1


def test_chain_of_supersessions_in_history(memory: EditMemory) -> None:
    memory.add(EIFFEL)
    memory.add({**EIFFEL, "id": "eiffel-2", "target_new": "Berlin"})
    memory.add({**EIFFEL, "id": "eiffel-3", "target_new": "Madrid"})
    ids = [e["edit_id"] for e in memory.history("eiffel-3")]
    assert {"eiffel", "eiffel-2", "eiffel-3"} == set(ids)
    assert memory.get("eiffel-2").status == "superseded"
    assert memory.count() == 1


# -- import / export -------------------------------------------------------------------------------
def test_export_import_round_trip(memory: EditMemory, tmp_path: Path, embedder) -> None:
    memory.add_many([EIFFEL, {**CEO, "metadata": {"source": "ticket-12"}, "target_old": "John Roe"}])
    memory.add({**EIFFEL, "id": "eiffel-ops"}, namespace="ops")
    out = tmp_path / "export.jsonl"
    assert memory.export_file(out, namespace="default") == 2
    lines = out.read_text("utf-8").splitlines()
    assert len(lines) == 2 and all(json.loads(line)["namespace"] == "default" for line in lines)

    fresh = EditMemory("fresh", root=tmp_path / "other", embedder=embedder)
    try:
        imported = fresh.import_file(out)
        assert [r.id for r in imported] == ["eiffel", "acme-ceo"]
        for orig in memory.list(namespace="default"):
            got = fresh.get(orig.id)
            for field in ("statement", "subject", "prompt", "relation", "target_new", "target_old", "namespace",
                          "metadata", "actor"):
                assert getattr(got, field) == getattr(orig, field), field
        assert [c.record.id for c in fresh.query("Who runs Acme Corp?", k=1)] == ["acme-ceo"]
    finally:
        fresh.close()


def test_export_import_round_trip_of_statement_edit(memory: EditMemory, tmp_path: Path, embedder) -> None:
    # export_file writes full records, where a statement-only edit has "target_new": null;
    # import_file must accept its own export format.
    memory.add(LYON)
    out = tmp_path / "export.jsonl"
    assert memory.export_file(out) == 1
    fresh = EditMemory("fresh", root=tmp_path / "other", embedder=embedder)
    try:
        imported = fresh.import_file(out)
        assert [(r.id, r.statement) for r in imported] == [("globex-office", "The Globex office moved to Lyon.")]
    finally:
        fresh.close()


def test_import_file_bad_line_is_atomic(memory: EditMemory, tmp_path: Path) -> None:
    path = tmp_path / "edits.jsonl"
    path.write_text(json.dumps(EIFFEL) + "\n" + json.dumps({"prompt": "The CEO of X is", "target_new": ""}) + "\n", "utf-8")
    with pytest.raises(EditError, match="line 2: target_new is empty"):
        memory.import_file(path)
    assert _ledger_count(memory) == 0
    path.write_text(json.dumps(EIFFEL) + "\nnot json\n", "utf-8")
    with pytest.raises(ImportFormatError, match="line 2"):
        memory.import_file(path)
    assert _ledger_count(memory) == 0 and _default_collection(memory).count() == 0


# -- audit log -------------------------------------------------------------------------------------
def test_audit_log_is_append_only(memory: EditMemory) -> None:
    memory.add(EIFFEL)
    conn = sqlite3.connect(memory.dir / "ledger.sqlite")
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE events SET actor = 'mallory'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM events")
        conn.rollback()
        assert conn.execute("SELECT actor FROM events").fetchall() == [("user",)]
    finally:
        conn.close()


# -- persistence and recovery --------------------------------------------------------------------
def test_reopen_keeps_edits(tmp_path: Path, embedder) -> None:
    mem = _open(tmp_path, embedder)
    mem.add_many([EIFFEL, CEO])
    mem.add(LYON, namespace="ops")
    mem.close()
    with _open(tmp_path, embedder) as again:
        assert {r.id for r in again.list()} == {"eiffel", "acme-ceo", "globex-office"}
        assert again.namespaces() == ["default", "ops"]
        assert again.query("Where is the Eiffel Tower?", k=1)[0].record.id == "eiffel"
        assert [e["action"] for e in again.history("eiffel")] == ["add"]


def test_reopen_removes_index_entries_the_ledger_never_acknowledged(tmp_path: Path, embedder) -> None:
    mem = _open(tmp_path, embedder)
    mem.add(EIFFEL)
    # Simulate a crash between the Chroma write and the ledger commit.
    _default_collection(mem).upsert(ids=["stray"], embeddings=[embedder.embed_one("The Eiffel Tower is in Oslo.")],
                                    documents=["The Eiffel Tower is in Oslo."], metadatas=[{"namespace": "default", "subject": ""}])
    (mem.dir / "PENDING").write_text("crash")
    # Even before reconciliation the unacknowledged edit is never served.
    assert [c.record.id for c in mem.query("Where is the Eiffel Tower?", k=4)] == ["eiffel"]
    mem.close()
    with _open(tmp_path, embedder) as again:
        assert _indexed_ids(again) == {"eiffel"}
        assert not (again.dir / "PENDING").exists()


def test_reopen_reindexes_edits_missing_from_the_index(tmp_path: Path, embedder) -> None:
    mem = _open(tmp_path, embedder)
    mem.add_many([EIFFEL, CEO])
    _default_collection(mem).delete(ids=["acme-ceo"])
    assert _indexed_ids(mem) == {"eiffel"}
    mem.close()
    with _open(tmp_path, embedder) as again:
        assert _indexed_ids(again) == {"eiffel", "acme-ceo"}
        assert again.query("Who is the CEO of Acme Corp?", k=1)[0].record.id == "acme-ceo"


def test_reconcile_reports_what_it_fixed(memory: EditMemory, embedder) -> None:
    memory.add_many([EIFFEL, CEO])
    _default_collection(memory).delete(ids=["eiffel"])
    _default_collection(memory).upsert(ids=["ghost"], embeddings=[embedder.embed_one("ghost")], documents=["ghost"],
                                       metadatas=[{"namespace": "default", "subject": ""}])
    assert memory.reconcile() == {"removed": 1, "reindexed": 1}
    assert _indexed_ids(memory) == {"eiffel", "acme-ceo"}


def test_store_refuses_another_embedder(tmp_path: Path, embedder) -> None:
    _open(tmp_path, embedder).close()
    cfg = tmp_path / "t" / "store.json"
    data = json.loads(cfg.read_text("utf-8"))
    data["embedder"] = "some-other-model"
    cfg.write_text(json.dumps(data), "utf-8")
    with pytest.raises(StoreError, match="built with embedder 'some-other-model'"):
        _open(tmp_path, embedder)


def test_invalid_store_name(tmp_path: Path, embedder) -> None:
    with pytest.raises(EditError, match="invalid namespace"):
        EditMemory("../escape", root=tmp_path, embedder=embedder)


def test_candidate_is_still_importable_from_the_memory_package() -> None:
    import agentedit.memory
    import agentedit.types

    assert agentedit.memory.Candidate is agentedit.types.Candidate
