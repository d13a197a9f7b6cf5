"""Concurrent writers in threads on one store folder (real SQLite ledger, real embedded Chroma, real MiniLM).

Some threads share one ``EditMemory`` (one SQLite connection), others each open their own (separate
connections that SQLite serialises with ``BEGIN IMMEDIATE``, as separate processes would be). Chroma's
embedded client is shared within a process by design; across processes see ``test_store_processes.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentedit.errors import EditConflictError, VersionConflictError
from agentedit.memory import EditMemory
from store_support import (KEY_FACT, assert_history_chain, assert_index_matches_ledger, assert_one_active_per_key,
                           assert_single_winner, together)

N = 16


@pytest.fixture()
def handles(tmp_path: Path, embedder):
    """Four handles on one store folder: four SQLite connections, one embedded Chroma."""
    mems = [EditMemory("t", root=tmp_path, embedder=embedder) for _ in range(4)]
    yield mems
    for mem in mems:
        mem.close()


def test_16_concurrent_creates_of_one_key_leave_exactly_one_active(handles) -> None:
    ids = [f"w{i}" for i in range(N)]
    out = together(N, lambda i: handles[i % 4].add({**KEY_FACT, "target_new": f"City {i}", "id": ids[i]}))
    assert [r.id for r in out] == ids  # every create succeeded
    winner = assert_single_winner(handles[0], ids)
    hits = handles[1].query("Where is the Eiffel Tower?", k=N)
    assert [c.record.id for c in hits] == [winner]


def test_concurrent_batches_and_creates_of_one_key(handles) -> None:
    """Batches that each hold the key twice, racing single creates: still one active edit for the key."""
    def write(i: int) -> list[str]:
        if i % 2:
            return [handles[i % 4].add({**KEY_FACT, "target_new": f"City {i}", "id": f"s{i}"}).id]
        recs = handles[i % 4].add_many([{**KEY_FACT, "target_new": f"Town {i}", "id": f"b{i}-1"},
                                        {"statement": f"Depot {i} is in Lyon.", "id": f"d{i}"},
                                        {**KEY_FACT, "target_new": f"Village {i}", "id": f"b{i}-2"}])
        assert recs[0].status == "superseded" and recs[0].superseded_by == f"b{i}-2"
        return [recs[0].id, recs[2].id]
    ids = [i for got in together(8, write) for i in got]
    assert_single_winner(handles[0], ids)
    assert_one_active_per_key(handles[0])
    assert_index_matches_ledger(handles[0], ["default"])


@pytest.mark.parametrize("rounds", [3])
def test_patch_racing_delete_never_revives_a_retracted_edit(handles, rounds: int) -> None:
    for r in range(rounds):
        rec = handles[0].add({"prompt": f"Project {r} is led by", "subject": f"Project {r}", "target_new": "Ann", "id": f"p{r}"})

        def write(i: int) -> object:
            mem = handles[i % 4]
            if i == 4:
                return mem.delete(rec.id, namespace="default")
            return mem.update(rec.id, {"target_new": f"Lead {i}"}, namespace="default")

        out = together(9, write)
        assert all(not isinstance(x, BaseException) or isinstance(x, EditConflictError) for x in out), out
        final = handles[1].get(rec.id, namespace="default")
        assert final.status == "retracted"
        events = assert_history_chain(handles[2], "default", rec.id)
        assert [e["action"] for e in events].count("delete") == 1 and events[-1]["action"] == "delete"
        lost = sum(isinstance(x, EditConflictError) for x in out)
        assert lost == 8 - (len(events) - 2)  # every patch either landed before the delete or was refused
        assert rec.id not in handles[3].index.ids("default")
        assert all(c.record.id != rec.id for c in handles[3].query(f"Who leads Project {r}?", k=4))


def test_48_concurrent_patches_each_start_from_the_previous(handles) -> None:
    rec = handles[0].add({**KEY_FACT, "target_new": "Rome", "id": "hot"})
    out = together(48, lambda i: handles[i % 4].update(rec.id, {"target_new": f"City {i}"}))
    assert sorted(r.version for r in out) == list(range(2, 50))  # each saw the one before it
    events = assert_history_chain(handles[0], "default", rec.id)
    assert len(events) == 49
    stored = handles[1].get(rec.id)
    assert stored.version == 49 and stored.statement == events[-1]["after"]["statement"]
    assert handles[2].query("Where is the Eiffel Tower?", k=1)[0].record.statement == stored.statement


def test_expected_version_lets_exactly_one_of_concurrent_writers_win(handles) -> None:
    rec = handles[0].add({**KEY_FACT, "target_new": "Rome", "id": "cas"})

    def write(i: int) -> object:
        if i % 4 == 3:
            return handles[i % 4].delete(rec.id, expected_version=1)
        return handles[i % 4].update(rec.id, {"target_new": f"City {i}"}, expected_version=rec.version)

    out = together(N, write)
    winners = [x for x in out if not isinstance(x, BaseException)]
    assert len(winners) == 1 and winners[0].version == 2
    conflicts = [x for x in out if isinstance(x, VersionConflictError)]
    assert len(conflicts) == N - 1 and {(c.expected_version, c.current_version) for c in conflicts} == {(1, 2)}
    assert "version 2, not 1" in str(conflicts[0]) and "retry with version 2" in str(conflicts[0])
    assert len(assert_history_chain(handles[1], "default", rec.id)) == 2


def test_expected_version_mismatch_writes_nothing(handles) -> None:
    mem = handles[0]
    rec = mem.add({**KEY_FACT, "target_new": "Rome", "id": "v"})
    mem.update(rec.id, {"target_new": "Oslo"}, expected_version=1)
    before = mem.ledger.events("default", rec.id)
    with pytest.raises(VersionConflictError, match="at version 2, not 1") as err:
        mem.update(rec.id, {"target_new": "Lima"}, expected_version=1)
    assert err.value.current_version == 2
    with pytest.raises(VersionConflictError):
        mem.delete(rec.id, expected_version=5)
    assert mem.ledger.events("default", rec.id) == before and mem.get(rec.id).target_new == "Oslo"
    gone = mem.delete(rec.id, expected_version=2)
    assert gone.version == 3 and gone.status == "retracted"
    with pytest.raises(EditConflictError, match="already retracted"):
        mem.delete(rec.id)
    with pytest.raises(EditConflictError, match="is retracted; only active edits can be updated"):
        mem.update(rec.id, {"target_new": "Lima"}, expected_version=3)


def test_a_write_is_visible_to_every_other_handle_once_it_returns(handles) -> None:
    writer, reader = handles[0], handles[3]  # two SQLite connections to one ledger
    rec = writer.add({**KEY_FACT, "target_new": "Rome", "id": "ryw"})
    assert reader.get("ryw").version == 1 and [r.id for r in reader.list()] == ["ryw"]
    assert reader.query("Where is the Eiffel Tower?", k=1)[0].record.id == "ryw"
    writer.update(rec.id, {"target_new": "Oslo"})
    assert reader.get("ryw").target_new == "Oslo"
    writer.delete(rec.id)
    assert reader.get("ryw").status == "retracted" and reader.query("Where is the Eiffel Tower?", k=4) == []
