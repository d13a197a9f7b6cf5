"""SQL databases of the system of record: an embedded SQLite file or a shared PostgreSQL server.

:mod:`.connection` holds the two connections behind one small interface; :mod:`.postgres_schema` the numbered
migrations of a store's PostgreSQL schema. What is stored (edits, events, keys) is the memory's and the
server's business; this package only connects, locks and migrates.
"""

from .connection import (Conn, Database, PostgresDatabase, SqliteDatabase, connect_wait_s, is_postgres_url, redact,
                         schema_name, set_connect_wait)

__all__ = ["Conn", "Database", "PostgresDatabase", "SqliteDatabase", "connect_wait_s", "is_postgres_url", "redact",
           "schema_name", "set_connect_wait"]
