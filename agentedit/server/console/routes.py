"""The console's own JSON routes under ``/ui/api``: who am I, edit pages, the import job.

They sit beside ``/v1/edits`` and ``/v1/conflicts`` (which the console's pages call as they are) and add only what
a page needs in one request: a list with a creation-date window, an edit with its history, what it superseded and
the questions recently answered with it, and a file import that reports progress. Every route goes through
:func:`~agentedit.server.access.require` (same keys, roles and namespace header as the API) and the Editor's public
verbs; an edit of another namespace is not found.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Literal

from fastapi import APIRouter, Query, Request

from ...errors import AgentEditError
from ..access import Principal, require
from ..auth import ALL_NAMESPACES
from ..edits import edit_fields
from ..errors import ApiError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/ui/api", tags=["console"], include_in_schema=False)


def _state(request: Request) -> Any:
    return request.app.state.agentedit


def _console(request: Request) -> Any:
    return request.app.state.console


@router.get("/session")
def session(request: Request, who: Principal = require("query")) -> dict[str, Any]:
    """The caller's role and the namespaces it may open (a ``*`` key: every namespace of the store)."""
    st = _state(request)
    if who.key is None or ALL_NAMESPACES in who.key.namespaces:
        names = sorted(set(st.editor.namespaces()) | {st.config.namespace})
    else:
        names = list(who.key.namespaces)
    role = who.key.role if who.key else "admin"
    return {"role": role, "name": who.key.name if who.key else "local", "namespaces": names,
            "namespace": who.namespace, "auth": st.keys is not None, "model": st.model_name}


def _day(value: str | None, name: str) -> str | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ApiError(400, f"{name} must be a date as YYYY-MM-DD, got {value[:40]!r}", code="invalid_date",
                       param=name) from None


@router.get("/edits")
def list_edits(request: Request, who: Principal = require("query"),
               subject: str | None = Query(None), text: str | None = Query(None),
               status: Literal["active", "all"] = Query("active"), review: bool = Query(False),
               since: str | None = Query(None, description="created on or after this day (YYYY-MM-DD, UTC)"),
               until: str | None = Query(None, description="created on or before this day (YYYY-MM-DD, UTC)"),
               limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0)) -> dict[str, Any]:
    """A page of edits, oldest first (the date window is a query of the ledger); ``next_offset`` is where the next
    page starts."""
    editor = _state(request).editor
    lo, hi = _day(since, "since"), _day(until, "until")
    args = {"subject": subject or None, "text": text or None, "include_inactive": status == "all", "review": review}
    total = editor.count(who.namespace) if status == "active" and not (subject or text or review or lo or hi) else None
    after = (dt.date.fromisoformat(hi) + dt.timedelta(days=1)).isoformat() if hi else None
    recs = editor.edits(who.namespace, limit=limit + 1, offset=offset, created=(lo, after), **args)
    return {"data": [edit_fields(r) for r in recs[:limit]], "has_more": len(recs) > limit,
            "next_offset": offset + min(limit, len(recs)), "offset": offset, "total": total, "scanned": len(recs)}


@router.get("/edits/{edit_id}")
def edit_page(edit_id: str, request: Request, who: Principal = require("query")) -> dict[str, Any]:
    """One edit with its history, the edits it superseded and that superseded it, and recent questions."""
    editor = _state(request).editor
    rec = editor.get(edit_id, namespace=who.namespace)
    history = editor.history(edit_id, namespace=who.namespace)
    related: dict[str, Any] = {}
    for key in ("supersedes", "superseded_by"):
        other = getattr(rec, key)
        if other:
            try:
                related[key] = edit_fields(editor.get(other, namespace=who.namespace))
            except AgentEditError:
                related[key] = None
    return {"edit": edit_fields(rec), "history": history, **related,
            "questions": _console(request).recent.for_edit(who.namespace, rec.id)}


@router.post("/imports", status_code=202)
async def start_import(request: Request, filename: str = Query(..., min_length=1, max_length=200),
                       who: Principal = require("write")) -> dict[str, Any]:
    """Import the request body (a .jsonl, .json or .csv file) in the background, all or nothing; poll the job."""
    body = await request.body()
    job = _console(request).imports.start(_state(request).editor, body, filename=filename,
                                          namespace=who.namespace, actor=who.actor)
    return job.to_dict()


@router.get("/imports/{job_id}")
def import_status(job_id: str, request: Request, who: Principal = require("write")) -> dict[str, Any]:
    job = _console(request).imports.get(job_id, namespace=who.namespace, actor=who.actor)
    if job is None:
        raise ApiError(404, f"no import {job_id!r} of this key in namespace {who.namespace!r}", code="not_found")
    return job.to_dict()
