"""The ledger side of every write, run inside one ``BEGIN IMMEDIATE`` transaction.

:class:`~agentedit.memory.store.EditMemory` validates and embeds outside the transaction, then calls these
with the transaction open, so every check (does the id exist, which edit is active for this key, which
version is stored, is the edit still active) reads the state its write replaces. Nothing here touches the
vector index; the store updates it after these return, inside the same transaction.

The conflict policy lives here, once, for every write path (create, batch, import, update): an edit that
becomes active under a conflict key supersedes the edit active under that key (status ``superseded``, version
+1, a ``supersede`` event), so at most one edit per (namespace, subject, relation) is active. A unique index on
the ledger (see :mod:`.schema`) refuses any write that would break that.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

from ..errors import DuplicateEditError, EditConflictError, EditError, EditNotFoundError, VersionConflictError
from ..records import ALSO_ASKS, also_asks, build_record
from ..types import ConflictMatch, EditRecord
from . import conflicts
from ..db.connection import Conn
from .ledger import Ledger, stored_json, stored_key

#: fields :meth:`EditMemory.update` refuses to change
PROTECTED = frozenset({"id", "namespace", "status", "created_at", "supersedes", "superseded_by", "version"})
_KEPT = ("prompt", "subject", "target_new", "target_old", "valid_from", "valid_until", "metadata")


def resolve(ledger: Ledger, store: str, edit_id: str, namespace: str | None) -> EditRecord:
    """The record ``edit_id`` of ``namespace``; with no namespace, the one namespace that holds that id."""
    if namespace is not None:
        rec = ledger.get(namespace, edit_id)
        if rec is None:
            raise EditNotFoundError(f"no edit with id {edit_id!r} in namespace {namespace!r} in store {store!r}; "
                                    "`agentedit list` shows the ids")
        return rec
    found = ledger.find(edit_id)
    if not found:
        raise EditNotFoundError(f"no edit with id {edit_id!r} in store {store!r}; `agentedit list` shows the ids")
    if len(found) > 1:
        names = ", ".join(r.namespace for r in found)
        raise EditConflictError(f"id {edit_id!r} names edits in several namespaces ({names}) of store {store!r}; "
                                "say which namespace you mean")
    return found[0]


def check_version(rec: EditRecord, expected_version: int | None) -> None:
    """Raise :class:`VersionConflictError` unless ``rec`` is at ``expected_version`` (None: any version)."""
    if expected_version is not None and rec.version != expected_version:
        raise VersionConflictError(
            f"edit {rec.id!r} in namespace {rec.namespace!r} is at version {rec.version}, not {expected_version}: "
            f"it changed since it was read; read it again and, if the change still applies, retry with version "
            f"{rec.version}", edit_id=rec.id, namespace=rec.namespace, expected_version=expected_version,
            current_version=rec.version)


def require_active(rec: EditRecord, doing: str) -> None:
    if rec.status != "active":
        by = f" by {rec.superseded_by!r}" if rec.status == "superseded" and rec.superseded_by else ""
        raise EditConflictError(f"edit {rec.id!r} is {rec.status}{by}; only active edits can be {doing} "
                                "(list the namespace's active edits to find the current one)")


def supersede_active(ledger: Ledger, conn: Conn, rec: EditRecord, *, but: str | None = None
                     ) -> list[tuple[EditRecord, EditRecord]]:
    """Supersede the edit active under ``rec``'s conflict key by ``rec`` (rows only, no events yet). ``rec`` takes
    over the superseded edit's ``also_asks`` (the questions of the facts that edit corrected: same relation, the chain
    goes on).

    Returns ``(before, after)`` pairs for the caller to log once ``rec`` itself is written; ``but`` is an id
    to leave alone (the edit being updated)."""
    key = rec.conflict_key
    if key is None:
        return []
    out = []
    for old in ledger.active_by_key(key):
        if old.id == but and old.namespace == rec.namespace:
            continue
        out.append(_supersede(conn, old, rec))
        carry_relations(rec, also_asks(old))
    return out


def _supersede(conn: Conn, old: EditRecord, rec: EditRecord) -> tuple[EditRecord, EditRecord]:
    """Mark ``old`` superseded by ``rec`` (a version step, compare-and-swap on the stored version)."""
    new = replace(old, status="superseded", superseded_by=rec.id, version=old.version + 1)
    Ledger.replace(conn, new, prev_version=old.version)
    rec.supersedes = old.id
    return old, new


def supersede_matched(ledger: Ledger, conn: Conn, rec: EditRecord, matches: Sequence[ConflictMatch]
                      ) -> list[tuple[EditRecord, EditRecord]]:
    """Supersede the edits the matcher found to state ``rec``'s fact (those still active), as :func:`supersede_active`."""
    out = []
    for m in matches:
        old = ledger.get(rec.namespace, m.edit_id)
        if old is None or old.status != "active" or old.id == rec.id:
            continue
        out.append(_supersede(conn, old, rec))
        if m.relation:
            carry_relations(rec, [m.relation, *also_asks(old)])
    return out


