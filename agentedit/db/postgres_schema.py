"""The ledger's PostgreSQL schema and its numbered migrations.

Each store is one PostgreSQL schema (see :func:`~.connection.schema_name`) holding the same tables as the SQLite
ledger (:mod:`.schema`) plus what replicas on other hosts must find without a shared disk: the API keys
(``api_keys``, SQLite keeps them in ``keys.sqlite``), the store's settings (``meta.store_config``, SQLite keeps
``store.json``), files such as a trained scope model (``files``), and the write-in-progress markers of recovery
(``pending``, SQLite keeps ``PENDING.*`` files).

``meta.schema_version`` is the number of the last migration applied. :func:`upgrade` applies the missing ones in
order, each in one transaction under the store's advisory lock, so replicas starting together migrate once;
a schema newer than this agentedit refuses to open. ``agentedit db upgrade`` runs the same function.
"""

from __future__ import annotations

import logging
from ..errors import StoreError
from ..settings import env
from .connection import PostgresDatabase

logger = logging.getLogger(__name__)

#: migration number -> its statements; never edit a released one, add the next
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE namespaces (name TEXT PRIMARY KEY, created_at TEXT NOT NULL)",
        """CREATE TABLE edits (
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
            PRIMARY KEY (namespace, id))""",
        "CREATE INDEX edits_ns_status ON edits(namespace, status)",
        "CREATE INDEX edits_id ON edits(id)",
        "CREATE INDEX edits_ns_subject ON edits(namespace, lower(subject))",
        "CREATE UNIQUE INDEX edits_one_active ON edits(conflict_key) WHERE status = 'active' AND conflict_key IS NOT NULL",
        "CREATE INDEX edits_superseded_by ON edits(namespace, superseded_by) WHERE superseded_by IS NOT NULL",
        "CREATE INDEX edits_created ON edits(created_at, namespace, id)",
        """CREATE TABLE events (
            seq BIGSERIAL PRIMARY KEY,
            at TEXT NOT NULL,
            edit_id TEXT NOT NULL,
            namespace TEXT NOT NULL,
            action TEXT NOT NULL,
            actor TEXT NOT NULL,
            batch_id TEXT,
            before TEXT,
            after TEXT)""",
        "CREATE INDEX events_ns_edit ON events(namespace, edit_id, seq)",
        """CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'restrict_violation'; END $$""",
        "CREATE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON events FOR EACH ROW"
        " EXECUTE FUNCTION events_append_only()",
        """CREATE TABLE conflicts (
            id TEXT NOT NULL,
            namespace TEXT NOT NULL,
            edit_id TEXT NOT NULL,
            other_id TEXT NOT NULL,
            score DOUBLE PRECISION NOT NULL,
            reason TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
            created_at TEXT NOT NULL,
            resolved_at TEXT,
            resolution TEXT,
            actor TEXT NOT NULL,
            PRIMARY KEY (namespace, id))""",
        "CREATE INDEX conflicts_ns_status ON conflicts(namespace, status)",
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            hash TEXT NOT NULL,
            role TEXT NOT NULL,
            namespaces TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT)""",
        "CREATE TABLE files (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, data BYTEA NOT NULL, updated_at TEXT NOT NULL)",
        # a write between its index update and its commit; ``backend`` is the writer's server process: a marker
        # whose backend is gone was left by a writer that died, and the next reconcile clears it
        "CREATE TABLE pending (id TEXT PRIMARY KEY, backend INTEGER NOT NULL, at TEXT NOT NULL)",
    ),
    2: (  # the review queue as a query, and listing pages in creation order without a sort of the namespace
        "ALTER TABLE edits ADD COLUMN review INTEGER NOT NULL DEFAULT 0",
        "UPDATE edits SET review = 1 WHERE (record::jsonb #>> '{metadata,needs_review}') = 'true'",
        "CREATE INDEX edits_ns_status_created ON edits(namespace, status, created_at, id)",
        "CREATE INDEX edits_review ON edits(namespace, created_at, id) WHERE review = 1",
    ),
}

SCHEMA_VERSION = max(MIGRATIONS)


def _version(conn) -> int:  # type: ignore[no-untyped-def]
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def current_version(db: PostgresDatabase) -> int:
    """The store's schema version (0: nothing created yet)."""
    rows = db.rows("SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = 'meta'",
                   (db.schema,))
    if not rows:
        return 0
    found = db.rows("SELECT value FROM meta WHERE key = 'schema_version'")
    return int(found[0][0]) if found else 0


def upgrade(db: PostgresDatabase, *, migrate: bool = True) -> list[int]:
    """Apply the missing migrations (returns their numbers). With ``migrate=False`` an outdated schema is an error
    that says to run ``agentedit db upgrade`` (for deployments that migrate as a separate step). A schema already
    at this version is only read: no lock, so a replica opens while another one holds the store's lock."""
    if current_version(db) == SCHEMA_VERSION:
        return []
    with db.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        version = _version(conn)  # read under the store's lock: another replica may have migrated
        if version > SCHEMA_VERSION:
            raise StoreError(f"store schema {db.schema} at {db.where} is at version {version}, newer than this agentedit "
                             f"understands ({SCHEMA_VERSION}); upgrade agentedit on this replica")
        todo = [n for n in sorted(MIGRATIONS) if n > version]
        if todo and not migrate:
            raise StoreError(f"store schema {db.schema} at {db.where} is at version {version}, this agentedit needs "
                             f"{SCHEMA_VERSION}; run `agentedit db upgrade` (automatic migration is off)")
        for number in todo:
            for sql in MIGRATIONS[number]:
                conn.execute(sql)
            conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE "
                         "SET value = excluded.value", (str(number),))
    if todo:
        logger.info("store schema %s at %s: applied migration(s) %s", db.schema, db.where, todo)
    return todo


def open_store_database(url: str, store: str, *, migrate: bool = True, wait_s: "float | None | str" = "env"
                        ) -> PostgresDatabase:
    """The store's schema of the database at ``url``, migrated to this agentedit's version (unless ``migrate`` is
    off or ``AGENTEDIT_DATABASE_MIGRATE=off``: then an outdated schema is an error naming ``agentedit db upgrade``)."""
    # deployments that migrate as a separate step (`agentedit db upgrade`) turn the automatic one off
    migrate = migrate and (env("AGENTEDIT_DATABASE_MIGRATE") or "auto").lower() not in ("off", "0", "false", "no")

    def schema(db: PostgresDatabase) -> int:
        upgrade(db, migrate=migrate)
        return 0  # PostgreSQL stores start at the current shape: nothing to repair

    return PostgresDatabase(url, store, schema=schema, wait_s=wait_s)
