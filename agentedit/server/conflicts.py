"""``/v1/conflicts``: possible conflicts between edits of the namespace, and their resolution.

A write that finds an active edit which may state the same fact as the new one (same subject, a relation
similar enough to be uncertain) keeps both active and reports the pair in its reply's ``conflicts``; the
pair stays listed here until someone resolves it: keep the newer edit, the older one, or both. Both routes
need the ``write`` role and work in the request's namespace (see :mod:`agentedit.server.access`), like
``/v1/edits``; a conflict of another namespace is not found.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ..types import Conflict
from .access import Principal, require

router = APIRouter(prefix="/v1/conflicts", tags=["conflicts"])


class ResolveIn(BaseModel):
    """How to settle a conflict: ``new`` or ``old`` (or either edit's id) supersedes the other edit; ``both`` keeps both."""

    model_config = ConfigDict(extra="forbid")
    keep: str = Field(..., min_length=1, max_length=200, description="'new', 'old', 'both', or one of the two edit ids")


def _conflict(c: Conflict) -> dict[str, Any]:
    return {"object": "conflict", **c.to_dict()}


@router.get("", summary="Open conflicts of the namespace")
def list_conflicts(request: Request, who: Principal = require("write"),
                   status: str = Query("open", pattern="^(open|all)$", description="'all' includes resolved ones"),
                   ) -> dict[str, Any]:
    found = request.app.state.agentedit.editor.conflicts(who.namespace, include_resolved=status == "all")
    return {"object": "list", "namespace": who.namespace, "data": [_conflict(c) for c in found]}


@router.post("/{conflict_id}/resolve", summary="Keep one edit of a conflict, or both")
def resolve_conflict(conflict_id: str, body: ResolveIn, request: Request, who: Principal = require("write")) -> dict[str, Any]:
    c = request.app.state.agentedit.editor.resolve_conflict(conflict_id, body.keep, namespace=who.namespace,
                                                            actor=who.actor)
    return _conflict(c)
