"""``/v1/edits``: create, batch import, list with filters, get, update, delete, history.

Every route works in the request's namespace (see :mod:`agentedit.server.access`); an edit of
another namespace is reported as not found. Each route calls one public verb of the Editor, so a
plain statement gets its anatomy as through ``Editor.edit`` and deleting a weight edit restores the
weights. Writes are all-or-nothing and logged with the key id.

Every edit carries a ``version`` (1, then +1 per change), sent as the ``ETag`` of the routes that return
one edit. ``PATCH`` and ``DELETE`` honour ``If-Match: "<version>"``: on a mismatch nothing is written and
the reply is 412 with the current version in its ``ETag``; a change to an edit retracted or superseded
meanwhile is a 409.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from ..types import EditRecord
from .access import Principal, require
from .errors import ApiError
from .schemas import EditBatch, EditIn, EditPatch

router = APIRouter(prefix="/v1/edits", tags=["edits"])


def _editor(request: Request) -> Any:
    return request.app.state.agentedit.editor


def edit_fields(rec: EditRecord) -> dict[str, Any]:
    """An edit as the API shows it: its record and whether its parse waits for review."""
    return {**rec.to_dict(), "needs_review": bool(rec.metadata.get("needs_review"))}


def _edit(rec: EditRecord, response: Response | None = None) -> dict[str, Any]:
    if response is not None:
        response.headers["ETag"] = f'"{rec.version}"'
    return {"object": "edit", **edit_fields(rec)}


_IF_MATCH = Header(None, alias="If-Match", description='only if the edit is at this version (its ETag, e.g. "3")')


def _expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header asks for (``*`` or no header: any)."""
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise ApiError(400, f"If-Match must be one edit version as its ETag gives it (e.g. \"3\"), got {if_match[:40]!r}",
                       code="invalid_if_match", param="If-Match")
    return int(value)


@router.post("", status_code=201, summary="Record one edit")
def create_edit(body: EditIn, request: Request, response: Response, who: Principal = require("write")) -> dict[str, Any]:
    return _edit(_editor(request).edit_record(body.data(), namespace=who.namespace, actor=who.actor), response)


@router.post("/batch", status_code=201, summary="Import a batch of edits, all or nothing")
def import_edits(body: EditBatch, request: Request, who: Principal = require("write")) -> dict[str, Any]:
    recs = _editor(request).edit_many([e.data() for e in body.edits], namespace=who.namespace, actor=who.actor)
    out = {"object": "edit.batch", "namespace": who.namespace, "imported": len(recs), "ids": [r.id for r in recs]}
    superseded = {r.id: r.supersedes for r in recs if r.supersedes}
    conflicts = {r.id: r.conflicts for r in recs if r.conflicts}
    return {**out, **({"supersedes": superseded} if superseded else {}), **({"conflicts": conflicts} if conflicts else {})}


@router.get("", summary="List edits of the namespace")
def list_edits(request: Request, who: Principal = require("query"),
               subject: str | None = Query(None, description="exact subject, case-insensitive"),
               text: str | None = Query(None, description="substring of the fact"),
               status: Literal["active", "all"] = Query("active", description="'all' includes superseded and retracted"),
               review: bool = Query(False, description="only edits whose statement parse waits for review"),
               limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> dict[str, Any]:
    recs = _editor(request).edits(who.namespace, subject=subject, text=text, include_inactive=status == "all",
                                  limit=limit + 1, offset=offset, review=review)
    return {"object": "list", "namespace": who.namespace, "data": [_edit(r) for r in recs[:limit]],
            "has_more": len(recs) > limit}


@router.get("/{edit_id}", summary="One edit")
def get_edit(edit_id: str, request: Request, response: Response, who: Principal = require("query")) -> dict[str, Any]:
    return _edit(_editor(request).get(edit_id, namespace=who.namespace), response)


@router.patch("/{edit_id}", summary="Change an active edit")
def update_edit(edit_id: str, body: EditPatch, request: Request, response: Response, who: Principal = require("write"),
                if_match: str | None = _IF_MATCH) -> dict[str, Any]:
    changes = body.changes()
    if not changes:
        raise ApiError(400, "nothing to change: send at least one field (target_new, statement, prompt, ...)", code="empty_update")
    expected = _expected_version(if_match)
    rec = _editor(request).update(edit_id, namespace=who.namespace, actor=who.actor, expected_version=expected, **changes)
    return _edit(rec, response)


@router.delete("/{edit_id}", summary="Retract an edit (its history is kept)")
def delete_edit(edit_id: str, request: Request, response: Response, who: Principal = require("write"),
                if_match: str | None = _IF_MATCH) -> dict[str, Any]:
    expected = _expected_version(if_match)
    rec = _editor(request).forget(edit_id, namespace=who.namespace, actor=who.actor, expected_version=expected)
    return {"id": rec.id, "object": "edit.deleted", "deleted": True, "edit": _edit(rec, response)}


@router.get("/{edit_id}/history", summary="Audit trail of an edit and of the edits it superseded")
def edit_history(edit_id: str, request: Request, who: Principal = require("query")) -> dict[str, Any]:
    return {"object": "list", "data": _editor(request).history(edit_id, namespace=who.namespace)}
