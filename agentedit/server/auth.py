"""API keys for the edit proxy: stored hashed, each with a role and the namespaces it may use.

Keys live in a SQLite file (``keys.sqlite`` in the store's folder) or, for replicas on several hosts, in the
store's PostgreSQL schema (``--database-url``): every replica reads the same table on each request, so a key
created or revoked through one is honoured by all at once.

A key reads ``ae-<id>-<secret>``; only ``<id>`` and the SHA-256 of the whole key are stored, so a
leaked key file does not leak usable keys (the secret is 256 random bits, so a plain hash is enough).

Roles grow: ``query`` may chat and read edits, ``write`` may also create, change and delete edits,
``admin`` may also read ``/metrics``. Namespace ``*`` grants every namespace.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

from ..errors import ConfigError
from ..db import Database, SqliteDatabase, is_postgres_url, redact
from ..records import validate_namespace
from ..types import utc_now

Role = Literal["query", "write", "admin"]
ROLES: tuple[Role, ...] = ("query", "write", "admin")
ALL_NAMESPACES = "*"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    role TEXT NOT NULL,
    namespaces TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"""


@dataclass(frozen=True)
class ApiKey:
    """What is known about a key (never its secret)."""

    id: str
    name: str
    role: Role
    namespaces: tuple[str, ...]
    created_at: str
    revoked_at: str | None = None

    def has_role(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def can_use(self, namespace: str) -> bool:
        return ALL_NAMESPACES in self.namespaces or namespace in self.namespaces

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["namespaces"] = list(self.namespaces)
        return out


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _sqlite_schema(conn: sqlite3.Connection, where: str) -> int:
    conn.executescript(_SCHEMA)
    return 0


class KeyStore:
    """The API keys: a SQLite file (``target`` a path), or the store's schema of a PostgreSQL database (``target``
    a ``postgresql://`` URL, ``store`` the store's name). Safe to share between threads and processes."""

    def __init__(self, target: str | Path, *, store: str = "default") -> None:
        self.db: Database
        if is_postgres_url(str(target)):
            from ..db.postgres_schema import open_store_database

            self.db = open_store_database(str(target), store)  # its migrations create the key table
            self.path: Path | str = redact(str(target))
        else:
            self.path = Path(target)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = SqliteDatabase(self.path, schema=_sqlite_schema)

    def close(self) -> None:
        self.db.close()

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.db.rows(sql, args)

    @staticmethod
    def _key(row: tuple[Any, ...]) -> ApiKey:
        kid, name, role, namespaces, created_at, revoked_at = row
        return ApiKey(kid, name, role, tuple(json.loads(namespaces)), created_at, revoked_at)

    def create(self, *, role: Role, namespaces: Sequence[str], name: str = "") -> tuple[str, ApiKey]:
        """Make a key; returns ``(secret key, record)``. The secret is shown once and never stored."""
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
        if not namespaces:
            raise ConfigError("a key needs at least one namespace (or '*' for all)")
        for ns in namespaces:
            if ns != ALL_NAMESPACES:
                validate_namespace(ns)
        kid = secrets.token_hex(6)
        secret = f"ae-{kid}-{secrets.token_urlsafe(32)}"
        rec = ApiKey(kid, name or f"key-{kid}", role, tuple(dict.fromkeys(namespaces)), utc_now())
        self.db.execute("INSERT INTO api_keys (id, name, hash, role, namespaces, created_at) VALUES (?,?,?,?,?,?)",
                        (rec.id, rec.name, _hash(secret), rec.role, json.dumps(list(rec.namespaces)), rec.created_at))
        return secret, rec

    def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        sql = "SELECT id, name, role, namespaces, created_at, revoked_at FROM api_keys"
        if not include_revoked:
            sql += " WHERE revoked_at IS NULL"
        return [self._key(r) for r in self._rows(sql + " ORDER BY created_at")]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by id; requests with it get 401 from then on."""
        changed = self.db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                  (utc_now(), key_id))
        if changed == 0:
            raise ConfigError(f"no active key with id {key_id!r}; `agentedit keys list` shows the ids")
        rows = self._rows("SELECT id, name, role, namespaces, created_at, revoked_at FROM api_keys WHERE id = ?", (key_id,))
        return self._key(rows[0])

    def verify(self, secret: str) -> ApiKey | None:
        """The active key this secret belongs to, or None."""
        parts = secret.split("-", 2)
        if len(parts) != 3 or parts[0] != "ae":
            return None
        rows = self._rows("SELECT id, name, role, namespaces, created_at, revoked_at, hash FROM api_keys WHERE id = ?",
                          (parts[1],))
        if not rows or rows[0][5] is not None or not hmac.compare_digest(rows[0][6], _hash(secret)):
            return None
        return self._key(rows[0][:6])
