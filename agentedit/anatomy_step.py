"""The write path's anatomy step: a plain statement with no subject gets its subject, relation and target
before it is recorded (see :mod:`agentedit.anatomy`). Shared by every write verb of the Editor."""

from __future__ import annotations

from typing import Any, Mapping

from .types import EditRecord


def with_anatomy(data: Mapping[str, Any] | EditRecord, mode: str, backend: Any = None) -> Any:
    """``data`` with ``subject``/``prompt``/``target_new`` filled from its ``statement`` (``metadata.anatomy`` says
    how they were found), or ``data`` unchanged when it already has them, has no statement, or ``mode`` is ``off``.
    ``backend``: a model to ask first (the offline rules are the fallback)."""
    if mode == "off" or not isinstance(data, Mapping):
        return data
    statement = data.get("statement")
    if not isinstance(statement, str) or data.get("prompt") or data.get("subject") or data.get("requested_rewrite"):
        return data
    from .anatomy import parse_statement

    found = parse_statement(statement, backend)
    if found is None:
        return data
    meta = data.get("metadata")
    if meta is not None and not isinstance(meta, Mapping):
        return data  # build_record will say what is wrong with it
    meta = {**(meta or {}), "anatomy": found.source}
    return {**data, "subject": found.subject, "prompt": found.prompt, "target_new": data.get("target_new") or found.target,
            "metadata": meta}
