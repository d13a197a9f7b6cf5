"""The store's side of the semantic conflict policy: which active edits a new edit is checked against, and the
persisted list of possible conflicts (the ledger's ``conflicts`` table).

The matching itself (same subject, same relation) is the scope layer's
(:class:`agentedit.scope.conflict.ConflictMatcher`); the store only asks a :class:`Matcher`, which the Editor
hands it. :func:`nearby` is called twice per write: before the transaction (so the matcher can embed the
relations there) and inside it, where the matches are decided on the state the write replaces.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol, Sequence

import numpy as np

from ..errors import StoreError
from ..types import Conflict, ConflictMatch, EditRecord, utc_now
from ..db.connection import Conn
from .index import VectorIndex
from .ledger import Ledger

NEARBY_K = 16  # index neighbours of a new edit's statement checked for a matching subject and relation

_COLUMNS = ("id", "namespace", "edit_id", "other_id", "score", "reason", "status", "created_at", "resolved_at",
            "resolution", "actor")


class Matcher(Protocol):
    """What the store needs from the conflict matcher."""

    def prepare(self, records: Sequence[EditRecord]) -> None: ...

    def match(self, rec: EditRecord, others: Sequence[EditRecord]) -> list[ConflictMatch]: ...


def nearby(ledger: Ledger, index: VectorIndex, rec: EditRecord, vector: np.ndarray) -> list[EditRecord]:
    """Active in-context edits of ``rec``'s namespace that may state the same fact: the statement's nearest
    neighbours in the index and every edit whose subject is spelled the same (any case). Weight edits are left
    to the key rule (their route reverts the weights of what a write superseded)."""
    if not rec.subject or rec.method != "in-context":  # a weight edit's supersession also reverts weights: keys only
        return []
    ns = rec.namespace
    ids = [i for i, _ in index.query(ns, vector, NEARBY_K)] if index.has_namespace(ns) else []
    found = ledger.get_many(ns, ids)
    for subject in {rec.subject, *[a for a in rec.metadata.get("aliases", []) or [] if isinstance(a, str)]}:
        for other in ledger.query(namespace=ns, subject=subject, text=None, statuses=("active",), limit=NEARBY_K,
                                  offset=0):
            found.setdefault(other.id, other)
    return [o for o in found.values() if o.status == "active" and o.method == rec.method and o.id != rec.id]


def insert(conn: Conn, rec: EditRecord, match: ConflictMatch, *, actor: str) -> Conflict:
    c = Conflict(id="c_" + uuid.uuid4().hex[:12], namespace=rec.namespace, edit_id=rec.id, other_id=match.edit_id,
                 score=match.score, reason=match.reason, actor=actor)
    conn.execute(f"INSERT INTO conflicts ({', '.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))})",
                 tuple(getattr(c, k) for k in _COLUMNS))
    return c


def _conflict(row: Sequence[Any]) -> Conflict:
    return Conflict(**dict(zip(_COLUMNS, row)))


def get(conn: Conn, namespace: str, conflict_id: str) -> Conflict | None:
    row = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM conflicts WHERE namespace = ? AND id = ?",
                       (namespace, conflict_id)).fetchone()
    return _conflict(row) if row else None


def listed(ledger: Ledger, namespace: str | None, *, include_resolved: bool) -> list[Conflict]:
    """Conflicts of ``namespace`` (all with None), oldest first; unless ``include_resolved``, only open ones whose
    two edits are both still active (a retraction or a later correction settles a conflict on its own)."""
    sql, args = f"SELECT {', '.join(_COLUMNS)} FROM conflicts WHERE 1=1", []
    if namespace is not None:
        sql, args = sql + " AND namespace = ?", [namespace]
    if not include_resolved:
        sql += " AND status = 'open'"
    rows = ledger.rows(sql + " ORDER BY created_at, id", tuple(args))
    found = [_conflict(r) for r in rows]
    if include_resolved:
        return found
    out = []
    for c in found:
        both = ledger.get_many(c.namespace, [c.edit_id, c.other_id])
        if len(both) == 2 and all(r.status == "active" for r in both.values()):
            out.append(c)
    return out


def resolve(conn: Conn, c: Conflict, resolution: str, *, actor: str) -> Conflict:
    c.status, c.resolved_at, c.resolution, c.actor = "resolved", utc_now(), resolution, actor
    cur = conn.execute("UPDATE conflicts SET status = ?, resolved_at = ?, resolution = ?, actor = ? WHERE namespace = ?"
                       " AND id = ? AND status = 'open'", (c.status, c.resolved_at, resolution, actor, c.namespace, c.id))
    if cur.rowcount != 1:
        raise StoreError(f"conflict {c.id!r} changed under a write transaction; nothing was written, retry")
    return c


def batch_peers(recs: Sequence[EditRecord], i: int) -> list[EditRecord]:
    """The records before ``recs[i]`` in one batch with its namespace and subject (spelled alike): a statement and its
    correction written together are matched like a correction written later."""
    key = " ".join((recs[i].subject or "").lower().split())
    return [p for p in recs[:i] if key and p.namespace == recs[i].namespace
            and " ".join((p.subject or "").lower().split()) == key]


def kept_apart(ledger: Ledger, namespace: str, ids: Sequence[str]) -> set[frozenset[str]]:
    """Pairs of ``ids`` a person declared two facts (a conflict between them resolved "kept both")."""
    if len(ids) < 2:
        return set()
    marks = ", ".join("?" * len(ids))
    rows = ledger.rows(
        f"SELECT edit_id, other_id FROM conflicts WHERE namespace = ? AND resolution = 'kept both' AND edit_id IN "
        f"({marks}) AND other_id IN ({marks})", (namespace, *ids, *ids))
    return {frozenset(r) for r in rows}


def summary(c: Conflict) -> dict[str, Any]:
    """What a write's reply says about one possible conflict."""
    return {"conflict_id": c.id, "edit_id": c.other_id, "score": c.score, "reason": c.reason}


__all__ = ["Matcher", "NEARBY_K", "batch_peers", "get", "insert", "kept_apart", "listed", "nearby", "resolve", "summary"]
