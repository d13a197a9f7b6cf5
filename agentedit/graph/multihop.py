"""The decomposition branch of the workflow: multi-hop questions answered one sub-question at a time.

MeLLo-style, with the scope check in the loop:

1. ``plan`` decides per question whether to decompose (``WorkflowContext.multihop``:
   ``never``, ``always`` or ``auto``). In ``auto`` a question is decomposed only when it is a
   question (chat style or ending in ``?``), no stored edit is in scope for it as a whole, and it
   chains relations ("the capital of the country where X's founder was born"): see
   :func:`chain_depth`. Everything else takes the single pass (``retrieve -> scope -> compose
   -> generate``), so simple questions pay nothing.
2. ``propose`` asks the model for the next sub-question and a tentative answer, or the final
   answer (``prompts/multihop_system.j2`` and ``multihop_user.j2``; their demonstrations use
   invented entities, none from an evaluation set).
3. ``hop`` retrieves edits for the sub-question and runs the scope checker on it. With
   ``resolve="edit"`` (ours) an in-scope edit that contradicts the tentative answer replaces it;
   with ``resolve="model"`` (the MeLLo protocol) the fact is shown to the model, which writes the
   answer itself (one more call).
4. The loop stops at a final answer, at ``hop_limit`` sub-questions, when the model repeats a
   sub-question, or when its output cannot be parsed; ``finish`` then produces the answer (the
   model's final answer, else the last hop's answer). Malformed output before any hop falls back
   to the single pass.

Every hop (sub-question, tentative answer, retrieved and accepted edits, answer) is recorded in
``state["hops"]`` and reaches :class:`~agentedit.types.Answer`.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from langgraph.runtime import Runtime

from ..backends.base import Completion
from ..injection import last_user_text
from ..prompts import neutralise_control_tokens, quote, render
from ..scope.text import WORD_MATCH, RelationMatcher, find_subject, normalise, subject_names
from ..types import EditRecord
from .context import WorkflowContext
from .state import QueryState

MultihopMode = Literal["never", "always", "auto"]
Resolve = Literal["edit", "model"]

_CHAIN = re.compile(
    r"\b(?:of|in|for|by|from|at)\s+(?:the|a|an)\b"  # "of the country", "in the city"
    r"|'s\b|\u2019s\b"                                # possessives: "X's founder"
    r"|\b(?:where|which|whose|that|who|whom)\b",      # relative clauses
    re.IGNORECASE)
_WH_START = re.compile(r"^\s*(?:where|which|whose|who|whom|that)\b", re.IGNORECASE)
_LINE = re.compile(r"^\s*(sub-?question|answer|final answer|known fact)\s*[:\-]\s*(.*)$", re.IGNORECASE)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def chain_depth(question: str) -> int:
    """How many relation links a question chains (0 for "What is the capital of France?")."""
    text = _WH_START.sub("", question)  # the question word itself is no link
    return len(_CHAIN.findall(text))


def parse_step(text: str) -> dict[str, str] | None:
    """The first step in a model reply: ``{"final": ...}`` or ``{"sub_question": ..., "tentative": ...}``.

    Returns None when the reply has neither a final answer nor a sub-question.
    A sub-question without an answer line gets an empty tentative answer.
    """
    sub: str | None = None
    for raw in text.splitlines():
        m = _LINE.match(raw.strip().strip("*").strip())
        if not m:
            continue
        kind, value = m.group(1).lower().replace("-", ""), m.group(2).strip().strip("*").strip()
        if kind == "final answer" and sub is None:
            return {"final": value} if value else None
        if kind == "subquestion":
            if sub is not None:  # a second sub-question before any answer: keep the first
                return {"sub_question": sub, "tentative": ""}
            if not value:
                return None
            sub = value
        elif kind == "answer" and sub is not None:
            return {"sub_question": sub, "tentative": value}
        elif kind == "answer" and sub is None and value:
            continue
    return {"sub_question": sub, "tentative": ""} if sub else None


def parse_answer(text: str) -> str:
    """The answer line of a reply to a resolution prompt (the first "Answer:" value, else the last line)."""
    for raw in text.splitlines():
        m = _LINE.match(raw.strip())
        if m and m.group(1).lower() in ("answer", "final answer") and m.group(2).strip():
            return m.group(2).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _question(state: QueryState) -> str:
    if state.get("style", "chat") == "chat":
        return last_user_text(state.get("messages", []))
    return state.get("prompt", "")


def follow_edits(question: str, ctx: WorkflowContext, namespace: str) -> list[dict[str, Any]]:
    """Walk the chain of stored edits the question asks about, without the model.

    Start from an edit whose subject the question names; then, while the current answer is the
    subject of another stored edit whose relation the question also asks about, follow it. Each
    step becomes a settled hop (the edit's fact and answer); the model then continues from the
    end of the chain. Relations are compared word by word (:class:`RelationMatcher`), so only
    edits about what the question asks are followed.
    """
    match = RelationMatcher(ctx.memory.embedder, question)
    cands = [c.record for c in ctx.routes.injectable(ctx.memory.query(question, namespace=namespace, k=max(ctx.k, 8)))]
    starts = [(match.score(r), r) for r in cands if r.target_new and find_subject(question, subject_names(r))]
    starts = [(o, r) for o, r in starts if o >= WORD_MATCH]
    if not starts:
        return []

    # Among edits the question names, prefer one whose answer is itself the subject of another edit
    # (it starts a chain: the innermost link), then the best relation match.
    def extends(rec: EditRecord) -> bool:
        return any(r.id != rec.id for r in ctx.memory.list(namespace=namespace, subject=rec.target_new or ""))

    _, current = max(starts, key=lambda p: (extends(p[1]), p[0]))
    hops: list[dict[str, Any]] = []
    used: set[str] = set()
    while current is not None and len(hops) < ctx.hop_limit:
        used.add(current.id)
        question_form = current.metadata.get("question") if isinstance(current.metadata, dict) else None
        asked = question_form or f"{(current.prompt or current.statement).rstrip(' .')} what?"
        hops.append({"sub_question": neutralise_control_tokens(asked), "tentative": "", "retrieved": [current.id],
                     "accepted": current.id, "fact": quote(current.statement),
                     "answer": current.target_new and neutralise_control_tokens(current.target_new), "contradicted": True,
                     "via": "edit chain"})
        nxt = [(match.score(r), r) for r in ctx.memory.list(namespace=namespace, subject=current.target_new or "")
               if ctx.routes.injects(r) and r.id not in used and r.target_new]
        nxt = [(o, r) for o, r in nxt if o >= WORD_MATCH]
        current = max(nxt, key=lambda p: p[0])[1] if nxt else None
    return hops


# -- nodes ----------------------------------------------------------------------------------------------
def plan(state: QueryState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    """Decide single pass or decomposition (see the module docstring)."""
    t = time.perf_counter()
    ctx = runtime.context
    question = _question(state)
    mode = ctx.multihop
    if mode == "never" or not question.strip():
        return {"decompose": False, "plan_reason": "decomposition off", "timings": {"plan": _ms(t)}}
    if mode == "always":
        return {"decompose": True, "plan_reason": "decomposition forced", "timings": {"plan": _ms(t)}}
    if state.get("style", "chat") == "complete" or (state.get("style") == "text" and not question.rstrip().endswith("?")):
        return {"decompose": False, "plan_reason": "not a question", "timings": {"plan": _ms(t)}}
    depth = chain_depth(question)
    if depth < 2:
        return {"decompose": False, "plan_reason": f"chain depth {depth} < 2", "timings": {"plan": _ms(t)}}
    cands = ctx.routes.injectable(ctx.memory.query(question, namespace=state.get("namespace", "default"), k=ctx.k))
    decisions = ctx.checker.check(question, cands) if cands else []
    direct = [d.edit_id for d in decisions if d.in_scope]
    if direct:
        return {"decompose": False, "plan_reason": f"edit {direct[0]} answers the question directly",
                "timings": {"plan": _ms(t)}}
    return {"decompose": True, "plan_reason": f"chain depth {depth}, no edit in scope for the whole question",
            "timings": {"plan": _ms(t)}}


def chain(state: QueryState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    """Settle the hops that stored edits answer on their own (:func:`follow_edits`), before asking the model."""
    t = time.perf_counter()
    ctx = runtime.context
    if not ctx.follow_edits:
        return {"hops": [], "timings": {"chain": _ms(t)}}
    hops = follow_edits(_question(state), ctx, state.get("namespace", "default"))
    by_id = {}
    for h in hops:
        rec = ctx.memory.get(h["accepted"], namespace=state.get("namespace", "default"))
        by_id[rec.id] = rec
    return {"hops": hops, "applied": list(by_id.values()), "timings": {"chain": _ms(t)}}


def _call(ctx: WorkflowContext, state: QueryState, user: str) -> Completion:
    params = dict(state.get("params", {}) or {})
    params["max_tokens"] = max(int(params.get("max_tokens") or 0), ctx.hop_max_tokens)
    params["stop"] = ["\nQuestion:", "\n\n"]
    messages = [{"role": "system", "content": render("multihop_system")}, {"role": "user", "content": user}]
    return ctx.backend.chat(messages, **params)


def propose(state: QueryState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    """Ask the model for the next sub-question (and tentative answer) or the final answer."""
    t = time.perf_counter()
    ctx = runtime.context
    hops = list(state.get("hops", []))
    user = render("multihop_user", question=_question(state), steps=hops, pending=None)
    completion = _call(ctx, state, user)
    step = parse_step(completion.text)
    calls = state.get("model_calls", 0) + 1
    timings = {"propose": round(state.get("timings", {}).get("propose", 0.0) + _ms(t), 3)}
    if step is None:
        return {"next_step": None, "stop": "malformed", "last_output": completion.text, "model_calls": calls, "timings": timings}
    if "final" in step:
        return {"next_step": None, "final_answer": step["final"], "stop": "final answer", "model_calls": calls,
                "timings": timings}
    if any(normalise(h["sub_question"]) == normalise(step["sub_question"]) for h in hops):
        return {"next_step": None, "stop": "repeated sub-question", "model_calls": calls, "timings": timings}
    return {"next_step": step, "model_calls": calls, "timings": timings}


def hop(state: QueryState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    """Retrieve and scope-check edits for the sub-question; an in-scope edit settles its answer."""
    t = time.perf_counter()
    ctx = runtime.context
    step = dict(state["next_step"])
    sub_q, tentative = step["sub_question"], step.get("tentative", "")
    cands = ctx.routes.injectable(ctx.memory.query(sub_q, namespace=state.get("namespace", "default"), k=ctx.k))
    decisions = ctx.checker.check(sub_q, cands) if cands else []
    by_id = {c.record.id: c.record for c in cands}
    accepted = [by_id[d.edit_id] for d in decisions if d.in_scope and d.edit_id in by_id]
    record: dict[str, Any] = {"sub_question": sub_q, "tentative": tentative, "retrieved": [c.record.id for c in cands],
                              "accepted": accepted[0].id if accepted else None, "fact": None, "answer": tentative,
                              "contradicted": False}
    calls = state.get("model_calls", 0)
    if accepted:
        edit = accepted[0]
        record["fact"] = quote(edit.statement)
        if ctx.resolve == "model":
            user = render("multihop_user", question=_question(state), steps=state.get("hops", []),
                          pending={"sub_question": sub_q, "tentative": tentative, "fact": record["fact"]})
            record["answer"] = parse_answer(_call(ctx, state, user).text) or tentative
            calls += 1
        elif edit.target_new and normalise(edit.target_new) != normalise(tentative):
            record["answer"] = neutralise_control_tokens(edit.target_new)  # edit text: shown to the model next
        record["contradicted"] = normalise(record["answer"]) != normalise(tentative)
    hops = [*state.get("hops", []), record]
    applied = list(state.get("applied", []))
    if accepted and all(a.id != accepted[0].id for a in applied):
        applied.append(accepted[0])
    timings = {"hops": round(state.get("timings", {}).get("hops", 0.0) + _ms(t), 3)}
    return {"hops": hops, "applied": applied, "next_step": None, "model_calls": calls, "timings": timings}


def after_propose(state: QueryState, runtime: Runtime[WorkflowContext]) -> str:
    if state.get("next_step"):
        return "hop"
    if state.get("stop") == "malformed" and not state.get("hops"):
        return "fallback"
    return "finish"


def after_chain(state: QueryState, runtime: Runtime[WorkflowContext]) -> str:
    return after_hop(state, runtime)


def after_hop(state: QueryState, runtime: Runtime[WorkflowContext]) -> str:
    if len(state.get("hops", [])) >= runtime.context.hop_limit:
        return "finish"
    return "propose"


def fallback(state: QueryState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    """Malformed decomposition before any hop: answer in a single pass instead."""
    return {"decompose": False, "plan_reason": f"{state.get('plan_reason', '')}; model output not a sub-question, single pass"}


def finish(state: QueryState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    """The answer: the model's final answer, else the last hop's answer."""
    hops = state.get("hops", [])
    stop = state.get("stop") or ("hop limit" if len(hops) >= runtime.context.hop_limit else "")
    answer = state.get("final_answer")
    if not answer:
        answer = hops[-1]["answer"] if hops else ""
    elif hops and hops[-1]["contradicted"] and normalise(answer) == normalise(hops[-1]["tentative"]):
        answer = hops[-1]["answer"]  # the model repeated the answer an edit had just replaced
    completion = Completion(text=answer, finish_reason="stop", model=getattr(runtime.context.backend, "name", ""), usage={})
    return {"completion": completion, "stop": stop or "final answer", "mode": "multi-hop", "final_answer": answer}
