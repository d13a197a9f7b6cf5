"""The ledger beside the vector index: the system of record for edits (SQLite file or PostgreSQL server).

Two tables matter. ``edits`` holds the current version of every record (active,
superseded or retracted), keyed by ``(namespace, id)``; ``events`` is an append-only
audit log of every add, update, supersede and delete with time and actor (triggers
refuse UPDATE and DELETE on it). The index only holds the active edits and is rebuilt
from here when the two disagree, so a crash mid-write never loses an acknowledged edit.
The schemas and their migrations are in :mod:`.schema` (SQLite) and :mod:`agentedit.db.postgres_schema` (PostgreSQL).

Every read-check-write happens inside :meth:`Ledger.transaction`, which holds the store's write lock
(SQLite's ``BEGIN IMMEDIATE``; PostgreSQL's advisory lock on the store's schema): one writer at a time,
across threads, processes and hosts, and the reads a writer makes inside its transaction see the latest
committed state and its own writes, so a check cannot go stale before its write.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Iterator

from ..errors import StoreError
from ..types import EditRecord, utc_now
from ..db.connection import Conn, Database, PostgresDatabase, SqliteDatabase, is_postgres_url
from ..db.postgres_schema import open_store_database
from .schema import ensure_schema


def stored_key(rec: EditRecord) -> str | None:
    """The conflict key as the ledger stores it (JSON), or None."""
    key = rec.conflict_key
    return None if key is None else json.dumps(key)


def stored_json(rec: EditRecord) -> str:
    """The stored form of a record (a write's ``conflicts`` report is not part of it)."""
    data = rec.to_dict()
    data.pop("conflicts", None)
    return json.dumps(data, ensure_ascii=False)


def _review(rec: EditRecord) -> int:
    """1 when the record's statement parse waits for a person's review (the ``review`` column, indexed)."""
    return 1 if rec.metadata.get("needs_review") else 0


def _record(raw: str) -> EditRecord:
    return EditRecord.from_dict(json.loads(raw))


def _chunks(ids: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def open_database(target: "Path | str", store: str = "default", *, migrate: bool = True) -> Database:
    """The ledger database: a SQLite file at ``target``, or the PostgreSQL database at URL ``target`` (store
    ``store`` is its schema there; ``migrate`` applies missing migrations)."""
    if is_postgres_url(str(target)):
        return open_store_database(str(target), store, migrate=migrate)
    return SqliteDatabase(Path(target), schema=ensure_schema)


class Ledger:
    """Thread-safe access to the system of record; writes happen inside :meth:`transaction`."""

    def __init__(self, target: "Path | str | None" = None, *, db: Database | None = None) -> None:
        if db is None:
            if target is None:
                raise ValueError("Ledger needs a path, a database URL or a Database")
            db = open_database(target)
        self.db = db
        self.path = db.where
        #: active duplicates of one conflict key that opening an older SQLite ledger resolved (see :mod:`.schema`)
        self.repaired = db.opened

    @property
    def shared(self) -> bool:
        """Whether other hosts may write this ledger (PostgreSQL), so nothing derived from it may live on one disk."""
        return isinstance(self.db, PostgresDatabase)

    def close(self) -> None:
        self.db.close()

    def transaction(self) -> AbstractContextManager[Conn]:
        """The store's write lock and one transaction, rolled back if the block raises.

        Other writers wait (up to :data:`agentedit.db.connection.LOCK_TIMEOUT_S`); reads made through this ledger inside the block see
        its own writes."""
        return self.db.transaction()

    # -- writes (call inside transaction) ---------------------------------------------------
    @staticmethod
    def insert(conn: Conn, rec: EditRecord) -> None:
        """A new record (its ``(namespace, id)`` must be free: the caller checked inside the same transaction)."""
        conn.execute(
            "INSERT INTO edits (namespace, id, version, status, subject, conflict_key, superseded_by, statement,"
            " created_at, updated_at, record, review) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (rec.namespace, rec.id, rec.version, rec.status, rec.subject, stored_key(rec), rec.superseded_by, rec.statement,
             rec.created_at, utc_now(), stored_json(rec), _review(rec)),
        )

    @staticmethod
    def insert_rows(conn: Conn, recs: "list[EditRecord]") -> None:
        """:meth:`insert` for many records in one statement batch (a pipeline on PostgreSQL)."""
        now = utc_now()
        conn.executemany(
            "INSERT INTO edits (namespace, id, version, status, subject, conflict_key, superseded_by, statement,"
            " created_at, updated_at, record, review) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [(r.namespace, r.id, r.version, r.status, r.subject, stored_key(r), r.superseded_by, r.statement, r.created_at,
              now, stored_json(r), _review(r)) for r in recs])

    @staticmethod
    def log_rows(conn: Conn, events: "list[tuple[str, str, str, str | None, str]]", *, actor: str,
                 batch_id: str | None) -> None:
        """Many events of one batch at once, in order: ``(action, edit id, namespace, before json, after json)``."""
        now = utc_now()
        conn.executemany(
            "INSERT INTO events (at, edit_id, namespace, action, actor, batch_id, before, after) VALUES (?,?,?,?,?,?,?,?)",
            [(now, eid, ns, action, actor, batch_id, before, after) for action, eid, ns, before, after in events])

    @staticmethod
    def replace(conn: Conn, rec: EditRecord, *, prev_version: int) -> None:
        """Store ``rec`` over the row at ``prev_version`` (compare and swap); a row at another version is an error."""
        cur = conn.execute(
            "UPDATE edits SET version = ?, status = ?, subject = ?, conflict_key = ?, superseded_by = ?, statement = ?,"
            " updated_at = ?, record = ?, review = ? WHERE namespace = ? AND id = ? AND version = ?",
            (rec.version, rec.status, rec.subject, stored_key(rec), rec.superseded_by, rec.statement, utc_now(),
             stored_json(rec), _review(rec), rec.namespace, rec.id, prev_version),
        )
        if cur.rowcount != 1:
            raise StoreError(f"edit {rec.id!r} in namespace {rec.namespace!r} changed under a write transaction "
                             f"(expected version {prev_version}); nothing was written, retry the operation")

    @staticmethod
    def log(conn: Conn, action: str, rec: EditRecord, *, actor: str, batch_id: str | None = None,
            before: EditRecord | None = None) -> None:
        conn.execute(
            "INSERT INTO events (at, edit_id, namespace, action, actor, batch_id, before, after) VALUES (?,?,?,?,?,?,?,?)",
            (utc_now(), rec.id, rec.namespace, action, actor, batch_id,
             None if before is None else stored_json(before),
             stored_json(rec)),
        )

    @staticmethod
    def ensure_namespace(conn: Conn, name: str) -> None:
        conn.execute("INSERT INTO namespaces (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (name, utc_now()))

    # -- reads ---------------------------------------------------------------------------------
    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read (inside this thread's open transaction, if any, so it sees that transaction's writes)."""
        return self.db.rows(sql, args)

    def get(self, namespace: str, edit_id: str) -> EditRecord | None:
        rows = self.rows("SELECT record FROM edits WHERE namespace = ? AND id = ?", (namespace, edit_id))
        return _record(rows[0][0]) if rows else None

    def find(self, edit_id: str) -> list[EditRecord]:
        """The records with this id in every namespace (an id is unique only within its namespace)."""
        return [_record(r[0]) for r in self.rows("SELECT record FROM edits WHERE id = ? ORDER BY namespace", (edit_id,))]

    def version(self) -> int:
        """The sequence number of the newest audit event: every change of the ledger logs one, and writers of a store
        are serialised (one lock per store, also on PostgreSQL), so a new number means something changed."""
        rows = self.rows("SELECT MAX(seq) FROM events")
        return int(rows[0][0] or 0) if rows else 0

    def get_many(self, namespace: str, ids: list[str]) -> dict[str, EditRecord]:
        """``{id: record}`` of the ids that exist in ``namespace``."""
        out: dict[str, EditRecord] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for (raw,) in self.rows(f"SELECT record FROM edits WHERE namespace = ? AND id IN ({marks})",
                                     (namespace, *chunk)):
                rec = _record(raw)
                out[rec.id] = rec
        return out

    def existing_ids(self, namespace: str, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.rows(f"SELECT id FROM edits WHERE namespace = ? AND id IN ({marks})",
                                                  (namespace, *chunk)))
        return found

    def active_by_keys(self, keys: "list[str]") -> dict[str, EditRecord]:
        """``{stored conflict key: the active edit}`` for the keys (JSON, as stored) that have one."""
        out: dict[str, EditRecord] = {}
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            for key, raw in self.rows(f"SELECT conflict_key, record FROM edits WHERE status = 'active' AND conflict_key"
                                      f" IN ({marks})", tuple(chunk)):
                out[key] = _record(raw)
        return out

    def active_by_key(self, key: tuple[str, str, str]) -> list[EditRecord]:
        """The active edit of a conflict key (at most one: a unique index holds the invariant)."""
        rows = self.rows("SELECT record FROM edits WHERE conflict_key = ? AND status = 'active'", (json.dumps(key),))
        return [_record(r[0]) for r in rows]

    def superseded_by(self, namespace: str, edit_id: str) -> list[EditRecord]:
        """The edits of ``namespace`` that ``edit_id`` superseded."""
        rows = self.rows("SELECT record FROM edits WHERE namespace = ? AND superseded_by = ?", (namespace, edit_id))
        return [_record(r[0]) for r in rows]

    def namespaces(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT name FROM namespaces ORDER BY name")]

    def has_namespace(self, name: str) -> bool:
        return bool(self.rows("SELECT 1 FROM namespaces WHERE name = ?", (name,)))

    def active_ids(self, namespace: str) -> set[str]:
        """Ids of the active edits of ``namespace``."""
        return {r[0] for r in self.rows("SELECT id FROM edits WHERE namespace = ? AND status = 'active'", (namespace,))}

    def active_keys(self) -> set[tuple[str, str]]:
        """``(namespace, id)`` of every active edit."""
        return {(r[0], r[1]) for r in self.rows("SELECT namespace, id FROM edits WHERE status = 'active'")}

    def count(self, namespace: str | None = None, status: str | None = "active") -> int:
        sql, args = "SELECT COUNT(*) FROM edits WHERE 1=1", []
        if namespace is not None:
            sql += " AND namespace = ?"
            args.append(namespace)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        return int(self.rows(sql, tuple(args))[0][0])

    def query(self, *, namespace: str | None, subject: str | None, text: str | None, statuses: tuple[str, ...],
              limit: int | None, offset: int, review: bool = False, created: tuple[str | None, str | None] = (None, None)
              ) -> list[EditRecord]:
        """Records in creation order; ``created`` is a window ``[from, before)`` of ISO times (either end open)."""
        sql, args = "SELECT record FROM edits WHERE 1=1", []
        if review:
            sql += " AND review = 1"
        if created[0]:
            sql += " AND created_at >= ?"
            args.append(created[0])
        if created[1]:
            sql += " AND created_at < ?"
            args.append(created[1])
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
        sql += " ORDER BY created_at, namespace, id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args.extend([limit, offset])
        return [EditRecord.from_dict(json.loads(r[0])) for r in self.rows(sql, tuple(args))]

    def events(self, namespace: str, edit_id: str) -> list[dict[str, Any]]:
        rows = self.rows(
            "SELECT seq, at, edit_id, namespace, action, actor, batch_id, before, after FROM events"
            " WHERE namespace = ? AND edit_id = ? ORDER BY seq",
            (namespace, edit_id),
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
        rows = self.rows("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (key, value))
