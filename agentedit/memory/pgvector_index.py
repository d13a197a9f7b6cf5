""":class:`~.index.VectorIndex` in the ledger's own PostgreSQL database, with the pgvector extension.

The index is the ``vectors`` table of the store's schema, partitioned by namespace (one partition per namespace,
each with its own HNSW index on cosine distance), so a query searches one tenant's partition only and needs no
filter. It is written through the ledger's connection: inside a write, the index rows and the ledger rows are
one transaction, committed or rolled back together. Nothing can leave them apart, so this index needs no
write-in-progress markers and no reconcile (``transactional``).

pgvector must be installed in the server and the extension created (``CREATE EXTENSION vector``, which this
does when its role may); PostgreSQL builds with it: the ``pgserver`` wheel, the pgvector packages of PGDG, or
managed services.
"""

from __future__ import annotations

import hashlib
from typing import Mapping, Sequence

import numpy as np

from ..db.connection import PostgresDatabase
from ..errors import StoreError

_CHUNK = 500


def _literal(vec: np.ndarray) -> str:
    """pgvector's text form, 7 decimals (finer than the embedder's float32 noise; rounding first keeps the Python
    floats' repr short, the cheapest formatting measured)."""
    return "[" + ",".join(map(str, np.round(vec.astype(np.float64), 7).tolist())) + "]"


def _partition(namespace: str) -> str:
    return "vectors_" + hashlib.sha256(namespace.encode()).hexdigest()[:16]


class PgVectorIndex:
    """The store's vectors beside its ledger (see the module docstring)."""

    transactional = True

    def __init__(self, db: PostgresDatabase, dim: int) -> None:
        import psycopg

        self.db, self.dim = db, dim
        try:
            with db.transaction() as conn:
                if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                conn.execute(f"CREATE TABLE IF NOT EXISTS vectors (namespace TEXT NOT NULL, id TEXT NOT NULL, "
                             f"embedding vector({int(dim)}) NOT NULL, document TEXT NOT NULL, subject TEXT, "
                             "PRIMARY KEY (namespace, id)) PARTITION BY LIST (namespace)")
                row = conn.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = 'vectors'::regclass AND "
                                   "attname = 'embedding'").fetchone()
        except (psycopg.Error, StoreError) as exc:
            raise StoreError(f"the pgvector index could not be set up in {db.where} ({exc}); the server needs the "
                             "pgvector extension (and a role that may CREATE EXTENSION vector, or an admin who did)") from exc
        if row and int(row[0]) != dim:
            raise StoreError(f"the pgvector index of {db.where} holds {row[0]}-dimensional vectors, the embedder makes "
                             f"{dim}; open the store with the embedder it was built with")
        self._known: set[str] = set()

    def _ensure_partition(self, namespace: str) -> None:
        """The namespace's partition and its HNSW index (in the caller's write transaction: under the store's lock)."""
        if namespace in self._known:
            return
        name = _partition(namespace)
        self.db.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF vectors FOR VALUES IN ('"
                        + namespace.replace("'", "''") + "')")
        self.db.execute(f"CREATE INDEX IF NOT EXISTS {name}_hnsw ON {name} USING hnsw (embedding vector_cosine_ops)")
        self._known.add(namespace)

    def upsert(self, namespace: str, ids: Sequence[str], vectors: np.ndarray, documents: Sequence[str],
               metadatas: Sequence[Mapping[str, str]]) -> None:
        self._ensure_partition(namespace)
        rows = [(namespace, i, _literal(v), d, (m or {}).get("subject") or None)
                for i, v, d, m in zip(ids, vectors, documents, metadatas)]
        self.db.executemany("INSERT INTO vectors (namespace, id, embedding, document, subject) VALUES (?, ?, ?::vector, ?, ?)"
                            " ON CONFLICT (namespace, id) DO UPDATE SET embedding = excluded.embedding, document ="
                            " excluded.document, subject = excluded.subject", rows)

    def remove(self, namespace: str, ids: Sequence[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            self.db.execute(f"DELETE FROM vectors WHERE namespace = ? AND id IN ({','.join('?' * len(chunk))})",
                            (namespace, *chunk))

    def has_namespace(self, namespace: str) -> bool:
        if namespace in self._known:
            return True
        return bool(self.db.rows("SELECT 1 FROM pg_class WHERE relname = ? AND relnamespace = "
                                 "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())", (_partition(namespace),)))

    def query(self, namespace: str, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        lit = _literal(vector)
        rows = self.db.rows(f"SELECT id, 1 - (embedding <=> ?::vector) FROM {_partition(namespace)} "
                            "ORDER BY embedding <=> ?::vector LIMIT ?", (lit, lit, int(k))) \
            if self.has_namespace(namespace) else []
        return [(str(i), float(s)) for i, s in rows]

    def ids(self, namespace: str) -> list[str]:
        return [r[0] for r in self.db.rows("SELECT id FROM vectors WHERE namespace = ? ORDER BY id", (namespace,))]

    def documents(self, namespace: str) -> dict[str, str]:
        return dict(self.db.rows("SELECT id, document FROM vectors WHERE namespace = ?", (namespace,)))

    def count(self, namespace: str | None = None) -> int:
        if namespace is None:
            return int(self.db.rows("SELECT COUNT(*) FROM vectors")[0][0])
        return int(self.db.rows("SELECT COUNT(*) FROM vectors WHERE namespace = ?", (namespace,))[0][0])

    def namespaces(self) -> list[str]:
        return [r[0] for r in self.db.rows("SELECT DISTINCT namespace FROM vectors ORDER BY namespace")]

    def close(self) -> None:  # the ledger owns the connections
        return None
