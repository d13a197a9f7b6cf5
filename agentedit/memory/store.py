"""The edit memory: a vector index of active edits over a SQLite ledger.

Layout of a store named ``NAME`` under the store root (``./stores`` unless
``AGENTEDIT_STORES`` or ``root=`` says otherwise)::

    stores/NAME/store.json      settings: embedder, calibrated scope thresholds
    stores/NAME/ledger.sqlite   every record and the append-only audit log
    stores/NAME/chroma/         the vector index of active edits, one collection per namespace

With ``database_url=postgresql://...`` the ledger, the settings and the shared files are the store's schema in
that database and the index is a Chroma server (``chroma_url``): replicas on several hosts serve one store, each
with a working folder of its own (see :mod:`agentedit.db` and :mod:`.shared`).

Writes are all-or-nothing. A batch is validated and embedded before anything is
written; the ledger transaction stays open while the index is updated and is
rolled back (and the index compensated) if that fails. A ``PENDING.*`` marker per write makes
the next open reconcile the index with the ledger if a process died mid-write.

The pieces: :mod:`.ledger` (the system of record), :mod:`.index` (the :class:`~.index.VectorIndex`
protocol and Chroma behind it), :mod:`.recovery` (markers and reconcile), :mod:`.transfer` (edit files).
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..settings import env
from ..errors import EditConflictError, EditError, EditNotFoundError, StoreError, UnknownNamespaceError
from ..records import build_records, validate_namespace
from ..types import Candidate, Conflict, EditRecord, utc_now
from . import conflicts, recovery, shared, transfer, writes
from .embed import Embedder, shared_embedder
from .index import VectorIndex, index_kind, index_records, open_index, unindex
from .ledger import Ledger, open_database
from .recall import RecallCache

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "default"

Progress = Callable[[int, int], None]

#: writes of up to this many records are checked against the stored edits by the matcher (larger imports: exact keys)
MATCHED_WRITE_LIMIT = 256


def store_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Where named stores live: ``root``, else ``$AGENTEDIT_STORES``, else ``./stores``."""
    return Path(root or env("AGENTEDIT_STORES") or "stores").resolve()


