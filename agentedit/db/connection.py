"""Where the system of record lives: an embedded SQLite file or a shared PostgreSQL server.

:class:`Database` is what the ledger and the key store need from SQL: a write transaction that holds the
store's write lock (one writer at a time, across threads, processes and, on PostgreSQL, hosts), reads that
see the caller's own uncommitted writes when made inside that transaction, and errors turned into
:class:`~agentedit.errors.StoreError` messages that say what to do.

SQL is written once, with ``?`` placeholders and the syntax both servers share (``ON CONFLICT``, partial
indexes); :class:`PostgresDatabase` turns ``?`` into psycopg's ``%s``. Schemas and their migrations are
per dialect (:mod:`agentedit.memory.schema` and :mod:`.postgres_schema`).

On PostgreSQL each store is one schema (``agentedit_<name>``) of the database, so one server holds many
stores and several replicas share one; the write lock is a transaction-level advisory lock on that schema.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence
from urllib.parse import urlsplit

from ..errors import ConfigError, LedgerBusyError, StoreError, StoreUnavailableError
from ..settings import env

logger = logging.getLogger(__name__)

#: how long a writer waits for another writer's transaction before giving up
LOCK_TIMEOUT_S = 30.0
#: how long opening a PostgreSQL store keeps retrying an unreachable server, unless ``AGENTEDIT_DATABASE_WAIT``
#: (seconds, or ``forever``) says otherwise
CONNECT_WAIT_S = 30.0


_wait_override: list[str] = []


def set_connect_wait(value: str) -> float | None:
    """Make this process wait ``value`` (seconds or ``forever``) for an unreachable database, whatever the
    environment says (``agentedit serve --database-wait``); returns the parsed value, or raises ConfigError."""
    parsed = connect_wait_s(value)
    _wait_override[:] = [value]
    return parsed


def connect_wait_s(raw: str | None = None) -> float | None:
    """How long to retry an unreachable database: ``raw``, else :func:`set_connect_wait`'s value, else
    ``AGENTEDIT_DATABASE_WAIT``, else :data:`CONNECT_WAIT_S` (seconds; None: ``forever``)."""
    raw = (raw or (_wait_override[0] if _wait_override else None) or env("AGENTEDIT_DATABASE_WAIT") or "").strip().lower()
    if not raw:
        return CONNECT_WAIT_S
    if raw in ("forever", "inf", "infinite"):
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ConfigError(f"AGENTEDIT_DATABASE_WAIT={raw!r} is not a number of seconds or 'forever'") from None


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Conn(Protocol):
    """What a transaction hands its block: ``execute`` with ``?`` placeholders."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...


class Database(Protocol):
    dialect: str
    #: where it is, for messages (never with a password)
    where: str
    #: what the schema step returned when it was opened (the ledger: active duplicates a migration resolved)
    opened: int

    def transaction(self) -> Any:
        """A context manager: the store's write lock and one transaction, rolled back if the block raises."""
        ...

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """One statement in its own transaction (or in the caller's, when one is open); returns the rowcount."""
        ...

    def execute_apart(self, sql: str, args: Sequence[Any] = ()) -> int:
        """One statement committed on its own, even inside an open transaction (which may still roll back)."""
        ...

    def close(self) -> None: ...


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and str(url).split(":", 1)[0] in ("postgres", "postgresql", "postgresql+psycopg")


def redact(url: str) -> str:
    """``url`` without its password (for logs and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def _integrity(where: str, exc: Exception) -> StoreError:
    return StoreError(f"the ledger at {where} refused a write that would break its invariants ({exc}); nothing was "
                      "written; retry, and report it if it happens again")


class SqliteDatabase:
    """One SQLite file (WAL), one connection shared by this process's threads under a lock."""

    dialect = "sqlite"

    def __init__(self, path: Path, *, schema: Callable[[sqlite3.Connection, str], int] | None = None) -> None:
        self.where = str(path)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=LOCK_TIMEOUT_S)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self.lock = threading.RLock()
        #: what the schema step returned (the ledger: active duplicates an old file's migration resolved)
        self.opened = schema(self._conn, self.where) if schema is not None else 0

    @property
    def raw(self) -> sqlite3.Connection:
        return self._conn

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # mostly: another writer held the file past the timeout
                busy = "locked" in str(exc) or "busy" in str(exc)
                raise (LedgerBusyError if busy else StoreError)(
                    f"could not start a write on the ledger {self.where} ({exc}); another writer may have held it "
                    f"for over {LOCK_TIMEOUT_S:g} s; nothing was written; retry, or look for a stuck process") from exc
            try:
                yield self._conn
            except sqlite3.IntegrityError as exc:  # a constraint (one active edit per key, unique ids) held
                self._conn.execute("ROLLBACK")
                raise _integrity(self.where, exc) from exc
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return self._conn.execute(sql, tuple(args)).fetchall()

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self.lock:
            return self._conn.execute(sql, tuple(args)).rowcount

    def execute_apart(self, sql: str, args: Sequence[Any] = ()) -> int:
        raise StoreError("a SQLite ledger has one connection: nothing can be committed apart from its transaction")


@lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PgConn:
    """A psycopg connection that takes the ledger's ``?`` SQL."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._conn.execute(_pg_sql(sql), tuple(args))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        with self._conn.cursor() as cur:  # psycopg pipelines the statements: one round trip per batch, not per row
            cur.executemany(_pg_sql(sql), [tuple(r) for r in rows])


_SCHEMA_NAME = re.compile(r"[a-z0-9_]{1,63}")


def schema_name(store: str) -> str:
    """The PostgreSQL schema of store ``store`` (lower case; other characters become ``_`` plus a short hash)."""
    clean = re.sub(r"[^a-z0-9_]", "_", store.lower())
    name = f"agentedit_{clean}"
    if clean != store or len(name) > 63:  # two names that clean alike must not share a schema
        name = f"{name[:50]}_{hashlib.sha256(store.encode()).hexdigest()[:8]}"
    assert _SCHEMA_NAME.fullmatch(name)
    return name


class PostgresDatabase:
    """A pool of connections to one PostgreSQL database, every connection in the store's schema.

    Opening retries an unreachable server for ``wait_s`` seconds (None: until it answers), saying so in the
    log each time; later, a connection the server dropped is replaced by the pool, and a request that meets
    a down server fails with a :class:`StoreError` that writes nothing."""

    dialect = "postgresql"

    def __init__(self, url: str, store: str, *, schema: Callable[["PostgresDatabase"], int] | None = None,
                 wait_s: float | None | str = "env", max_size: int = 8) -> None:
        try:
            from psycopg_pool import ConnectionPool
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise ConfigError("PostgreSQL support needs psycopg: `pip install 'psycopg[binary]' psycopg-pool`") from exc
        self.where = redact(url)
        self.schema = schema_name(store)
        self._lock_key = int.from_bytes(hashlib.sha256(self.schema.encode()).digest()[:8], "big", signed=True)
        self._local = threading.local()
        self._wait_until_reachable(url, connect_wait_s() if wait_s == "env" else wait_s)  # type: ignore[arg-type]
        self._pool = ConnectionPool(url, min_size=1, max_size=max_size, open=False, configure=self._configure,
                                    kwargs={"autocommit": True, "connect_timeout": 5,
                                            # pgvector's HNSW candidate list (a placeholder setting where it is absent):
                                            # 100 instead of 40 keeps recall@4 high at a fraction of a millisecond
                                            "options": "-c hnsw.ef_search=100"}, check=ConnectionPool.check_connection)
        self._pool.open(wait=True, timeout=30)
        self.opened = schema(self) if schema is not None else 0

    def _configure(self, conn: Any) -> None:
        # only when missing: a role without CREATE on the database can use a schema an administrator made
        if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)).fetchone():
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        conn.execute(f'SET search_path TO "{self.schema}"')

    def _wait_until_reachable(self, url: str, wait_s: float | None) -> None:
        import psycopg

        start, delay = time.monotonic(), 0.5
        while True:
            try:
                psycopg.connect(url, connect_timeout=5, autocommit=True).close()
                return
            except psycopg.OperationalError as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                waited = time.monotonic() - start
                if wait_s is not None and waited >= wait_s:
                    raise StoreUnavailableError(f"the PostgreSQL database at {self.where} is unreachable ({reason}); "
                                                f"waited {waited:.0f} s; start it or fix --database-url, then retry") from exc
                logger.warning("the PostgreSQL database at %s is unreachable (%s); retrying in %.1f s", self.where,
                               reason, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _connection(self, *, apart: bool = False) -> Iterator[Any]:
        """This thread's transaction connection when one is open (reads see its writes), else a pooled one;
        ``apart``: always a pooled one (a statement committed on its own)."""
        import psycopg

        current = None if apart else getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        try:
            with self._pool.connection(timeout=LOCK_TIMEOUT_S) as conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"the PostgreSQL database at {self.where} is unreachable ({exc}); nothing was "
                                        "written; retry when it is back") from exc

    @contextmanager
    def transaction(self) -> Iterator[_PgConn]:
        import psycopg

        if getattr(self._local, "conn", None) is not None:
            raise StoreError("a ledger transaction is already open in this thread; nested writes are not supported")
        try:
            with self._connection() as conn, conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{int(LOCK_TIMEOUT_S * 1000)}ms'")
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                self._local.conn = conn
                try:
                    yield _PgConn(conn)
                finally:
                    self._local.conn = None
        except psycopg.errors.LockNotAvailable as exc:
            raise LedgerBusyError(f"could not start a write on the ledger at {self.where}: another writer held it for "
                             f"over {LOCK_TIMEOUT_S:g} s; nothing was written; retry") from exc
        except psycopg.IntegrityError as exc:
            raise _integrity(self.where, exc) from exc
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"the PostgreSQL database at {self.where} failed during a write ({exc}); the "
                                        "transaction was rolled back, nothing was written; retry when it is back") from exc

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return conn.execute(_pg_sql(sql), tuple(args)).fetchall()

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self._connection() as conn:
            return conn.execute(_pg_sql(sql), tuple(args)).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Many rows, pipelined; in the caller's open transaction, else in a transaction of their own."""
        with self._connection() as conn:
            if getattr(self._local, "conn", None) is conn:
                _PgConn(conn).executemany(sql, rows)
            else:
                with conn.transaction():
                    _PgConn(conn).executemany(sql, rows)

    def execute_apart(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self._connection(apart=True) as conn:
            return conn.execute(_pg_sql(sql), tuple(args)).rowcount


__all__ = ["Conn", "Database", "LOCK_TIMEOUT_S", "PostgresDatabase", "SqliteDatabase", "is_postgres_url", "redact",
           "schema_name"]
