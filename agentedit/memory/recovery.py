"""Crash recovery: write-in-progress markers and reconciling the vector index with the ledger.

A write holds the ledger transaction open while it updates the index. Inside that transaction it leaves a
marker and removes it once the transaction committed, so a marker left behind means a process died between
the index write and the commit. The next open then reconciles: index entries the ledger never acknowledged are
dropped, active edits missing from the index are re-embedded.

Markers live where every process that writes the store can see them: ``PENDING.<id>`` files in the store
folder for a SQLite ledger (one machine), rows of the ``pending`` table for a PostgreSQL ledger (replicas on
other hosts). A row is committed on its own connection, so the writer's rollback does not take it away, and it
names the writer's database backend: a marker whose backend is gone was left by a writer that died, which any
replica notices (:func:`dead_writers`) without waiting for that writer to restart.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Protocol

from ..errors import LedgerBusyError
from ..types import utc_now
from .embed import Embedder
from .index import VectorIndex, index_records, unindex
from .ledger import Ledger

logger = logging.getLogger(__name__)


class Marker(Protocol):
    """A write-in-progress marker: a ``PENDING.<id>`` file, a ``pending`` row, or nothing (pgvector)."""

    def unlink(self, missing_ok: bool = ...) -> None: ...


class DbMarker:
    """A ``pending`` row of a shared ledger; ``unlink`` removes it (like a marker file's)."""

    def __init__(self, ledger: Ledger, marker_id: str) -> None:
        self.ledger, self.id = ledger, marker_id

    def unlink(self, missing_ok: bool = True) -> None:
        self.ledger.db.execute_apart("DELETE FROM pending WHERE id = ?", (self.id,))


class _NoMarker:
    def unlink(self, missing_ok: bool = True) -> None:
        return None


def mark(directory: Path, ledger: Ledger, index: VectorIndex | None = None) -> Marker:
    """Mark one write as in flight, inside its ledger transaction (see the module docstring); an index written in
    the ledger's own transaction (pgvector) cannot be left behind, so it needs none."""
    if getattr(index, "transactional", False):
        return _NoMarker()
    if not ledger.shared:
        return mark_pending(directory)
    marker = DbMarker(ledger, uuid.uuid4().hex[:12])
    backend = ledger.rows("SELECT pg_backend_pid()")[0][0]  # the writer's transaction connection
    ledger.db.execute_apart("INSERT INTO pending (id, backend, at) VALUES (?, ?, ?)", (marker.id, backend, utc_now()))
    return marker


def dead_writers(ledger: Ledger) -> int:
    """Markers of a shared ledger whose writer's database backend is gone (0 for a SQLite ledger)."""
    if not ledger.shared:
        return 0
    rows = ledger.rows("SELECT COUNT(*) FROM pending WHERE backend NOT IN (SELECT pid FROM pg_stat_activity)")
    return int(rows[0][0])


def pending_markers(directory: Path) -> list[Path]:
    """Write-in-progress markers: one ``PENDING.<id>`` per unfinished write (``PENDING`` from older versions)."""
    return list(directory.glob("PENDING*"))


def mark_pending(directory: Path) -> Path:
    """Mark one write as in flight (inside its ledger transaction); the writer removes its own marker."""
    marker = directory / f"PENDING.{uuid.uuid4().hex[:12]}"
    with open(marker, "w") as fh:
        fh.write(utc_now())
        fh.flush()
        os.fsync(fh.fileno())
    return marker


def needs_reconcile(directory: Path, ledger: Ledger, index: VectorIndex) -> bool:
    """Whether a write was left unfinished or the index and the ledger count different active edits."""
    indexed = index.count()
    unfinished = dead_writers(ledger) if ledger.shared else len(pending_markers(directory))
    return bool(unfinished) or indexed != ledger.count(status="active")


def reconcile_at_open(name: str, directory: Path, ledger: Ledger, index: VectorIndex, embedder: Embedder, *,
                      wait_s: float = 3600.0) -> dict[str, int] | None:
    """Reconcile when :func:`needs_reconcile` says so, as a store opens. Another process of the store (a replica,
    a ``serve --workers`` sibling) may be reconciling the same index at that moment, which can hold the write lock
    for minutes on a large store: wait for it (saying so in the log) instead of failing, and skip the work when
    that process already did it."""
    if not (ledger.repaired or needs_reconcile(directory, ledger, index)):
        return None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return reconcile(name, directory, ledger, index, embedder, only_if_needed=not ledger.repaired)
        except LedgerBusyError:
            if time.monotonic() > deadline:
                raise
            logger.warning("store %s: another process holds the write lock (a reconcile of a large index can take "
                           "minutes); waiting to check the index", name)


def reconcile(name: str, directory: Path, ledger: Ledger, index: VectorIndex, embedder: Embedder, *,
              only_if_needed: bool = False) -> dict[str, int]:
    """Make ``index`` hold exactly the ledger's active edits, each with its stored statement; returns how many
    entries were removed and (re-)indexed.

    Runs under the ledger's write lock, so a writer in another process sharing this store (replicas over
    one Chroma server) is never caught between its index write and its commit. With ``only_if_needed`` it does
    nothing when, under the lock, :func:`needs_reconcile` no longer holds (another process did it meanwhile).
    ``name`` is the store's, for the log.
    """
    with ledger.transaction():
        if only_if_needed and not needs_reconcile(directory, ledger, index):
            return {"removed": 0, "reindexed": 0}
        wanted = ledger.active_keys()
        indexed: dict[tuple[str, str], str] = {}
        for ns in index.namespaces():  # ids are unique per namespace, and each namespace has its own partition
            indexed.update(((ns, i), doc) for i, doc in index.documents(ns).items())
        extra = sorted(set(indexed) - wanted)
        unindex(index, extra)
        by_ns: dict[str, list[str]] = {}
        for ns, i in sorted(wanted):
            by_ns.setdefault(ns, []).append(i)
        missing = 0
        for ns, ids in by_ns.items():
            recs = ledger.get_many(ns, ids)
            # absent from the index, or indexed with a text the ledger never committed (an update cut short)
            records = [recs[i] for i in ids if i in recs and indexed.get((ns, i)) != recs[i].statement]
            if records:
                index_records(index, records, embedder.embed([r.statement for r in records]))
                missing += len(records)
        # no write is in flight while we hold the lock: every marker is stale
        if ledger.shared:
            ledger.db.execute_apart("DELETE FROM pending")
        for marker in pending_markers(directory):
            marker.unlink(missing_ok=True)
    if extra or missing:
        logger.warning("store %s: reconciled index with ledger (%d removed, %d re-indexed)", name, len(extra), missing)
    return {"removed": len(extra), "reindexed": missing}