MAX_ALSO_ASKS = 4


def carry_relations(rec: EditRecord, templates: Sequence[str]) -> bool:
    """Add ``templates`` (newest first, its own relation and repeats left out, at most :data:`MAX_ALSO_ASKS`) to
    ``rec``'s ``also_asks``: a correction answers the questions the fact it corrects answered ("Which country is X a
    citizen of?" after "X holds Israel citizenship" corrects "X is a citizen of Belgium")."""
    before = also_asks(rec)
    kept: list[str] = []
    for t in [*templates, *before]:
        if t and "{}" in t and t != rec.relation and t not in kept:
            kept.append(t)
    kept = kept[:MAX_ALSO_ASKS]
    if kept == before:
        return False
    rec.metadata = {**rec.metadata, ALSO_ASKS: kept}
    return True


def keep_over(conn: Conn, kept: EditRecord, dropped: EditRecord, *, actor: str) -> EditRecord:
    """A resolved conflict: ``kept`` answers the questions ``dropped`` answered (its relation and ``also_asks`` into
    ``kept``'s ``also_asks``; a version step, logged as an update, when that changes anything). Returns ``kept`` as
    it now stands."""
    carried = replace(kept, metadata=dict(kept.metadata), version=kept.version + 1)
    if not carry_relations(carried, [dropped.relation or "", *also_asks(dropped)]):
        return kept
    Ledger.replace(conn, carried, prev_version=kept.version)
    Ledger.log(conn, "update", carried, actor=actor, before=kept)
    return carried


def add_records(ledger: Ledger, conn: Conn, store: str, recs: Sequence[EditRecord], *, actor: str,
                batch_id: str, labels: Sequence[str] | None,
                matches: Mapping[int, Sequence[ConflictMatch]] | None = None) -> list[EditRecord]:
    """Insert a batch of new records in order, each superseding the edit active under its key (an earlier
    record of the batch included). Returns the records that were active before the batch and are superseded now.

    ``matches`` (by record index) are the matcher's findings against the stored edits, made inside this
    transaction: ``supersede`` matches are superseded like a key match; ``conflict`` matches are recorded in
    the ``conflicts`` table and on the record's ``conflicts``. Without ``matches`` (imports past the matcher's
    limit) :func:`_add_in_bulk` writes the same rows and events in a few statement batches."""
    by_ns: dict[str, list[int]] = {}
    for i, rec in enumerate(recs):
        by_ns.setdefault(rec.namespace, []).append(i)
    for ns, idx in by_ns.items():
        clash = ledger.existing_ids(ns, [recs[i].id for i in idx])
        if clash:
            i = next(i for i in idx if recs[i].id in clash)
            where = labels[i] if labels else f"#{i}"
            raise DuplicateEditError(f"edit {where}: id {recs[i].id!r} already exists in namespace {ns!r} of store "
                                     f"{store!r}; use a new id, or update/forget the existing edit")
    if matches is None:
        return _add_in_bulk(ledger, conn, recs, actor=actor, batch_id=batch_id, namespaces=list(by_ns))
    mine = {(r.namespace, r.id): r for r in recs}
    superseded_old: list[EditRecord] = []
    for i, rec in enumerate(recs):
        Ledger.ensure_namespace(conn, rec.namespace)
        found = (matches or {}).get(i, ())
        pairs = supersede_active(ledger, conn, rec)
        pairs += supersede_matched(ledger, conn, rec, [m for m in found if m.kind == "supersede"])
        for m in found:
            other = ledger.get(rec.namespace, m.edit_id) if m.kind == "conflict" else None
            if other is not None and other.status == "active":
                rec.conflicts.append(conflicts.summary(conflicts.insert(conn, rec, m, actor=actor)))
        Ledger.insert(conn, rec)
        Ledger.log(conn, "add", rec, actor=actor, batch_id=batch_id)
        for before, after in pairs:
            Ledger.log(conn, "supersede", after, actor=actor, batch_id=batch_id, before=before)
            batch_rec = mine.get((after.namespace, after.id))
            if batch_rec is not None:  # an earlier record of this batch: the caller gets its final state
                batch_rec.status, batch_rec.superseded_by, batch_rec.version = after.status, after.superseded_by, after.version
            else:
                superseded_old.append(before)
    return superseded_old


