"""The vector index of active edits: what :class:`~agentedit.memory.store.EditMemory` needs, and Chroma behind it.

:class:`VectorIndex` is the whole contract between the store and an index. The index is a derived copy of
the ledger's active edits, partitioned by namespace; every entry is an edit id with its statement vector, its
statement text and a little string metadata. The store never asks the index for a record, only for ids, and
checks every id it gets back against the ledger.

:class:`ChromaIndex` keeps one Chroma collection per namespace, embedded (``PersistentClient`` under the
store's ``chroma/`` folder) or on a Chroma server (``HttpClient``, for replicas sharing one memory).
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np

from ..errors import ConfigError
from ..types import EditRecord

logger = logging.getLogger(__name__)

_COLLECTION = "edits"  # the single collection of embedded stores before one collection per namespace
_CHROMA_BATCH = 4000  # ids per Chroma call (its maximum batch size is a little over 5000)
_PAGE = 10000  # ids per page when listing a collection

Lock = Callable[[], AbstractContextManager[Any]]


class VectorIndex(Protocol):
    """Nearest-neighbour search over the active edits of one store, one partition per namespace."""

    def upsert(self, namespace: str, ids: Sequence[str], vectors: np.ndarray, documents: Sequence[str],
               metadatas: Sequence[Mapping[str, str]]) -> None:
        """Add or replace entries of ``namespace`` (row ``i`` of ``vectors`` belongs to ``ids[i]``)."""
        ...

    def remove(self, namespace: str, ids: Sequence[str]) -> None:
        """Remove entries of ``namespace``; ids that are not indexed are ignored."""
        ...

    def has_namespace(self, namespace: str) -> bool:
        """Whether anything was ever indexed in ``namespace`` (cheap: no count, no search)."""
        ...

    def query(self, namespace: str, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` entries of ``namespace`` nearest to ``vector`` as ``(id, cosine similarity)``, nearest first."""
        ...

    def ids(self, namespace: str) -> list[str]:
        """Every id indexed in ``namespace``."""
        ...

    def documents(self, namespace: str) -> dict[str, str]:
        """``{id: statement text}`` of every entry of ``namespace`` (recovery compares them with the ledger)."""
        ...

    def count(self, namespace: str | None = None) -> int:
        """Entries in ``namespace``, or in all namespaces when it is None."""
        ...

    def namespaces(self) -> list[str]:
        """Namespaces with a partition in the index (also those another process created)."""
        ...

    def close(self) -> None:
        """Release what the index holds; the store does not use it afterwards."""
        ...


def index_records(index: VectorIndex, records: Sequence[EditRecord], vectors: np.ndarray) -> None:
    """Index ``records`` (row ``i`` of ``vectors`` is the statement vector of ``records[i]``), grouped by namespace."""
    by_ns: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        by_ns.setdefault(rec.namespace, []).append(i)
    for ns, idx in by_ns.items():
        index.upsert(ns, [records[i].id for i in idx], vectors[idx], [records[i].statement for i in idx],
                     [{"namespace": ns, "subject": records[i].subject or ""} for i in idx])


def unindex(index: VectorIndex, pairs: Iterable[tuple[str, str]]) -> None:
    """Remove ``(namespace, id)`` entries from the index."""
    by_ns: dict[str, list[str]] = {}
    for ns, edit_id in pairs:
        by_ns.setdefault(ns, []).append(edit_id)
    for ns, ids in by_ns.items():
        index.remove(ns, ids)


def index_kind(kind: str | None, database_url: str | None, chroma_url: str | None) -> str:
    """``chroma`` or ``pgvector``, checked against where the ledger is."""
    kind = (kind or "chroma").lower()
    if kind not in ("chroma", "pgvector"):
        raise ConfigError(f"unknown vector index {kind!r}; use 'chroma' (embedded, or a server with --chroma-url) or "
                          "'pgvector' (in the --database-url database)")
    if kind == "pgvector" and not database_url:
        raise ConfigError("the pgvector index lives in the store's PostgreSQL database: give --database-url too")
    if kind == "chroma" and database_url and not chroma_url:
        raise ConfigError("a PostgreSQL ledger (--database-url) is shared by replicas, so the vector index must be "
                          "shared too: give --chroma-url http://HOST:PORT (a `chroma run` server), or use "
                          "--vector-index pgvector to keep it in the same database")
    return kind


def open_index(path: Path, store: str, *, url: str | None = None, lock: Lock | None = None,
               default_namespace: str = "default") -> VectorIndex:
    """The index of store ``store``: embedded under ``path``, or on the Chroma server at ``url``."""
    return ChromaIndex(path, store, url=url, lock=lock, default_namespace=default_namespace)


