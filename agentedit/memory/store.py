"""The edit memory: a Chroma index of active edits over a SQLite ledger.

Layout of a store named ``NAME`` under the store root (``./stores`` unless
``AGENTEDIT_STORES`` or ``root=`` says otherwise)::

    stores/NAME/store.json      settings: embedder, calibrated scope thresholds
    stores/NAME/ledger.sqlite   every record and the append-only audit log
    stores/NAME/chroma/         the vector index of active edits, one collection per namespace

Writes are all-or-nothing. A batch is validated and embedded before anything is
written; the ledger transaction stays open while Chroma is updated and is
rolled back (and Chroma compensated) if that fails. A ``PENDING.*`` marker per write makes
the next open reconcile Chroma with the ledger if a process died mid-write.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import DuplicateEditError, EditError, EditNotFoundError, StoreError, UnknownNamespaceError
from ..records import build_record, build_records, read_edit_file, validate_namespace
from ..types import Candidate, EditRecord, utc_now
from .ledger import Ledger
from .embed import Embedder, shared_embedder

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "default"
_COLLECTION = "edits"
_CHROMA_BATCH = 4000

Progress = Callable[[int, int], None]


def store_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Where named stores live: ``root``, else ``$AGENTEDIT_STORES``, else ``./stores``."""
    return Path(root or os.environ.get("AGENTEDIT_STORES") or "stores").resolve()


