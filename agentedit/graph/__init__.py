"""The LangGraph query workflow: ``retrieve -> scope -> compose -> generate``.

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

from . import nodes
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


def build_graph(*, generate: bool = True) -> StateGraph:
    """The uncompiled workflow; ``generate=False`` ends after ``compose``, for callers that send the
    composed request themselves (the HTTP proxy, the LangGraph model node)."""
    g = StateGraph(QueryState, context_schema=WorkflowContext)
    g.add_node("retrieve", _node(nodes.retrieve))
    g.add_node("scope", _node(nodes.scope, nodes.ascope))
    g.add_node("compose", _node(nodes.compose))
    g.add_edge(START, "retrieve")
    g.add_edge("retrieve", "scope")
    g.add_edge("scope", "compose")
    if not generate:
        g.add_edge("compose", END)
        return g
    g.add_node("generate", _node(nodes.generate, nodes.agenerate))
    g.add_edge("compose", "generate")
    g.add_edge("generate", END)
    return g


__all__ = ["QueryState", "WorkflowContext", "build_graph"]
