"""The LangGraph query workflow: ``plan -> retrieve -> scope -> compose -> generate``.

``plan`` can send a multi-hop question to the decomposition branch instead
(``chain -> propose -> hop -> propose ... -> finish``; see :mod:`agentedit.graph.multihop`);
whether it does is ``WorkflowContext.multihop``. :class:`~agentedit.graph.workflow.Workflow` is
the facade every caller uses (run and prepare, sync and async).

``build_graph()`` returns the *uncompiled* :class:`StateGraph` so callers (and
tests) can compile it with their own checkpointer or embed it as a subgraph.
Run it with ``graph.compile().invoke(state, context=WorkflowContext(...))``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import get_runtime

from . import multihop, nodes
from .context import WorkflowContext
from .state import QueryState


def _node(func: Callable[..., Any], afunc: Callable[..., Any] | None = None) -> RunnableLambda:
    """Adapt a ``(state, runtime)`` node (and its async twin) to a LangGraph node."""

    def sync(state: QueryState) -> Any:
        return func(state, get_runtime(WorkflowContext))

    async def run_async(state: QueryState) -> Any:
        runtime = get_runtime(WorkflowContext)
        if afunc is not None:
            return await afunc(state, runtime)
        return await asyncio.to_thread(func, state, runtime)

    return RunnableLambda(sync, afunc=run_async, name=func.__name__)


def _cond(func: Callable[..., str]) -> Callable[[QueryState], str]:
    """Adapt a ``(state, runtime)`` router to a LangGraph conditional edge."""

    def pick(state: QueryState) -> str:
        return func(state, get_runtime(WorkflowContext))

    return pick


def build_graph(*, generate: bool = True) -> StateGraph:
    """The uncompiled workflow. ``generate=False`` stops before the final model call, for callers that send
    the composed request themselves (the HTTP proxy, the LangGraph model node): the single pass ends after
    ``compose`` with ``request`` set; a decomposed question still runs its hops (they call the model) and
    ends at ``finish`` with ``completion`` set."""
    g = StateGraph(QueryState, context_schema=WorkflowContext)
    g.add_node("plan", _node(multihop.plan))
    g.add_node("retrieve", _node(nodes.retrieve))
    g.add_node("scope", _node(nodes.scope, nodes.ascope))
    g.add_node("compose", _node(nodes.compose))
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", _cond(lambda s, r: "chain" if s.get("decompose") else "retrieve"), ["chain", "retrieve"])
    g.add_edge("retrieve", "scope")
    g.add_edge("scope", "compose")
    if generate:
        g.add_node("generate", _node(nodes.generate, nodes.agenerate))
        g.add_edge("compose", "generate")
        g.add_edge("generate", END)
    else:
        g.add_edge("compose", END)
    # The decomposition branch: settled edit chains, then sub-questions until a final answer.
    g.add_node("chain", _node(multihop.chain))
    g.add_node("propose", _node(multihop.propose))
    g.add_node("hop", _node(multihop.hop))
    g.add_node("fallback", _node(multihop.fallback))
    g.add_node("finish", _node(multihop.finish))
    g.add_conditional_edges("chain", _cond(multihop.after_chain), ["propose", "finish"])
    g.add_conditional_edges("propose", _cond(multihop.after_propose), ["hop", "finish", "fallback"])
    g.add_conditional_edges("hop", _cond(multihop.after_hop), ["propose", "finish"])
    g.add_edge("fallback", "retrieve")
    g.add_edge("finish", END)
    return g


from .workflow import Prepared, Workflow  # noqa: E402  (the facade compiles build_graph)

__all__ = ["Prepared", "QueryState", "Workflow", "WorkflowContext", "build_graph"]