class EditMemory:
    """Persistent, namespaced edit memory. See the module docstring for the layout."""

    def __init__(self, name: str = "default", *, root: str | os.PathLike[str] | None = None,
                 embedder: Embedder | None = None, chroma_url: str | None = None, database_url: str | None = None,
                 vector_index: str | None = None, migrate: bool = True) -> None:
        validate_namespace(name)  # same character rules as namespaces
        self.name = name
        self.dir = store_root(root) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.embedder = embedder or shared_embedder()
        #: matches a new edit to the active edits stating the same fact (the Editor sets it; None: exact keys only)
        self.matcher: conflicts.Matcher | None = None
        self._config_path = self.dir / "store.json"
        pgvector = index_kind(vector_index, database_url, chroma_url) == "pgvector"
        self.ledger = Ledger(db=open_database(database_url or self.dir / "ledger.sqlite", name, migrate=migrate))
        self.config = shared.load_config(self.ledger, self._config_path, store=name, embedder=self.embedder.name)
        if pgvector:
            from .pgvector_index import PgVectorIndex

            self.index: VectorIndex = PgVectorIndex(self.ledger.db, self.embedder.dim)  # type: ignore[arg-type]
        else:
            self.index = open_index(self.dir / "chroma", name, url=chroma_url, lock=self.ledger.transaction,
                                    default_namespace=DEFAULT_NAMESPACE)
        if not self.ledger.has_namespace(DEFAULT_NAMESPACE):  # no write lock when it is there: see recovery
            with self.ledger.transaction() as conn:
                Ledger.ensure_namespace(conn, DEFAULT_NAMESPACE)
        self.recall = RecallCache(self.ledger.version)  # repeated questions skip the search (recall.py)
        recovery.reconcile_at_open(self.name, self.dir, self.ledger, self.index, self.embedder)

    # -- setup ---------------------------------------------------------------------------------
    def save_config(self) -> None:
        """Persist :attr:`config` (e.g. after a scope calibration) where every process of the store reads it."""
        shared.save_config(self.ledger, self._config_path, self.config)

    def close(self) -> None:
        self.index.close()
        self.ledger.close()

    def __enter__(self) -> "EditMemory":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- consistency ---------------------------------------------------------------------------
    def recover(self) -> dict[str, int] | None:
        """Reconcile now if a writer of this shared store died mid-write (another replica's ``kill -9``); None when
        none did. Replicas call it periodically, so the index heals without waiting for that writer to restart."""
        return self.reconcile() if recovery.dead_writers(self.ledger) else None

    def reconcile(self) -> dict[str, int]:
        """Make the index hold exactly the ledger's active edits (see :func:`.recovery.reconcile`)."""
        self.recall.clear()
        return recovery.reconcile(self.name, self.dir, self.ledger, self.index, self.embedder)

    def _index(self, records: Sequence[EditRecord], vectors: np.ndarray | None = None) -> None:
        if not records:
            return
        if vectors is None:
            vectors = self.embedder.embed([r.statement for r in records])
        index_records(self.index, records, vectors)

    def _unindex(self, pairs: Iterable[tuple[str, str]]) -> None:
        unindex(self.index, pairs)

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
        """Store a batch atomically: one bad record fails the whole batch and nothing is written.

        Validation and embedding happen first; the id check, the conflict policy (a newer edit of a (namespace,
        subject, relation) supersedes the active one, also within the batch) and the writes happen in one ledger
        transaction, so concurrent writers of the same key leave exactly one edit active."""
        recs = records if records is not None else build_records(list(edits), namespace=namespace, actor=actor, labels=labels)
        if not recs:
            return []
        for rec in recs:  # the transaction decides these
            rec.status, rec.supersedes, rec.superseded_by, rec.version, rec.conflicts = "active", None, None, 1, []
        vectors = self._embed_batched([r.statement for r in recs], progress)
        batch_id = "b_" + uuid.uuid4().hex[:12]
        matcher = self.matcher if len(recs) <= MATCHED_WRITE_LIMIT else None
        if matcher is not None:  # embed the relations to compare before the write lock is taken
            matcher.prepare([*recs, *(o for i, r in enumerate(recs) for o in self._nearby(r, vectors[i]))])
        with self.ledger.transaction() as conn:
            matches = None if matcher is None else {  # decided again on the state this write replaces
                i: matcher.match(r, [*self._nearby(r, vectors[i]), *conflicts.batch_peers(recs, i)])
                for i, r in enumerate(recs) if r.subject}
            superseded_old = writes.add_records(self.ledger, conn, self.name, recs, actor=actor, batch_id=batch_id,
                                                labels=labels, matches=matches)
            keep = [i for i, r in enumerate(recs) if r.status == "active"]
            to_index = [recs[i] for i in keep]
            marker = recovery.mark(self.dir, self.ledger, self.index)
            try:
                self._index(to_index, vectors[keep])
                self._unindex((o.namespace, o.id) for o in superseded_old)
            except Exception as exc:
                self._compensate(added=to_index, removed=superseded_old, marker=marker)
                raise StoreError(f"writing {len(recs)} edit(s) to the index failed ({exc}); nothing was stored") from exc
        marker.unlink(missing_ok=True)
        for rec in (r for r in recs if r.conflicts):  # the CLI shows warnings: say what to do about it
            for c in rec.conflicts:
                logger.warning("edit %s may state the same fact as active edit %s (%s); both are active: settle it with "
                               "`agentedit conflicts resolve %s --keep new|old|both`", rec.id, c["edit_id"], c["reason"],
                               c["conflict_id"])
        return recs

    def _nearby(self, rec: EditRecord, vector: np.ndarray) -> list[EditRecord]:
        return conflicts.nearby(self.ledger, self.index, rec, vector)

    def _compensate(self, *, added: Sequence[EditRecord], removed: Sequence[EditRecord], marker: recovery.Marker) -> None:
        """Undo a failed index write (the ledger transaction rolls back); the marker stays if this fails too."""
        try:
            self._unindex((r.namespace, r.id) for r in added)
            self._index(list(removed))
        except Exception:  # the PENDING marker makes the next open reconcile
            logger.exception("store %s: compensation failed; the index will be rebuilt on next open", self.name)
        else:
            marker.unlink(missing_ok=True)

    def _planned_update(self, edit_id: str, changes: Mapping[str, Any], namespace: str | None,
                        actor: str) -> tuple[EditRecord, np.ndarray] | None:
        """The update built from a snapshot read outside the transaction (embedding there keeps the write lock
        short); None when that fails, and the transaction builds it (and reports any error) from the stored edit."""
        try:
            old = writes.resolve(self.ledger, self.name, edit_id, namespace)
            new = writes.build_update(old, changes, actor=actor)
        except (EditError, EditNotFoundError):
            return None
        return new, self.embedder.embed([new.statement])

    def update(self, edit_id: str, changes: Mapping[str, Any], *, namespace: str | None = None, actor: str = "user",
               expected_version: int | None = None) -> EditRecord:
        """Change fields of an active edit (target, statement, prompt, ...); logged with before and after.

        ``expected_version``: change it only if it is still at that version (else :class:`VersionConflictError`).
        An edit that is no longer active raises :class:`EditConflictError`. If the change moves the edit onto the
        subject and relation of another active edit, that one is superseded (the conflict policy)."""
        bad = sorted(set(changes) & writes.PROTECTED)
        if bad:
            raise EditError(f"field(s) {', '.join(bad)} cannot be changed by update")
        planned = self._planned_update(edit_id, changes, namespace, actor)
        with self.ledger.transaction() as conn:
            old = writes.resolve(self.ledger, self.name, edit_id, namespace)
            writes.check_version(old, expected_version)
            writes.require_active(old, "updated")
            new = writes.build_update(old, changes, actor=actor)
            if planned is not None and planned[0].statement == new.statement:
                vec = planned[1]
            else:  # the edit changed since the snapshot: embed what will be stored
                vec = self.embedder.embed([new.statement])
            pairs = writes.supersede_active(self.ledger, conn, new, but=old.id)
            Ledger.replace(conn, new, prev_version=old.version)
            Ledger.log(conn, "update", new, actor=actor, before=old)
            for before, after in pairs:
                Ledger.log(conn, "supersede", after, actor=actor, before=before)
            others = [before for before, _ in pairs]
            marker = recovery.mark(self.dir, self.ledger, self.index)
            try:
                self._index([new], vec)
                self._unindex((o.namespace, o.id) for o in others)
            except Exception as exc:
                self._compensate(added=[], removed=[old, *others], marker=marker)
                raise StoreError(f"updating edit {edit_id!r} in the index failed ({exc}); nothing was changed") from exc
        marker.unlink(missing_ok=True)
        return new

    def delete(self, edit_id: str, *, namespace: str | None = None, actor: str = "user",
               expected_version: int | None = None) -> EditRecord:
        """Retract an edit: it leaves retrieval, its record and history stay in the ledger.

        ``expected_version`` as for :meth:`update`; an edit already retracted raises :class:`EditConflictError`."""
        with self.ledger.transaction() as conn:
            old = writes.resolve(self.ledger, self.name, edit_id, namespace)
            writes.check_version(old, expected_version)
            if old.status == "retracted":
                raise EditConflictError(f"edit {edit_id!r} was already retracted (version {old.version})")
            new = replace(old, status="retracted", version=old.version + 1)
            Ledger.replace(conn, new, prev_version=old.version)
            Ledger.log(conn, "delete", new, actor=actor, before=old)
            marker = recovery.mark(self.dir, self.ledger, self.index)
            try:
                self._unindex([(old.namespace, old.id)])
            except Exception as exc:
                raise StoreError(f"removing edit {edit_id!r} from the index failed ({exc}); it is still active") from exc
        marker.unlink(missing_ok=True)
        return new

    def resolve_conflict(self, conflict_id: str, keep: str, *, namespace: str, actor: str = "user") -> Conflict:
        """Settle a possible conflict: ``keep`` ``"new"``/``"old"`` (or either edit's id) supersedes the other edit
        by the kept one (in its history), which takes over the dropped edit's questions (``also_asks``); ``"both"``
        leaves both active. One transaction; nothing written on error."""
        with self.ledger.transaction() as conn:
            c = conflicts.get(conn, namespace, conflict_id)
            if c is None:
                raise EditNotFoundError(f"no conflict {conflict_id!r} in namespace {namespace!r}; `agentedit conflicts` "
                                        "lists the open ones")
            if c.status != "open":
                raise EditConflictError(f"conflict {conflict_id!r} was already resolved ({c.resolution})")
            if keep == "both":
                return conflicts.resolve(conn, c, "kept both", actor=actor)
            kept_id = {"new": c.edit_id, "old": c.other_id, c.edit_id: c.edit_id, c.other_id: c.other_id}.get(keep)
            if kept_id is None:
                raise EditError(f"keep must be 'new' ({c.edit_id}), 'old' ({c.other_id}), 'both', or one of those ids; "
                                f"got {keep!r}")
            dropped_id = c.other_id if kept_id == c.edit_id else c.edit_id
            kept, dropped = writes.resolve(self.ledger, self.name, kept_id, namespace), \
                writes.resolve(self.ledger, self.name, dropped_id, namespace)
            writes.require_active(kept, "kept")
            out = conflicts.resolve(conn, c, f"kept:{kept_id}", actor=actor)
            if dropped.status != "active":
                return out
            gone = replace(dropped, status="superseded", superseded_by=kept.id, version=dropped.version + 1)
            Ledger.replace(conn, gone, prev_version=dropped.version)
            Ledger.log(conn, "supersede", gone, actor=actor, before=dropped)
            writes.keep_over(conn, kept, dropped, actor=actor)
            marker = recovery.mark(self.dir, self.ledger, self.index)
            try:
                self._unindex([(namespace, dropped.id)])
            except Exception as exc:
                self._compensate(added=[], removed=[dropped], marker=marker)
                raise StoreError(f"removing edit {dropped.id!r} from the index failed ({exc}); nothing was changed") from exc
        marker.unlink(missing_ok=True)
        return out

    def conflicts(self, namespace: str | None = None, *, include_resolved: bool = False) -> list[Conflict]:
        """Possible conflicts between edits (open ones whose two edits are both still active, unless
        ``include_resolved``), oldest first."""
        return conflicts.listed(self.ledger, namespace, include_resolved=include_resolved)

    def kept_apart(self, namespace: str, ids: Sequence[str]) -> set[frozenset[str]]:
        """Pairs of ``ids`` resolved as two facts ("kept both"): query time lets both through."""
        return conflicts.kept_apart(self.ledger, namespace, ids)

    # -- reads ---------------------------------------------------------------------------------
    def get(self, edit_id: str, *, namespace: str | None = None) -> EditRecord:
        """The edit ``edit_id`` of ``namespace`` (ids are unique per namespace; with None, the one namespace holding it)."""
        return writes.resolve(self.ledger, self.name, edit_id, namespace)

    def list(self, *, namespace: str | None = None, subject: str | None = None, text: str | None = None,
             include_inactive: bool = False, limit: int | None = None, offset: int = 0,
             review: bool = False, created: tuple[str | None, str | None] = (None, None)) -> list[EditRecord]:
        """Edits in creation order; ``review``: only those whose parse waits for review (``metadata.needs_review``);
        ``created``: only those created in ``[from, before)`` (ISO times or days, either end None)."""
        if namespace is not None:
            self.require_namespace(namespace)
        statuses = () if include_inactive else ("active",)
        return self.ledger.query(namespace=namespace, subject=subject, text=text, statuses=statuses, limit=limit,
                                 offset=offset, review=review, created=created)

    def count(self, namespace: str | None = None) -> int:
        return self.ledger.count(namespace)

    def history(self, edit_id: str, *, namespace: str | None = None) -> list[dict[str, Any]]:
        """Audit events of an edit and of the edits it superseded (and those they superseded), oldest first."""
        rec = self.get(edit_id, namespace=namespace)
        ns, seen, todo = rec.namespace, {rec.id}, [rec]
        while todo:
            cur = todo.pop()
            older = [o for o in self.ledger.superseded_by(ns, cur.id) if o.id not in seen]
            if cur.supersedes and cur.supersedes not in seen and all(o.id != cur.supersedes for o in older):
                prev = self.ledger.get(ns, cur.supersedes)
                older += [prev] if prev is not None else []
            seen.update(o.id for o in older)
            todo.extend(older)
        events = [ev for i in seen for ev in self.ledger.events(ns, i)]
        return sorted(events, key=lambda e: e["seq"])

    def query(self, text: str, *, namespace: str = DEFAULT_NAMESPACE, k: int = 4,
              vector: np.ndarray | None = None, at: str | None = None) -> list[Candidate]:
        """The ``k`` nearest active edits of ``namespace`` (valid at time ``at``, default now)."""
        if k <= 0 or not self.index.has_namespace(namespace):  # nothing indexed there: skip embedding the query
            return []
        found, version = self.recall.get(namespace, text, k) if vector is None else (None, 0)
        if found is None:
            vec = self.embedder.embed_one(text) if vector is None else vector
            hits = self.index.query(namespace, vec, k)
            recs = self.ledger.get_many(namespace, [edit_id for edit_id, _ in hits])
            # index ahead of the ledger (crash): never serve an unacknowledged edit
            found = [(rec, sim) for edit_id, sim in hits
                     if (rec := recs.get(edit_id)) is not None and rec.status == "active" and rec.namespace == namespace]
            if vector is None:
                self.recall.put(namespace, text, k, version, found)
        now = at or utc_now()
        return [Candidate(rec, similarity) for rec, similarity in found
                if not ((rec.valid_from and rec.valid_from > now) or (rec.valid_until and rec.valid_until <= now))]

    # -- import / export -----------------------------------------------------------------------
    def import_file(self, path: str | os.PathLike[str], *, namespace: str = DEFAULT_NAMESPACE, actor: str = "import",
                    progress: Progress | None = None) -> list[EditRecord]:
        """Import a JSONL/JSON/CSV file atomically; errors name the offending line."""
        recs, labels = transfer.read_records(path, namespace=namespace, actor=actor)
        return self.add_many([], namespace=namespace, actor=actor, labels=labels, progress=progress, records=recs)

    def export_file(self, path: str | os.PathLike[str], *, namespace: str | None = None, include_inactive: bool = False) -> int:
        """Write edits as JSONL (one full record per line); returns how many were written."""
        return transfer.write_records(path, self.list(namespace=namespace, include_inactive=include_inactive))