class EditMemory:
    """Persistent, namespaced edit memory. See the module docstring for the layout."""

    def __init__(self, name: str = "default", *, root: str | os.PathLike[str] | None = None,
                 embedder: Embedder | None = None, chroma_url: str | None = None) -> None:
        validate_namespace(name)  # same character rules as namespaces
        self.name = name
        self.dir = store_root(root) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.embedder = embedder or shared_embedder()
        self._config_path = self.dir / "store.json"
        self.config = self._load_config()
        self.ledger = Ledger(self.dir / "ledger.sqlite")
        self._chroma_url = chroma_url
        self._collections: dict[str, Any] = {}
        self._open_index()
        with self.ledger.transaction() as conn:
            Ledger.ensure_namespace(conn, DEFAULT_NAMESPACE)
        self._reconcile_if_needed()

    # -- setup ---------------------------------------------------------------------------------
    def _load_config(self) -> dict[str, Any]:
        if self._config_path.exists():
            try:
                cfg = json.loads(self._config_path.read_text("utf-8"))
            except json.JSONDecodeError as exc:
                raise StoreError(f"{self._config_path} is not valid JSON ({exc}); restore it or delete the store") from None
            if cfg.get("embedder") != self.embedder.name:
                raise StoreError(
                    f"store {self.name!r} was built with embedder {cfg.get('embedder')!r} but {self.embedder.name!r} is in use; "
                    "open it with the same embedder or export and re-import the edits"
                )
            return cfg
        cfg = {"version": 1, "embedder": self.embedder.name, "created_at": utc_now(), "scope": {}}
        self._write_config(cfg)
        return cfg

    def _write_config(self, cfg: dict[str, Any]) -> None:
        tmp = self._config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cfg, indent=2, sort_keys=True), "utf-8")
        os.replace(tmp, self._config_path)

    def save_config(self) -> None:
        """Persist :attr:`config` (e.g. after a scope calibration)."""
        self._write_config(self.config)

    # -- the index: one Chroma collection per namespace ------------------------------------------
    # A namespace filter (`where=`) makes Chroma scan every entry's metadata: ~0.4-1.5 s per query at 100k
    # edits on 2 cores, against ~3 ms for a plain nearest-neighbour search. One collection per namespace
    # needs no filter, and one tenant's size no longer slows another's queries.
    def _open_index(self) -> None:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if self._chroma_url:
            from urllib.parse import urlparse

            url = urlparse(self._chroma_url)
            self._client = chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                               ssl=url.scheme == "https", settings=settings)
            self._prefix, legacy = f"ae_{self.name.encode().hex()}_", f"agentedit_{self.name}"
        else:
            self._client = chromadb.PersistentClient(path=str(self.dir / "chroma"), settings=settings)
            self._prefix, legacy = "ns_", _COLLECTION
        self._migrate_single_collection(legacy)

    def _col(self, namespace: str, *, create: bool = True) -> Any:
        """The namespace's collection (names are hex so any namespace is a valid Chroma name); None if absent."""
        col = self._collections.get(namespace)
        if col is None:
            name = self._prefix + namespace.encode().hex()
            if create:
                col = self._client.get_or_create_collection(name, embedding_function=None, metadata={"namespace": namespace},
                                                            configuration={"hnsw": {"space": "cosine"}})
            else:
                try:
                    col = self._client.get_collection(name, embedding_function=None)
                except Exception:  # NotFoundError (embedded) or an HTTP error (server): nothing indexed there yet
                    return None
            self._collections[namespace] = col
        return col

    @property
    def _collection(self) -> Any:
        """The default namespace's collection."""
        return self._col(DEFAULT_NAMESPACE)

    def _namespace_collections(self) -> dict[str, Any]:
        """Every namespace collection of this store (also those another process created)."""
        names = [c if isinstance(c, str) else c.name for c in self._client.list_collections()]
        namespaces = [bytes.fromhex(n[len(self._prefix):]).decode() for n in names if n.startswith(self._prefix)]
        return {ns: self._col(ns) for ns in namespaces}

    def _unindex(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Remove ``(namespace, id)`` entries from the index."""
        by_ns: dict[str, list[str]] = {}
        for ns, edit_id in pairs:
            by_ns.setdefault(ns, []).append(edit_id)
        for ns, ids in by_ns.items():
            col = self._col(ns, create=False)
            if col is None:
                continue
            for i in range(0, len(ids), _CHROMA_BATCH):
                col.delete(ids=ids[i:i + _CHROMA_BATCH])

    def _migrate_single_collection(self, legacy: str) -> None:
        """Move vectors from the one-collection layout of earlier versions into per-namespace collections."""
        try:
            old = self._client.get_collection(legacy, embedding_function=None)
        except Exception:
            return
        with self.ledger.transaction():  # one process migrates; a crash midway repeats it (upserts are idempotent)
            total = old.count()
            for offset in range(0, total, _CHROMA_BATCH):
                page = old.get(include=["embeddings", "documents", "metadatas"], limit=_CHROMA_BATCH, offset=offset)
                by_ns: dict[str, list[int]] = {}
                for i, meta in enumerate(page["metadatas"]):
                    by_ns.setdefault((meta or {}).get("namespace", DEFAULT_NAMESPACE), []).append(i)
                for ns, idx in by_ns.items():
                    self._col(ns).upsert(ids=[page["ids"][i] for i in idx], embeddings=[page["embeddings"][i] for i in idx],
                                         documents=[page["documents"][i] for i in idx],
                                         metadatas=[page["metadatas"][i] for i in idx])
            self._client.delete_collection(legacy)
        logger.info("store %s: moved %d indexed edits to one collection per namespace", self.name, total)

    def close(self) -> None:
        self.ledger.close()

    def __enter__(self) -> "EditMemory":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- consistency ---------------------------------------------------------------------------
    def _markers(self) -> list[Path]:
        """Write-in-progress markers: one ``PENDING.<id>`` per unfinished write (``PENDING`` from older versions)."""
        return list(self.dir.glob("PENDING*"))

    def _reconcile_if_needed(self) -> None:
        indexed = sum(col.count() for col in self._namespace_collections().values())
        if self._markers() or indexed != self.ledger.count(status="active"):
            self.reconcile()

    def reconcile(self) -> dict[str, int]:
        """Make the Chroma index hold exactly the ledger's active edits.

        Runs under the ledger's write lock, so a writer in another process sharing this store (replicas over
        one Chroma server) is never caught between its index write and its commit.
        """
        with self.ledger.transaction():
            active = self.ledger.active_namespaces()
            indexed: set[tuple[str, str]] = set()
            for ns, col in self._namespace_collections().items():
                for offset in range(0, col.count(), 10000):
                    indexed.update((ns, i) for i in col.get(include=[], limit=10000, offset=offset)["ids"])
            wanted = {(ns, i) for i, ns in active.items()}
            extra = sorted(indexed - wanted)
            missing = sorted(i for ns, i in wanted - indexed)
            self._unindex(extra)
            if missing:
                recs = self.ledger.get_many(missing)
                self._index([recs[i] for i in missing if i in recs])
            for marker in self._markers():  # no write is in flight while we hold the lock
                marker.unlink(missing_ok=True)
        if extra or missing:
            logger.warning("store %s: reconciled index with ledger (%d removed, %d re-indexed)", self.name, len(extra), len(missing))
        return {"removed": len(extra), "reindexed": len(missing)}

    def _index(self, records: Sequence[EditRecord], vectors: np.ndarray | None = None,
               progress: Progress | None = None) -> None:
        if not records:
            return
        if vectors is None:
            vectors = self.embedder.embed([r.statement for r in records])
        by_ns: dict[str, list[int]] = {}
        for i, rec in enumerate(records):
            by_ns.setdefault(rec.namespace, []).append(i)
        done = 0
        for ns, idx in by_ns.items():
            col = self._col(ns)
            for start in range(0, len(idx), _CHROMA_BATCH):
                part = idx[start:start + _CHROMA_BATCH]
                col.upsert(ids=[records[i].id for i in part], embeddings=vectors[part],
                           documents=[records[i].statement for i in part],
                           metadatas=[{"namespace": ns, "subject": records[i].subject or ""} for i in part])
                done += len(part)
                if progress:
                    progress(done, len(records))

    def _embed_batched(self, texts: list[str], progress: Progress | None) -> np.ndarray:
        if progress is None or len(texts) <= 256:
            out = self.embedder.embed(texts)
        else:
            parts = []
            for i in range(0, len(texts), 256):
                parts.append(self.embedder.embed(texts[i:i + 256]))
                progress(min(i + 256, len(texts)), len(texts))
            out = np.concatenate(parts)
        if progress is not None:
            progress(len(texts), len(texts))
        return out

    def _mark_pending(self) -> Path:
        """Mark one write as in flight (inside its ledger transaction); the writer removes its own marker."""
        marker = self.dir / f"PENDING.{uuid.uuid4().hex[:12]}"
        with open(marker, "w") as fh:
            fh.write(utc_now())
            fh.flush()
            os.fsync(fh.fileno())
        return marker

    # -- namespaces ----------------------------------------------------------------------------
    def namespaces(self) -> list[str]:
        return self.ledger.namespaces()

    def create_namespace(self, name: str) -> None:
        validate_namespace(name)
        with self.ledger.transaction() as conn:
            Ledger.ensure_namespace(conn, name)

    def require_namespace(self, name: str) -> str:
        validate_namespace(name)
        if not self.ledger.has_namespace(name):
            known = ", ".join(self.namespaces())
            raise UnknownNamespaceError(
                f"namespace {name!r} does not exist in store {self.name!r} (known: {known}); "
                "add an edit to it or create it first (`agentedit namespace create NAME`)"
            )
        return name

    # -- writes --------------------------------------------------------------------------------
    def add(self, edit: Mapping[str, Any] | EditRecord, *, namespace: str = DEFAULT_NAMESPACE, actor: str = "user") -> EditRecord:
        """Validate and store one edit; returns the stored record (with its id)."""
        return self.add_many([edit], namespace=namespace, actor=actor)[0]

    def add_many(self, edits: Iterable[Mapping[str, Any] | EditRecord], *, namespace: str = DEFAULT_NAMESPACE,
                 actor: str = "user", labels: list[str] | None = None, progress: Progress | None = None,
                 records: list[EditRecord] | None = None) -> list[EditRecord]:
        """Store a batch atomically: one bad record fails the whole batch and nothing is written."""
        recs = records if records is not None else build_records(list(edits), namespace=namespace, actor=actor, labels=labels)
        if not recs:
            return []
        clash = self.ledger.existing_ids([r.id for r in recs])
        if clash:
            idx = next(i for i, r in enumerate(recs) if r.id in clash)
            where = labels[idx] if labels else f"#{idx}"
            raise DuplicateEditError(f"edit {where}: id {recs[idx].id!r} already exists in store {self.name!r}; "
                                     "use a new id, or update/forget the existing edit")
        vectors = self._embed_batched([r.statement for r in recs], progress)

        # Conflict policy: the newest edit of a (namespace, subject, relation) wins.
        latest: dict[tuple[str, str, str], EditRecord] = {}
        superseded_old: list[EditRecord] = []
        for rec in recs:
            key = rec.conflict_key
            if key is None:
                continue
            prev = latest.get(key)
            if prev is not None:
                prev.status, prev.superseded_by = "superseded", rec.id
                rec.supersedes = prev.id
            else:
                for old in self.ledger.active_by_key(key):
                    superseded_old.append(replace(old, status="superseded", superseded_by=rec.id))
                    rec.supersedes = old.id
            latest[key] = rec

        batch_id = "b_" + uuid.uuid4().hex[:12]
        to_index = [r for r in recs if r.status == "active"]
        keep = [i for i, r in enumerate(recs) if r.status == "active"]
        old_keys = [(o.namespace, o.id) for o in superseded_old]
        with self.ledger.transaction() as conn:
            for rec in recs:
                Ledger.ensure_namespace(conn, rec.namespace)
                Ledger.put(conn, rec)
                Ledger.log(conn, "add", rec, actor=actor, batch_id=batch_id)
                if rec.status == "superseded":
                    Ledger.log(conn, "supersede", rec, actor=actor, batch_id=batch_id)
            for old in superseded_old:
                Ledger.put(conn, old)
                Ledger.log(conn, "supersede", old, actor=actor, batch_id=batch_id)
            marker = self._mark_pending()
            try:
                self._index(to_index, vectors[keep])
                self._unindex(old_keys)
            except Exception as exc:
                self._compensate(added=[(r.namespace, r.id) for r in to_index], removed=[i for _, i in old_keys])
                raise StoreError(f"writing {len(recs)} edit(s) to the index failed ({exc}); nothing was stored") from exc
        marker.unlink(missing_ok=True)
        return recs

    def _compensate(self, *, added: list[tuple[str, str]], removed: list[str]) -> None:
        try:
            self._unindex(added)
            if removed:
                self._index(list(self.ledger.get_many(removed).values()))
        except Exception:  # the PENDING marker makes the next open reconcile
            logger.exception("store %s: compensation failed; the index will be rebuilt on next open", self.name)

    def update(self, edit_id: str, changes: Mapping[str, Any], *, namespace: str | None = None, actor: str = "user") -> EditRecord:
        """Change fields of an active edit (target, statement, prompt, ...); logged with before and after."""
        old = self.get(edit_id, namespace=namespace)
        if old.status != "active":
            raise EditError(f"edit {edit_id!r} is {old.status}; only active edits can be updated")
        bad = sorted(set(changes) & {"id", "namespace", "status", "created_at", "supersedes", "superseded_by"})
        if bad:
            raise EditError(f"field(s) {', '.join(bad)} cannot be changed by update")
        merged = {k: v for k, v in old.to_dict().items() if k in ("prompt", "subject", "target_new", "target_old",
                                                                    "valid_from", "valid_until", "metadata")}
        if old.prompt is None and "statement" not in changes:  # a plain statement: it carries the fact itself
            statement = old.statement
            if changes.get("target_new") is not None and changes.get("target_new") != old.target_new:
                cut = statement.rfind(old.target_new) if old.target_new else -1
                if cut < 0:
                    raise EditError(f"edit {edit_id!r} is a plain statement that does not contain its target; "
                                    "give the new statement as well")
                statement = statement[:cut] + str(changes["target_new"]) + statement[cut + len(old.target_new or ""):]
            merged["statement"] = statement
        merged.update(changes)
        merged["id"], merged["namespace"] = old.id, old.namespace
        new = build_record(merged, namespace=old.namespace, actor=actor)
        new = replace(new, created_at=old.created_at, supersedes=old.supersedes, method=old.method)
        vec = self.embedder.embed([new.statement])
        with self.ledger.transaction() as conn:
            Ledger.put(conn, new)
            Ledger.log(conn, "update", new, actor=actor, before=old)
            marker = self._mark_pending()
            try:
                self._index([new], vec)
            except Exception as exc:
                self._compensate(added=[], removed=[old.id])
                raise StoreError(f"updating edit {edit_id!r} in the index failed ({exc}); nothing was changed") from exc
        marker.unlink(missing_ok=True)
        return new

    def delete(self, edit_id: str, *, namespace: str | None = None, actor: str = "user") -> EditRecord:
        """Retract an edit: it leaves retrieval, its record and history stay in the ledger."""
        old = self.get(edit_id, namespace=namespace)
        if old.status == "retracted":
            raise EditError(f"edit {edit_id!r} was already retracted")
        new = replace(old, status="retracted")
        with self.ledger.transaction() as conn:
            Ledger.put(conn, new)
            Ledger.log(conn, "delete", new, actor=actor, before=old)
            marker = self._mark_pending()
            try:
                self._unindex([(old.namespace, edit_id)])
            except Exception as exc:
                raise StoreError(f"removing edit {edit_id!r} from the index failed ({exc}); it is still active") from exc
        marker.unlink(missing_ok=True)
        return new

    # -- reads ---------------------------------------------------------------------------------
    def get(self, edit_id: str, *, namespace: str | None = None) -> EditRecord:
        rec = self.ledger.get(edit_id)
        if rec is None or (namespace is not None and rec.namespace != namespace):
            where = f" in namespace {namespace!r}" if namespace is not None else ""
            raise EditNotFoundError(f"no edit with id {edit_id!r}{where} in store {self.name!r}; `agentedit list` shows the ids")
        return rec

    def list(self, *, namespace: str | None = None, subject: str | None = None, text: str | None = None,
             include_inactive: bool = False, limit: int | None = None, offset: int = 0) -> list[EditRecord]:
        if namespace is not None:
            self.require_namespace(namespace)
        statuses = () if include_inactive else ("active",)
        return self.ledger.query(namespace=namespace, subject=subject, text=text, statuses=statuses, limit=limit, offset=offset)

    def count(self, namespace: str | None = None) -> int:
        return self.ledger.count(namespace)

    def history(self, edit_id: str, *, namespace: str | None = None) -> list[dict[str, Any]]:
        """Audit events of an edit and of the edits it superseded, oldest first."""
        rec = self.get(edit_id, namespace=namespace)
        events = list(self.ledger.events(rec.id))
        seen = {rec.id}
        prev = rec.supersedes
        while prev and prev not in seen:
            seen.add(prev)
            events.extend(self.ledger.events(prev))
            older = self.ledger.get(prev)
            prev = older.supersedes if older else None
        return sorted(events, key=lambda e: e["seq"])

    def query(self, text: str, *, namespace: str = DEFAULT_NAMESPACE, k: int = 4,
              vector: np.ndarray | None = None, at: str | None = None) -> list[Candidate]:
        """The ``k`` nearest active edits of ``namespace`` (valid at time ``at``, default now)."""
        col = self._col(namespace, create=False) if k > 0 else None
        if col is None:  # nothing was ever indexed there (no count(): Chroma counts in ~16 ms at 100k edits)
            return []
        vec = self.embedder.embed_one(text) if vector is None else vector
        res = col.query(query_embeddings=[vec], n_results=k, include=["distances"])
        ids, dists = res["ids"][0], res["distances"][0]
        recs = self.ledger.get_many(list(ids))
        now = at or utc_now()
        out = []
        for edit_id, dist in zip(ids, dists):
            rec = recs.get(edit_id)
            if rec is None or rec.status != "active" or rec.namespace != namespace:
                continue  # index ahead of the ledger (crash): never serve an unacknowledged edit
            if (rec.valid_from and rec.valid_from > now) or (rec.valid_until and rec.valid_until <= now):
                continue
            out.append(Candidate(rec, float(1.0 - dist)))
        return out

    # -- import / export -----------------------------------------------------------------------
    def import_file(self, path: str | os.PathLike[str], *, namespace: str = DEFAULT_NAMESPACE, actor: str = "import",
                    progress: Progress | None = None) -> list[EditRecord]:
        """Import a JSONL/JSON/CSV file atomically; errors name the offending line."""
        items, labels = read_edit_file(path)
        try:
            recs = build_records(items, namespace=namespace, actor=actor, labels=labels)
        except EditError as exc:
            raise type(exc)(f"{path}: {exc}") from None
        return self.add_many([], namespace=namespace, actor=actor, labels=labels, progress=progress, records=recs)

    def export_file(self, path: str | os.PathLike[str], *, namespace: str | None = None, include_inactive: bool = False) -> int:
        """Write edits as JSONL (one full record per line); returns how many were written."""
        recs = self.list(namespace=namespace, include_inactive=include_inactive)
        tmp = Path(str(path) + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for rec in recs:
                fh.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        return len(recs)
