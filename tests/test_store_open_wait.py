"""A store that opens while another process of it holds the write lock for longer than a write may wait (a
reconcile of a large index: `serve --workers` siblings and replicas open together) waits for it instead of
failing, and does not redo the reconcile the other one finished."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from agentedit.db import connection
from agentedit.errors import LedgerBusyError
from agentedit.memory import EditMemory
from agentedit.memory import recovery

EIFFEL = {"prompt": "The Eiffel Tower is located in the city of", "subject": "Eiffel Tower", "target_new": "Rome"}


def test_an_open_waits_for_a_long_reconcile_elsewhere_and_does_not_redo_it(tmp_path, embedder, monkeypatch, caplog):
    monkeypatch.setattr(connection, "LOCK_TIMEOUT_S", 0.3)  # a write gives up after 0.3 s instead of 30
    first = EditMemory("s", root=tmp_path, embedder=embedder)
    first.add(EIFFEL)
    (first.dir / "PENDING.crashed").write_text("left by a writer that died")  # the next open must reconcile
    calls = []
    real = recovery.reconcile

    def counted(*args, **kwargs):
        calls.append(kwargs.get("only_if_needed"))
        return real(*args, **kwargs)

    monkeypatch.setattr(recovery, "reconcile", counted)
    held = threading.Event()

    def slow_reconcile() -> None:  # another process reconciling a large index: the lock held for 1.5 s
        with first.ledger.transaction():
            held.set()
            time.sleep(1.5)
            for marker in recovery.pending_markers(first.dir):
                marker.unlink()

    other = threading.Thread(target=slow_reconcile)
    other.start()
    held.wait(5)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="agentedit.memory.recovery"):
        second = EditMemory("s", root=tmp_path, embedder=embedder)  # 5x longer than a write may wait
    other.join()
    try:
        assert time.monotonic() - started >= 1.0
        assert any("waiting to check the index" in r.getMessage() for r in caplog.records)
        assert calls and all(flag is True for flag in calls)  # re-checked under the lock: nothing left to do
        assert not any("reconciled index" in r.getMessage() for r in caplog.records)
        assert [c.record.subject for c in second.query("Where is the Eiffel Tower?")] == ["Eiffel Tower"]
    finally:
        second.close()
        first.close()


def test_a_write_that_meets_a_busy_ledger_still_fails_clearly(tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(connection, "LOCK_TIMEOUT_S", 0.3)
    mem = EditMemory("s", root=tmp_path, embedder=embedder)
    other = EditMemory("s", root=tmp_path, embedder=embedder)
    try:
        with mem.ledger.transaction():
            with pytest.raises(LedgerBusyError, match="another writer may have held it"):
                other.add(EIFFEL)
        assert other.count() == 0
    finally:
        other.close()
        mem.close()
