"""SQLite ledger beside the Chroma index: the system of record for edits.

Two tables matter. ``edits`` holds the current version of every record (active,
superseded or retracted); ``events`` is an append-only audit log of every add,
update, supersede and delete with time and actor (triggers refuse UPDATE and
DELETE on it). Chroma only indexes the active edits and is rebuilt from here
when the two disagree, so a crash mid-write never loses an acknowledged edit.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..types import EditRecord, utc_now

_SCHEMA = """
CREATE TABLE IF NOT EXISTS namespaces (name TEXT PRIMARY KEY, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS edits (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    status TEXT NOT NULL,
    subject TEXT,
    conflict_key TEXT,
    statement TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS edits_ns_status ON edits(namespace, status);
CREATE INDEX IF NOT EXISTS edits_conflict ON edits(conflict_key, status);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    edit_id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    batch_id TEXT,
    before TEXT,
    after TEXT
);
CREATE INDEX IF NOT EXISTS events_edit ON events(edit_id);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _key(rec: EditRecord) -> str | None:
    key = rec.conflict_key
    return None if key is None else json.dumps(key)


class Ledger:
    """Thread-safe access to the SQLite file; writes happen inside :meth:`transaction`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self.lock = threading.RLock()

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back if the block raises."""
        with self.lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- writes (call inside transaction) ---------------------------------------------------
    @staticmethod
    def put(conn: sqlite3.Connection, rec: EditRecord) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO edits (id, namespace, status, subject, conflict_key, statement, created_at, updated_at, record)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (rec.id, rec.namespace, rec.status, rec.subject, _key(rec), rec.statement, rec.created_at, utc_now(),
             json.dumps(rec.to_dict(), ensure_ascii=False)),
        )

    @staticmethod
    def log(conn: sqlite3.Connection, action: str, rec: EditRecord, *, actor: str, batch_id: str | None = None,
            before: EditRecord | None = None) -> None:
        conn.execute(
            "INSERT INTO events (at, edit_id, namespace, action, actor, batch_id, before, after) VALUES (?,?,?,?,?,?,?,?)",
            (utc_now(), rec.id, rec.namespace, action, actor, batch_id,
             None if before is None else json.dumps(before.to_dict(), ensure_ascii=False),
             json.dumps(rec.to_dict(), ensure_ascii=False)),
        )

    @staticmethod
    def ensure_namespace(conn: sqlite3.Connection, name: str) -> None:
        conn.execute("INSERT OR IGNORE INTO namespaces (name, created_at) VALUES (?, ?)", (name, utc_now()))

    # -- reads ---------------------------------------------------------------------------------
    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return self._conn.execute(sql, args).fetchall()

    def get(self, edit_id: str) -> EditRecord | None:
        rows = self._rows("SELECT record FROM edits WHERE id = ?", (edit_id,))
        return EditRecord.from_dict(json.loads(rows[0][0])) if rows else None

    def get_many(self, ids: list[str]) -> dict[str, EditRecord]:
        out: dict[str, EditRecord] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for (raw,) in self._rows(f"SELECT record FROM edits WHERE id IN ({marks})", tuple(chunk)):
                rec = EditRecord.from_dict(json.loads(raw))
                out[rec.id] = rec
        return out

    def existing_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self._rows(f"SELECT id FROM edits WHERE id IN ({marks})", tuple(chunk)))
        return found

    def active_by_key(self, key: tuple[str, str, str]) -> list[EditRecord]:
        rows = self._rows("SELECT record FROM edits WHERE conflict_key = ? AND status = 'active'", (json.dumps(key),))
        return [EditRecord.from_dict(json.loads(r[0])) for r in rows]

    def namespaces(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT name FROM namespaces ORDER BY name")]

    def has_namespace(self, name: str) -> bool:
        return bool(self._rows("SELECT 1 FROM namespaces WHERE name = ?", (name,)))

    def active_ids(self) -> set[str]:
        return {r[0] for r in self._rows("SELECT id FROM edits WHERE status = 'active'")}

    def active_namespaces(self) -> dict[str, str]:
        """``{edit id: namespace}`` of every active edit."""
        return dict(self._rows("SELECT id, namespace FROM edits WHERE status = 'active'"))  # type: ignore[arg-type]

    def count(self, namespace: str | None = None, status: str | None = "active") -> int:
        sql, args = "SELECT COUNT(*) FROM edits WHERE 1=1", []
        if namespace is not None:
            sql += " AND namespace = ?"
            args.append(namespace)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        return int(self._rows(sql, tuple(args))[0][0])

    def query(self, *, namespace: str | None, subject: str | None, text: str | None, statuses: tuple[str, ...],
              limit: int | None, offset: int) -> list[EditRecord]:
        sql, args = "SELECT record FROM edits WHERE 1=1", []
        if namespace is not None:
            sql += " AND namespace = ?"
            args.append(namespace)
        if statuses:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args.extend(statuses)
        if subject is not None:
            sql += " AND lower(subject) = lower(?)"
            args.append(" ".join(subject.split()))
        if text is not None:
            sql += " AND lower(statement) LIKE ? ESCAPE '\\'"
            args.append("%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        sql += " ORDER BY created_at, id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args.extend([limit, offset])
        return [EditRecord.from_dict(json.loads(r[0])) for r in self._rows(sql, tuple(args))]

    def events(self, edit_id: str) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT seq, at, edit_id, namespace, action, actor, batch_id, before, after FROM events WHERE edit_id = ? ORDER BY seq",
            (edit_id,),
        )
        names = ("seq", "at", "edit_id", "namespace", "action", "actor", "batch_id", "before", "after")
        out = []
        for row in rows:
            ev = dict(zip(names, row))
            ev["before"] = json.loads(ev["before"]) if ev["before"] else None
            ev["after"] = json.loads(ev["after"]) if ev["after"] else None
            out.append(ev)
        return out

    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
