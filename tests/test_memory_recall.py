"""The recall cache: a repeated question skips the index search, and never serves what the ledger changed since.

A second ``EditMemory`` on the same store folder stands in for another process or replica writing meanwhile."""

from __future__ import annotations

import pytest

from agentedit.memory import EditMemory

EIFFEL = {"prompt": "The Eiffel Tower is located in the city of", "subject": "Eiffel Tower", "target_new": "Rome"}
LOUVRE = {"prompt": "The Louvre is located in the city of", "subject": "Louvre", "target_new": "Berlin"}
Q = "In which city is the Eiffel Tower?"


@pytest.fixture()
def counted(memory, monkeypatch):
    calls = []
    real = memory.index.query

    def query(namespace, vector, k):
        calls.append(namespace)
        return real(namespace, vector, k)

    monkeypatch.setattr(memory.index, "query", query)
    return memory, calls


def _ids(cands) -> list[str]:
    return [c.record.id for c in cands]


def test_a_repeated_question_is_answered_without_searching_again(counted):
    mem, calls = counted
    rec = mem.add(EIFFEL)
    first = mem.query(Q, k=2)
    again = mem.query(Q, k=2)
    assert _ids(first) == _ids(again) == [rec.id] and len(calls) == 1 and mem.recall.hits == 1
    assert [c.similarity for c in first] == [c.similarity for c in again]
    mem.query(Q, k=3)  # another k is another question
    mem.query(Q + " ", k=2)
    assert len(calls) == 3


def test_a_write_through_another_store_object_is_seen_at_once(counted, tmp_path, embedder):
    mem, calls = counted
    assert mem.query(Q) == []
    other = EditMemory("t", root=tmp_path / "stores", embedder=embedder)  # another writer of the same store
    try:
        rec = other.add(EIFFEL)
        assert _ids(mem.query(Q)) == [rec.id]
        other.add(LOUVRE)  # an unrelated write still makes the entry stale: the search runs again
        searched = len(calls)
        assert _ids(mem.query(Q))[0] == rec.id and len(calls) == searched + 1
        other.delete(rec.id)
        assert rec.id not in _ids(mem.query(Q))
        newer = other.add({**EIFFEL, "target_new": "Madrid"})
        assert _ids(mem.query(Q))[0] == newer.id
    finally:
        other.close()


def test_validity_times_are_checked_on_every_call(memory):
    rec = memory.add({**EIFFEL, "valid_until": "2030-01-01T00:00:00+00:00"})
    assert _ids(memory.query(Q, at="2029-06-01T00:00:00+00:00")) == [rec.id]
    assert memory.query(Q, at="2031-01-01T00:00:00+00:00") == []  # same entry, later time: expired
    assert memory.recall.hits == 1


def test_changing_a_returned_record_does_not_change_the_cache(memory):
    memory.add(EIFFEL)
    memory.query(Q)[0].record.target_new = "changed by a caller"
    assert memory.query(Q)[0].record.target_new == "Rome"


def test_entries_expire_and_a_reconcile_clears_them(counted, monkeypatch):
    mem, calls = counted
    mem.add(EIFFEL)
    mem.query(Q)
    mem.reconcile()
    mem.query(Q)
    assert len(calls) == 2
    mem.recall.ttl = 0.0
    mem.query(Q)
    assert len(calls) == 3
