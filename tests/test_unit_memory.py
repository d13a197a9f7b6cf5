"""Unit tests of agentedit.memory: the Chroma index over the SQLite ledger, on real disk."""

from __future__ import annotations

import pytest

from agentedit.errors import DuplicateEditError, EditError, EditNotFoundError, StoreError, UnknownNamespaceError
from agentedit.memory import EditMemory
from memory_support import CEO, EIFFEL, LYON, _default_collection, _event_count, _indexed_ids, _ledger_count


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
