"""Unit tests of agentedit.memory on real disk: import/export, the append-only log, reopening and crash reconcile."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agentedit.errors import EditError, ImportFormatError, StoreError
from agentedit.memory import EditMemory
from memory_support import CEO, EIFFEL, LYON, _default_collection, _indexed_ids, _ledger_count, _open


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


def test_reopen_after_an_update_cut_short_restores_the_committed_text(tmp_path: Path, embedder) -> None:
    # An update that moved "eiffel" onto the CEO key died after its index write and before its commit:
    # the index holds the uncommitted statement under the edit's id and has dropped the edit it superseded.
    mem = _open(tmp_path, embedder)
    mem.add_many([EIFFEL, CEO])
    text = "The CEO of Acme Corp is Nobody."
    _default_collection(mem).upsert(ids=["eiffel"], embeddings=[embedder.embed_one(text)], documents=[text],
                                    metadatas=[{"namespace": "default", "subject": "Acme Corp"}])
    _default_collection(mem).delete(ids=["acme-ceo"])
    (mem.dir / "PENDING.crashed").write_text("crash")
    mem.close()
    with _open(tmp_path, embedder) as again:
        docs = again.index.documents("default")
        assert docs == {"eiffel": "The Eiffel Tower is located in Rome.", "acme-ceo": "The CEO of Acme Corp is Jane Doe."}
        assert again.query("Who is the CEO of Acme Corp?", k=1)[0].record.id == "acme-ceo"
        assert again.get("eiffel").version == 1 and not list(again.dir.glob("PENDING*"))


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
