"""The write path's anatomy step: a plain statement with no subject gets its subject, relation and target before it
is recorded (see :mod:`agentedit.anatomy`). Shared by every write verb of the Editor.

What a parse leaves in the record's ``metadata``: ``anatomy`` (its source: ``model``, ``parser`` or ``rules``),
``anatomy_confidence``, ``flags`` (role tags or instructions found in the statement, kept as data) and, when the
parse is below the review threshold, flagged, or found nothing, ``needs_review: true`` with ``review_reason``.

Bad input: an empty statement, or one that is only role tags and instructions ("Ignore all previous instructions."),
raises :class:`~agentedit.anatomy.NoFactError` before anything is written (an instruction stored as a fact would be
put in front of the model); one with nothing a fact could be about ("hello there") is recorded, marked for review, and
applies by similarity only; one longer than the record limit is refused by the record validation, unparsed.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .anatomy import REVIEW_BELOW, Anatomy
from .types import EditRecord

NOT_FOUND = "no subject and target found: the edit applies by similarity only; give --subject (or subject/prompt)"
NO_FACT = "no fact found (nothing the statement is about): it applies by similarity only; rewrite it as a fact"


def review_metadata(found: Anatomy | None, threshold: float = REVIEW_BELOW, *, no_fact: bool = False) -> dict[str, Any]:
    """The metadata a parse adds to its record (``no_fact``: the statement has nothing a fact could be about)."""
    if found is None:
        return {"needs_review": True, "review_reason": NO_FACT if no_fact else NOT_FOUND}
    meta: dict[str, Any] = {"anatomy": found.source, "anatomy_confidence": found.confidence}
    if found.flags:
        meta["flags"] = list(found.flags)
    if found.needs_review(threshold):
        meta.update(needs_review=True, review_reason=found.review_reason(threshold))
    return meta


def with_anatomy(data: Mapping[str, Any] | EditRecord, mode: str, backend: Any = None, *,
                 review_below: float = REVIEW_BELOW) -> Any:
    """``data`` with ``subject``/``prompt``/``relation``/``target_new`` filled from its ``statement`` and the parse's
    metadata (see the module docstring), or ``data`` unchanged when it already has them, has no statement, or ``mode``
    is ``off``. ``backend``: a model to ask first (the parser and the offline rules are the fallbacks)."""
    if mode == "off" or not isinstance(data, Mapping):
        return data
    statement = data.get("statement")
    if not isinstance(statement, str) or data.get("prompt") or data.get("subject") or data.get("requested_rewrite"):
        return data
    meta = data.get("metadata")
    if meta is not None and not isinstance(meta, Mapping):
        return data  # build_record will say what is wrong with it
    from .anatomy import MAX_PARSE_CHARS, from_parts, no_fact, parse_statement, screen

    if len(statement) > MAX_PARSE_CHARS:
        return data  # build_record refuses it, naming the limit
    found = parse_statement(statement, backend)
    given = data.get("target_new")
    if found is not None and isinstance(given, str) and given.strip() and given.strip().lower() != found.target.lower():
        fact = screen(statement)  # the caller named the target: keep the parsed subject around it, if it is there
        found = from_parts(" ".join(fact.fact.split()).strip(" .!;:,"), found.subject, given, found.source,
                           confidence=found.confidence, flags=found.flags, reasons=found.reasons)
    meta = {**(meta or {}), **review_metadata(found, review_below, no_fact=found is None and no_fact(statement))}
    if found is None:
        return {**data, "metadata": meta}
    return {**data, "subject": found.subject, "prompt": found.prompt, "relation": found.relation,
            "target_new": given or found.target, "metadata": meta}


def with_anatomies(items: Sequence[Mapping[str, Any] | EditRecord], mode: str, backend: Any = None, *,
                   review_below: float = REVIEW_BELOW, labels: Sequence[str] | None = None) -> list[Any]:
    """:func:`with_anatomy` for a batch; a statement with no fact fails the batch with its position (or label)."""
    from .errors import EditError

    out = []
    for i, item in enumerate(items):
        try:
            out.append(with_anatomy(item, mode, backend, review_below=review_below))
        except EditError as exc:
            raise type(exc)(f"edit {labels[i] if labels else f'#{i}'}: {exc}") from None
    return out