class ChromaIndex:
    """:class:`VectorIndex` over Chroma, one collection per namespace.

    A namespace filter (``where=``) makes Chroma scan every entry's metadata: ~0.4-1.5 s per query at 100k
    edits on 2 cores, against ~3 ms for a plain nearest-neighbour search. One collection per namespace needs
    no filter, and one tenant's size no longer slows another's queries. Collection names are hex so any
    namespace makes a valid Chroma name: ``ns_<namespace hex>`` embedded, ``ae_<store hex>_<namespace hex>``
    on a server (one server may hold several stores).

    ``lock`` serialises the one-off move from the single-collection layout of earlier versions with other
    processes sharing the store (the store passes its ledger's write transaction); ``default_namespace``
    receives legacy entries that name none.
    """

    def __init__(self, path: Path, store: str, *, url: str | None = None, lock: Lock | None = None,
                 default_namespace: str = "default") -> None:
        import chromadb
        from chromadb.config import Settings

        self.store = store
        self._collections: dict[str, Any] = {}
        settings = Settings(anonymized_telemetry=False)
        if url:
            from urllib.parse import urlparse

            parsed = urlparse(url)
            self.client: Any = chromadb.HttpClient(host=parsed.hostname or "127.0.0.1", port=parsed.port or 8000,
                                                   ssl=parsed.scheme == "https", settings=settings)
            self._prefix, legacy = f"ae_{store.encode().hex()}_", f"agentedit_{store}"
        else:
            self.client = chromadb.PersistentClient(path=str(path), settings=settings)
            self._prefix, legacy = "ns_", _COLLECTION
        self._migrate_single_collection(legacy, lock or nullcontext, default_namespace)

    def collection(self, namespace: str, *, create: bool = True) -> Any:
        """The namespace's Chroma collection, created if ``create``; None if absent and not ``create``."""
        col = self._collections.get(namespace)
        if col is None:
            name = self._prefix + namespace.encode().hex()
            if create:
                col = self.client.get_or_create_collection(name, embedding_function=None, metadata={"namespace": namespace},
                                                           configuration={"hnsw": {"space": "cosine"}})
            else:
                try:
                    col = self.client.get_collection(name, embedding_function=None)
                except Exception:  # NotFoundError (embedded) or an HTTP error (server): nothing indexed there yet
                    return None
            self._collections[namespace] = col
        return col

    def _namespace_collections(self) -> dict[str, Any]:
        """Every namespace collection of this store (also those another process created)."""
        names = [c if isinstance(c, str) else c.name for c in self.client.list_collections()]
        namespaces = [bytes.fromhex(n[len(self._prefix):]).decode() for n in names if n.startswith(self._prefix)]
        return {ns: self.collection(ns) for ns in namespaces}

    def _migrate_single_collection(self, legacy: str, lock: Lock, default_namespace: str) -> None:
        """Move vectors from the one-collection layout of earlier versions into per-namespace collections."""
        try:
            old = self.client.get_collection(legacy, embedding_function=None)
        except Exception:
            return
        with lock():  # one process migrates; a crash midway repeats it (upserts are idempotent)
            total = old.count()
            for offset in range(0, total, _CHROMA_BATCH):
                page = old.get(include=["embeddings", "documents", "metadatas"], limit=_CHROMA_BATCH, offset=offset)
                by_ns: dict[str, list[int]] = {}
                for i, meta in enumerate(page["metadatas"]):
                    by_ns.setdefault((meta or {}).get("namespace", default_namespace), []).append(i)
                for ns, idx in by_ns.items():
                    self.collection(ns).upsert(ids=[page["ids"][i] for i in idx],
                                               embeddings=[page["embeddings"][i] for i in idx],
                                               documents=[page["documents"][i] for i in idx],
                                               metadatas=[page["metadatas"][i] for i in idx])
            self.client.delete_collection(legacy)
        logger.info("store %s: moved %d indexed edits to one collection per namespace", self.store, total)

    # -- VectorIndex -----------------------------------------------------------------------------
    def upsert(self, namespace: str, ids: Sequence[str], vectors: np.ndarray, documents: Sequence[str],
               metadatas: Sequence[Mapping[str, str]]) -> None:
        col = self.collection(namespace)
        for start in range(0, len(ids), _CHROMA_BATCH):
            end = start + _CHROMA_BATCH
            col.upsert(ids=list(ids[start:end]), embeddings=vectors[start:end], documents=list(documents[start:end]),
                       metadatas=[dict(m) for m in metadatas[start:end]])

    def remove(self, namespace: str, ids: Sequence[str]) -> None:
        col = self.collection(namespace, create=False)
        if col is None:
            return
        for start in range(0, len(ids), _CHROMA_BATCH):
            col.delete(ids=list(ids[start:start + _CHROMA_BATCH]))

    def has_namespace(self, namespace: str) -> bool:
        return self.collection(namespace, create=False) is not None

    def query(self, namespace: str, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        col = self.collection(namespace, create=False)
        if col is None or k <= 0:
            return []
        res = col.query(query_embeddings=[vector], n_results=k, include=["distances"])
        return [(edit_id, float(1.0 - dist)) for edit_id, dist in zip(res["ids"][0], res["distances"][0])]

    def ids(self, namespace: str) -> list[str]:
        col = self.collection(namespace, create=False)
        if col is None:
            return []
        out: list[str] = []
        for offset in range(0, col.count(), _PAGE):
            out.extend(col.get(include=[], limit=_PAGE, offset=offset)["ids"])
        return out

    def documents(self, namespace: str) -> dict[str, str]:
        col = self.collection(namespace, create=False)
        if col is None:
            return {}
        out: dict[str, str] = {}
        for offset in range(0, col.count(), _PAGE):
            page = col.get(include=["documents"], limit=_PAGE, offset=offset)
            out.update(zip(page["ids"], (d or "" for d in page["documents"])))
        return out

    def count(self, namespace: str | None = None) -> int:
        if namespace is None:
            return sum(col.count() for col in self._namespace_collections().values())
        col = self.collection(namespace, create=False)
        return 0 if col is None else int(col.count())

    def namespaces(self) -> list[str]:
        return list(self._namespace_collections())

    def close(self) -> None:
        """Drop the cached collection handles (Chroma's clients hold nothing else that needs releasing)."""
        self._collections.clear()
