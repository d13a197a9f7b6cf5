"""The ledger's SQLite schema, its version, and the move of older ledgers to the current one.

Schema versions (``meta.schema_version``; a ledger without it is version 1):

1. ``edits`` keyed by ``id`` alone: an id was unique across the whole store, so one namespace could learn
   that an id existed in another, and take ids another would use. No record versions.
2. ``edits`` keyed by ``(namespace, id)``; a ``version`` per record (1, then +1 with each change);
   ``superseded_by`` as a column (history walks it); a partial unique index allows at most one active
   edit per conflict key (``(namespace, subject, relation)``), so even a writer that skipped the
   supersession check could not leave two active. The ``conflicts`` table (possible conflicts between active
   edits, see :mod:`.conflicts`) was added to version 2 without a new version: it is created on open when
   missing, and an older agentedit ignores it.

Opening an older ledger rebuilds ``edits`` in one ``BEGIN IMMEDIATE`` transaction: every row is kept
(at version 1) and the append-only ``events`` table is left as it is (it always named the namespace).
Active duplicates of one key, which the concurrency bug of version 1 could leave behind, are resolved by the
conflict policy (the newest stays active, the others are superseded, each with a logged ``supersede``
event by actor ``migration``). Several processes opening the same old ledger at once migrate it once:
the version is read again under the write lock.
"""

from __future__ import annotations

import json
import logging
import sqlite3

from ..errors import StoreError
from ..types import utc_now

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3

_BASE = """
CREATE TABLE IF NOT EXISTS namespaces (name TEXT PRIMARY KEY, created_at TEXT NOT NULL);
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
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conflicts (
    id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    edit_id TEXT NOT NULL,
    other_id TEXT NOT NULL,
    score REAL NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    resolution TEXT,
    actor TEXT NOT NULL,
    PRIMARY KEY (namespace, id)
);
CREATE INDEX IF NOT EXISTS conflicts_ns_status ON conflicts(namespace, status);
"""

_EDITS = """
CREATE TABLE {table} (
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    status TEXT NOT NULL,
    subject TEXT,
    conflict_key TEXT,
    superseded_by TEXT,
    statement TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    record TEXT NOT NULL,
    review INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, id)
)
"""

_INDEXES = (
    "CREATE INDEX IF NOT EXISTS edits_ns_status ON edits(namespace, status)",
    "CREATE INDEX IF NOT EXISTS edits_id ON edits(id)",  # lookups by id with no namespace given
    # same-subject lookups of the conflict policy (memory/conflicts.nearby) and of `list --subject`
    "CREATE INDEX IF NOT EXISTS edits_ns_subject ON edits(namespace, lower(subject))",
    "CREATE UNIQUE INDEX IF NOT EXISTS edits_one_active ON edits(conflict_key)"
    " WHERE status = 'active' AND conflict_key IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS edits_superseded_by ON edits(namespace, superseded_by) WHERE superseded_by IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS events_ns_edit ON events(namespace, edit_id, seq)",
    # listing pages in creation order, and the review queue (version 3)
    "CREATE INDEX IF NOT EXISTS edits_ns_status_created ON edits(namespace, status, created_at, id)",
    "CREATE INDEX IF NOT EXISTS edits_review ON edits(namespace, created_at, id) WHERE review = 1",
)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def schema_version(conn: sqlite3.Connection) -> int:
    """The ledger's schema version: 0 for an empty file, 1 for a ledger from before versioning."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is not None:
        return int(row[0])
    return 1 if _has_table(conn, "edits") else 0


def ensure_schema(conn: sqlite3.Connection, path: str) -> int:
    """Create or migrate the schema (``conn`` in autocommit mode); returns how many active duplicates were resolved.

    A ledger already at this version is only read: opening it takes no write lock, so a process can open the store
    while another one holds the lock for a long reconcile."""
    if _has_table(conn, "meta") and schema_version(conn) == SCHEMA_VERSION:
        return 0
    conn.executescript(_BASE)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(conn)  # read again under the write lock: another process may have migrated
        if version > SCHEMA_VERSION:
            raise StoreError(f"ledger {path} has schema version {version}, newer than this agentedit understands "
                             f"({SCHEMA_VERSION}); upgrade agentedit to open it")
        repaired = 0
        if version == 0:
            conn.execute(_EDITS.format(table="edits"))
        elif version == 1:
            repaired = _migrate_from_v1(conn)
        if version in (1, 2):  # the review column (a v1 ledger's rebuilt table has it, still all 0)
            if "review" not in {r[1] for r in conn.execute("PRAGMA table_info(edits)")}:
                conn.execute("ALTER TABLE edits ADD COLUMN review INTEGER NOT NULL DEFAULT 0")
            conn.execute("UPDATE edits SET review = 1 WHERE json_extract(record, '$.metadata.needs_review') = 1")
        for sql in _INDEXES:
            conn.execute(sql)
        if version != SCHEMA_VERSION:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if version == 1:
        logger.warning("ledger %s: moved from schema 1 to %d (ids per namespace, record versions); %d active "
                       "duplicate(s) superseded", path, SCHEMA_VERSION, repaired)
    return repaired


def _migrate_from_v1(conn: sqlite3.Connection) -> int:
    """Rebuild ``edits`` keyed by (namespace, id) with versions; inside the caller's transaction."""
    conn.execute(_EDITS.format(table="edits_v2"))
    conn.execute(
        "INSERT INTO edits_v2 (namespace, id, version, status, subject, conflict_key, superseded_by, statement,"
        " created_at, updated_at, record)"
        " SELECT namespace, id, 1, status, subject, conflict_key, json_extract(record, '$.superseded_by'), statement,"
        " created_at, updated_at, json_set(record, '$.version', 1) FROM edits"
    )
    repaired = _supersede_duplicates(conn, "edits_v2")
    conn.execute("DROP TABLE edits")
    conn.execute("ALTER TABLE edits_v2 RENAME TO edits")
    return repaired


def _supersede_duplicates(conn: sqlite3.Connection, table: str) -> int:
    """Leave one active edit per conflict key (the newest); the others are superseded by it, with an event."""
    keys = [r[0] for r in conn.execute(
        f"SELECT conflict_key FROM {table} WHERE status = 'active' AND conflict_key IS NOT NULL"
        " GROUP BY conflict_key HAVING COUNT(*) > 1")]
    repaired = 0
    for key in keys:
        rows = conn.execute(f"SELECT id, record FROM {table} WHERE conflict_key = ? AND status = 'active'"
                            " ORDER BY created_at DESC, id DESC", (key,)).fetchall()
        winner = rows[0][0]
        for _, raw in rows[1:]:
            before = json.loads(raw)
            after = {**before, "status": "superseded", "superseded_by": winner, "version": before.get("version", 1) + 1}
            conn.execute(f"UPDATE {table} SET status = 'superseded', superseded_by = ?, version = ?, updated_at = ?,"
                         " record = ? WHERE namespace = ? AND id = ?",
                         (winner, after["version"], utc_now(), json.dumps(after, ensure_ascii=False),
                          after["namespace"], after["id"]))
            conn.execute("INSERT INTO events (at, edit_id, namespace, action, actor, batch_id, before, after)"
                         " VALUES (?, ?, ?, 'supersede', 'migration', NULL, ?, ?)",
                         (utc_now(), after["id"], after["namespace"], json.dumps(before, ensure_ascii=False),
                          json.dumps(after, ensure_ascii=False)))
            repaired += 1
    return repaired
