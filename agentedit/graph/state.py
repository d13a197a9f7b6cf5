"""The state that flows through the query workflow."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

from ..backends.base import Completion
from ..types import Candidate, EditRecord, ScopeDecision

Style = Literal["chat", "complete", "text"]


def merge_timings(left: dict[str, float] | None, right: dict[str, float] | None) -> dict[str, float]:
    return {**(left or {}), **(right or {})}


class QueryState(TypedDict, total=False):
    """Inputs: ``messages`` (chat) or ``prompt`` (complete/text), ``namespace``, ``style``, ``params``.

    ``style``: ``chat`` sends the messages as given; ``complete`` poses a sentence
    prefix to a chat model (``prompts/complete_user.j2``); ``text`` calls the
    completion endpoint with the facts block as a text prefix.
    """

    messages: list[dict[str, Any]]
    prompt: str
    namespace: str
    style: Style
    params: dict[str, Any]
    query: str  # what retrieval and the scope check see (a chat's last user message, references resolved)
    resolved_query: str  # set only when references were resolved: the rewritten question
    resolution: str  # what was resolved ("'she' -> 'Marie Curie' (name)")
    candidates: list[Candidate]
    decisions: list[ScopeDecision]
    applied: list[EditRecord]
    in_weights: list[EditRecord]
    request: Any
    completion: Completion
    mode: str
    timings: Annotated[dict[str, float], merge_timings]
    # decomposition branch (agentedit.graph.multihop)
    decompose: bool
    plan_reason: str
    hops: list[dict[str, Any]]
    next_step: dict[str, str] | None
    final_answer: str
    stop: str
    last_output: str
    model_calls: int
