"""The question side of the Editor: the workflow's input state, and the :class:`~agentedit.types.Answer` made
from its final state."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from . import wire
from .errors import ConfigError
from .types import Answer

if TYPE_CHECKING:
    from .editor import Editor
    from .graph import WorkflowContext


def workflow_context(ed: "Editor", *, with_backend: bool = True, multihop: str | None = None) -> "WorkflowContext":
    """What the workflow's nodes get from an Editor; the weight route re-applies the store's weight edits first."""
    from .graph import WorkflowContext

    s = ed.settings
    if ed._local_weights:
        ed.weights.load()
    if s.injection.mode == "ike" and ed._demos is None:
        from .injection import DemoPool
        from .provision import cache_dir

        ed._demos = DemoPool.from_counterfact(s.injection.demo_pool, ed.memory.embedder,  # type: ignore[arg-type]
                                              cache_dir=cache_dir() / "demos")
    return WorkflowContext(memory=ed.memory, backend=ed.backend if with_backend else None, checker=ed.checker,
                           routes=ed.routes, k=s.retrieval.k, injection=s.injection.mode, demos=ed._demos,
                           n_demos=s.injection.n_demos, multihop=multihop or s.multihop.mode,
                           hop_limit=s.multihop.hop_limit, resolve=s.multihop.resolve,
                           hop_max_tokens=s.multihop.hop_max_tokens, follow_edits=s.multihop.follow_edits,
                           matcher=ed.matcher)


def initial_state(*, messages: Sequence[Mapping[str, Any]] | None, prompt: str | None, namespace: str, style: str,
                  params: Mapping[str, Any]) -> dict[str, Any]:
    """Validated workflow input: ``messages`` for ``style="chat"``, else ``prompt``."""
    if style not in ("chat", "complete", "text"):
        raise ConfigError(f"unknown style {style!r}; use 'chat', 'complete' or 'text'")
    state: dict[str, Any] = {"namespace": namespace, "style": style,
                             "params": {k: v for k, v in params.items() if v is not None}}
    if style == "chat":
        if not messages:
            raise ConfigError("no messages to send: give at least one user message")
        for i, m in enumerate(messages):
            if not isinstance(m, Mapping) or "role" not in m:
                raise ConfigError(f"message #{i} must be an object with 'role' and 'content'")
        state["messages"] = [dict(m) for m in messages]
    else:
        if not prompt or not prompt.strip():
            raise ConfigError("the prompt is empty")
        state["prompt"] = prompt
    return state


def answer_from_state(out: Mapping[str, Any], started: float, *, model: str) -> Answer:
    """The :class:`Answer` of a finished run (``started``: its ``time.perf_counter()`` start)."""
    timings = dict(out.get("timings", {}))
    timings["total"] = round((time.perf_counter() - started) * 1000.0, 3)
    comp = out["completion"]
    req = out.get("request")
    mode = str(out.get("mode", "passthrough"))
    applied = [r.id for r in (out.get("applied") or out.get("in_weights") or [])]
    decomposed = mode == "multi-hop"
    return Answer(text=comp.text, applied=applied, mode=mode, timings=timings, decisions=list(out.get("decisions", [])),
                  messages=[] if decomposed else req if isinstance(req, list) else [{"role": "prompt", "content": req}],
                  model=comp.model or model, usage=comp.usage, decomposed=decomposed,
                  plan_reason=str(out.get("plan_reason", "")), hops=list(out.get("hops", [])), stop=str(out.get("stop", "")),
                  model_calls=int(out.get("model_calls", 0)) if decomposed else 1,
                  resolved_query=str(out.get("resolved_query", "")), resolution=str(out.get("resolution", "")))


def openai_response(ans: Answer) -> dict[str, Any]:
    """Render an :class:`Answer` as an OpenAI ``chat.completion`` object (see :mod:`agentedit.wire`)."""
    return wire.completion(text=ans.text, model=ans.model, usage=ans.usage,
                           info=wire.info_block(applied=ans.applied, mode=ans.mode, timings=ans.timings,
                                                resolved_query=ans.resolved_query, resolution=ans.resolution))