def _add_in_bulk(ledger: Ledger, conn: Conn, recs: Sequence[EditRecord], *, actor: str, batch_id: str,
                 namespaces: list[str]) -> list[EditRecord]:
    """What :func:`add_records` does record by record, with one read of the active edits of the batch's keys and
    the rows and events written as statement batches: each record supersedes the edit active under its key (stored,
    or earlier in the batch), the events come in the same order (a record's ``add``, then what it superseded)."""
    for ns in namespaces:
        Ledger.ensure_namespace(conn, ns)
    current: dict[str, EditRecord] = ledger.active_by_keys(sorted({k for r in recs if (k := stored_key(r))}))
    stored = {(r.namespace, r.id) for r in current.values()}
    events: list[tuple[str, str, str, str | None, str]] = []
    superseded_old: list[EditRecord] = []
    for rec in recs:
        key = stored_key(rec)
        old = current.get(key) if key else None
        if old is not None:
            rec.supersedes = old.id
            carry_relations(rec, also_asks(old))
        events.append(("add", rec.id, rec.namespace, None, stored_json(rec)))
        if old is not None:
            before = stored_json(old)
            if (old.namespace, old.id) in stored:  # a stored edit: its row changes now (compare and swap)
                new = _supersede(conn, old, rec)[1]
                superseded_old.append(old)
            else:  # an earlier record of this batch: it is inserted in its final state below
                old.status, old.superseded_by, old.version = "superseded", rec.id, old.version + 1
                new = old
            events.append(("supersede", new.id, new.namespace, before, stored_json(new)))
        if key:
            current[key] = rec
    Ledger.insert_rows(conn, list(recs))
    Ledger.log_rows(conn, events, actor=actor, batch_id=batch_id)
    return superseded_old


def build_update(old: EditRecord, changes: Mapping[str, Any], *, actor: str) -> EditRecord:
    """The record ``old`` becomes with ``changes`` applied (validated; version +1); nothing is written."""
    bad = sorted(set(changes) & PROTECTED)
    if bad:
        raise EditError(f"field(s) {', '.join(bad)} cannot be changed by update")
    merged = {k: v for k, v in old.to_dict().items() if k in _KEPT}
    if old.prompt is None and "statement" not in changes:  # a plain statement: it carries the fact itself
        statement = old.statement
        if changes.get("target_new") is not None and changes.get("target_new") != old.target_new:
            cut = statement.rfind(old.target_new) if old.target_new else -1
            if cut < 0:
                raise EditError(f"edit {old.id!r} is a plain statement that does not contain its target; "
                                "give the new statement as well")
            statement = statement[:cut] + str(changes["target_new"]) + statement[cut + len(old.target_new or ""):]
        merged["statement"] = statement
    merged.update(changes)
    merged["id"], merged["namespace"] = old.id, old.namespace
    new = build_record(merged, namespace=old.namespace, actor=actor)
    return replace(new, created_at=old.created_at, supersedes=old.supersedes, method=old.method, version=old.version + 1)
