"""Public data types: :class:`EditRecord`, :class:`ConflictMatch`, :class:`Conflict`, :class:`Candidate`,
:class:`ScopeDecision` and :class:`Answer`."""

from __future__ import annotations

import datetime as _dt
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

EditStatus = Literal["active", "superseded", "retracted"]
Mode = Literal["in-context", "passthrough", "parametric", "multi-hop"]  # how an answer was produced


def utc_now() -> str:
    """Current UTC time as an ISO-8601 string with microseconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def new_edit_id() -> str:
    """A fresh, URL-safe edit id."""
    return "e_" + uuid.uuid4().hex[:16]


@dataclass
class EditRecord:
    """One edit: a fact the model should now hold.

    Two shapes are accepted. The benchmark shape gives ``prompt`` (a sentence
    prefix or a question naming ``subject``) and ``target_new``; the statement
    shape gives a plain ``statement`` ("Alice's manager is Bob."). Either way the
    record ends up with a ``statement`` used for retrieval and injection.
    ``relation`` is the prompt with the subject replaced by ``{}``; together with
    ``subject`` and ``namespace`` it is the key under which a newer edit
    supersedes an older one. ``version`` starts at 1 and grows by one with every change the store makes
    to the record (update, supersede, retract); a writer can make its change conditional on it.
    """

    id: str
    namespace: str
    statement: str
    subject: str | None = None
    prompt: str | None = None
    relation: str | None = None
    target_new: str | None = None
    target_old: str | None = None
    created_at: str = field(default_factory=utc_now)
    valid_from: str | None = None
    valid_until: str | None = None
    status: EditStatus = "active"
    supersedes: str | None = None
    superseded_by: str | None = None
    method: str = "in-context"
    actor: str = "user"
    metadata: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    #: what the write that stored this record found: possible conflicts with other active edits (ids, scores,
    #: reasons; see :class:`ConflictMatch`). Set on the record a write returns, never stored with it.
    conflicts: list[dict[str, Any]] = field(default_factory=list, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not self.conflicts:
            out.pop("conflicts")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EditRecord":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def conflict_key(self) -> tuple[str, str, str] | None:
        """(namespace, subject, relation) normalised, or None when either is unknown."""
        if not self.subject or not self.relation:
            return None
        return (self.namespace, " ".join(self.subject.lower().split()), " ".join(self.relation.lower().split()))


@dataclass(frozen=True)
class ConflictMatch:
    """Another active edit a new edit matches: ``kind`` ``supersede`` (the same fact: it replaces that edit) or
    ``conflict`` (possibly the same fact: both stay active and the pair is listed for a person to resolve)."""

    edit_id: str
    score: float
    kind: Literal["supersede", "conflict"]
    reason: str
    # the matched edit's relation template when both edits name the subject as their subject (a supersession): the
    # correction answers the questions it answered, and those of the edits it corrected (``metadata["also_asks"]``)
    relation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Conflict:
    """A possible conflict the store keeps until it is resolved: ``edit_id`` (the newer edit) may state the same
    fact as ``other_id``. ``status`` ``open`` or ``resolved``; ``resolution`` ``kept:<id>`` or ``kept both``."""

    id: str
    namespace: str
    edit_id: str
    other_id: str
    score: float
    reason: str
    status: Literal["open", "resolved"] = "open"
    created_at: str = field(default_factory=utc_now)
    resolved_at: str | None = None
    resolution: str | None = None
    actor: str = "user"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Candidate:
    """A retrieved edit and its cosine similarity to the query (higher is closer)."""

    record: EditRecord
    similarity: float


@dataclass
class ScopeDecision:
    """What a scope checker decided about one retrieved edit for one query."""

    edit_id: str
    similarity: float
    in_scope: bool
    checker: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """The model's answer together with how it was produced."""

    text: str
    applied: list[str] = field(default_factory=list)
    mode: Mode = "passthrough"
    timings: dict[str, float] = field(default_factory=dict)
    decisions: list[ScopeDecision] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    decomposed: bool = False
    plan_reason: str = ""
    hops: list[dict[str, Any]] = field(default_factory=list)
    stop: str = ""
    model_calls: int = 1
    resolved_query: str = ""  # a follow-up's question with its pronouns/descriptions resolved ("" when nothing was)
    resolution: str = ""  # what was resolved: "'she' -> 'Marie Curie' (name)"

    @property
    def route(self) -> str:
        """The name of :attr:`mode` before 0.2."""
        return self.mode

    @property
    def route_reason(self) -> str:
        """The name of :attr:`plan_reason` before 0.2."""
        return self.plan_reason

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["decisions"] = [d.to_dict() for d in self.decisions]
        return out
