"""The workflow's nodes: ``retrieve -> scope -> compose -> generate``.

Each is a near-pure function ``(state, runtime) -> partial state``; everything
stateful (memory, backend, checker) arrives in ``runtime.context``. Every node
reports its wall time in ``timings`` (milliseconds).
"""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from ..conversation import Resolution, resolve
from ..injection import compose_chat, compose_prefix, last_user_text
from ..prompts import render
from ..scope.conflict import newest_wins
from .context import WorkflowContext
from .state import QueryState


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def query_text(state: QueryState) -> str:
    if state.get("style", "chat") == "chat":
        return last_user_text(state.get("messages", []))
    return state.get("prompt", "")


def resolution(state: QueryState, ctx: WorkflowContext) -> Resolution:
    """The chat's last user message with pronouns and descriptions resolved against the earlier turns (see
    :mod:`agentedit.conversation`); the subjects of edits retrieved for an earlier turn are its first candidates."""
    ns = state.get("namespace", "default")

    def subjects_of(text: str) -> list[str]:
        return [c.record.subject for c in ctx.memory.query(text, namespace=ns, k=ctx.k) if c.record.subject]

    return resolve(state.get("messages", []), subjects_of=subjects_of, max_turns=ctx.window_turns)


def retrieve(state: QueryState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    t = time.perf_counter()
    ctx = runtime.context
    out: dict[str, Any] = {}
    if state.get("style", "chat") == "chat":
        res = resolution(state, ctx)
        query = res.resolved
        if res.changed:
            out = {"resolved_query": res.resolved, "resolution": res.describe()}
    else:
        query = query_text(state)
    cands = ctx.memory.query(query, namespace=state.get("namespace", "default"), k=ctx.k) if query.strip() else []
    cands = ctx.routes.injectable(cands)  # weight edits are in the model already
    return {**out, "query": query, "candidates": cands, "timings": {"retrieve": _ms(t)}}


def _scope_result(state: QueryState, decisions: list, start: float, ctx: WorkflowContext) -> dict[str, Any]:
    namespace = state.get("namespace", "default")
    decisions = newest_wins(decisions, state.get("candidates", []), ctx.matcher,
                            lambda ids: ctx.memory.kept_apart(namespace, ids))
    if state.get("resolution"):  # say why a follow-up's edit applied (or not): the query the checker saw
        for d in decisions:
            d.reason = f"{d.reason}; query resolved {state['resolution']}"
    by_id = {c.record.id: c.record for c in state.get("candidates", [])}
    applied = [by_id[d.edit_id] for d in decisions if d.in_scope and d.edit_id in by_id]
    return {"decisions": decisions, "applied": applied, "timings": {"scope": _ms(start)}}


def scope(state: QueryState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    t = time.perf_counter()
    cands = state.get("candidates", [])
    decisions = runtime.context.checker.check(state.get("query", ""), cands) if cands else []
    return _scope_result(state, decisions, t, runtime.context)


async def ascope(state: QueryState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    t = time.perf_counter()
    cands = state.get("candidates", [])
    decisions = await runtime.context.checker.acheck(state.get("query", ""), cands) if cands else []
    return _scope_result(state, decisions, t, runtime.context)


def compose(state: QueryState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    """Build the request; with no in-scope edit it is exactly what the unedited model gets."""
    t = time.perf_counter()
    ctx = runtime.context
    applied = state.get("applied", [])
    style = state.get("style", "chat")
    if style == "text":
        request: Any = compose_prefix(state.get("prompt", ""), applied)
    else:
        if style == "complete":
            messages = [{"role": "user", "content": render("complete_user", prompt=state.get("prompt", ""))}]
        else:
            messages = list(state.get("messages", []))
        # IKE retrieves its demonstrations by the new facts (as in the paper and EasyEdit), not by the question: every
        # question about the same edit gets the same demonstrations, and so the same request prefix a server can reuse
        demos = (ctx.demos.select(" ".join(e.statement for e in applied), ctx.n_demos)
                 if (applied and ctx.injection == "ike" and ctx.demos) else ())
        request = compose_chat(messages, applied, mode=ctx.injection, demos=demos)
    in_weights = [] if applied else ctx.routes.in_weights(state.get("query", ""), state.get("namespace", "default"))
    mode = "in-context" if applied else "parametric" if in_weights else "passthrough"
    return {"request": request, "mode": mode, "in_weights": in_weights, "timings": {"compose": _ms(t)}}


def generate(state: QueryState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    t = time.perf_counter()
    backend = runtime.context.backend
    params = state.get("params", {}) or {}
    if state.get("style", "chat") == "text":
        completion = backend.complete(state["request"], **params)
    else:
        completion = backend.chat(state["request"], **params)
    return {"completion": completion, "timings": {"generate": _ms(t)}}


async def agenerate(state: QueryState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    t = time.perf_counter()
    backend = runtime.context.backend
    params = state.get("params", {}) or {}
    if state.get("style", "chat") == "text":
        completion = await backend.acomplete(state["request"], **params)  # type: ignore[attr-defined]
    else:
        completion = await backend.achat(state["request"], **params)
    return {"completion": completion, "timings": {"generate": _ms(t)}}
