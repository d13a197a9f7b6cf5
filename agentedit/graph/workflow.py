"""The one facade over the LangGraph workflow: run it (the model answers) or prepare a request (the caller
sends it), sync or async. Every entry point goes through it via :class:`~agentedit.Editor`.

The graph never calls back into the Editor: everything it needs arrives in the
:class:`~agentedit.graph.context.WorkflowContext` the caller passes in.

The synchronous single pass (``plan`` chose no decomposition: nearly every request) calls the same node functions
directly, in graph order, merging their updates as the graph's channels do (``timings`` by its reducer, the rest
last-write-wins): LangGraph's scheduler costs about 5 ms a request on this 2-core machine, more than the retrieval
itself with the ONNX embedder. A question ``plan`` sends to decomposition runs through the compiled graph; a test
checks that both paths give the same state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..types import EditRecord, ScopeDecision

if TYPE_CHECKING:
    from ..backends.base import Completion
    from .context import WorkflowContext


@dataclass
class Prepared:
    """What the workflow decided for one request, before (or instead of) the final model call.

    ``request`` is what the model is to receive (messages, or the prompt text for ``style="text"``); with no
    edit in scope it is exactly the caller's input. ``completion`` is set instead when the decomposition
    branch already answered (its hops called the model). ``mode`` is ``in-context``, ``parametric`` (edits
    in the weights bear on the question), ``multi-hop`` or ``passthrough``.
    """

    namespace: str
    query: str = ""
    resolved_query: str = ""  # the follow-up with its pronouns/descriptions resolved ("" when nothing was)
    resolution: str = ""
    request: Any = None
    applied: list[EditRecord] = field(default_factory=list)
    in_weights: list[EditRecord] = field(default_factory=list)
    decisions: list[ScopeDecision] = field(default_factory=list)
    mode: str = "passthrough"
    timings: dict[str, float] = field(default_factory=dict)
    completion: "Completion | None" = None
    plan_reason: str = ""
    hops: list[dict[str, Any]] = field(default_factory=list)
    stop: str = ""
    model_calls: int = 0

    @property
    def applied_ids(self) -> list[str]:
        """Ids of the edits that answer this request: injected, settled in hops, or held in the weights."""
        return [r.id for r in (self.applied or self.in_weights)]

    @property
    def answered(self) -> bool:
        return self.completion is not None

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Prepared":
        return cls(namespace=state.get("namespace", ""), query=str(state.get("query", "")), request=state.get("request"),
                   resolved_query=str(state.get("resolved_query", "")), resolution=str(state.get("resolution", "")),
                   applied=list(state.get("applied", [])), in_weights=list(state.get("in_weights", [])),
                   decisions=list(state.get("decisions", [])), mode=str(state.get("mode", "passthrough")),
                   timings=dict(state.get("timings", {})),
                   completion=state.get("completion") if state.get("mode") == "multi-hop" else None,
                   plan_reason=str(state.get("plan_reason", "")), hops=list(state.get("hops", [])),
                   stop=str(state.get("stop", "")), model_calls=int(state.get("model_calls", 0)))


class Workflow:
    """The compiled graphs: with the final model call (:meth:`run`) and without it (:meth:`prepare`).

    Neither is checkpointed: run inside a user's graph (the LangGraph node), the workflow must not write
    the memory's objects into that graph's checkpointer.
    """

    def __init__(self) -> None:
        from . import build_graph

        self._run: Any = build_graph(generate=True).compile(checkpointer=False)
        self._prepare: Any = build_graph(generate=False).compile(checkpointer=False)

    @staticmethod
    def single_pass(state: dict[str, Any], context: "WorkflowContext", *, generate: bool) -> dict[str, Any] | None:
        """``plan -> retrieve -> scope -> compose [-> generate]`` as plain calls; None when ``plan`` chose the
        decomposition branch (the caller then runs the graph)."""
        from langgraph.runtime import Runtime

        from . import multihop, nodes
        from .state import merge_timings

        runtime = Runtime(context=context)
        out = dict(state)
        steps = (multihop.plan, nodes.retrieve, nodes.scope, nodes.compose) + ((nodes.generate,) if generate else ())
        for step in steps:
            update = step(out, runtime)
            timings = merge_timings(out.get("timings"), update.pop("timings", None))
            out.update(update)
            out["timings"] = timings
            if step is multihop.plan and out.get("decompose"):
                return None
        return out

    def run(self, state: dict[str, Any], context: "WorkflowContext") -> dict[str, Any]:
        """The final state, with ``completion`` (the model's answer)."""
        direct = self.single_pass(state, context, generate=True)
        return direct if direct is not None else self._run.invoke(state, context=context)

    async def arun(self, state: dict[str, Any], context: "WorkflowContext") -> dict[str, Any]:
        return await self._run.ainvoke(state, context=context)

    def prepare(self, state: dict[str, Any], context: "WorkflowContext") -> Prepared:
        """Everything up to the final model call (a decomposed question's hops still call the model)."""
        direct = self.single_pass(state, context, generate=False)
        return Prepared.from_state(direct if direct is not None else self._prepare.invoke(state, context=context))

    async def aprepare(self, state: dict[str, Any], context: "WorkflowContext") -> Prepared:
        return Prepared.from_state(await self._prepare.ainvoke(state, context=context))
