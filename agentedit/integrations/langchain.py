"""LangChain tools over an :class:`~agentedit.Editor`: record an edit, list edits, forget one, ask the edited model.

>>> tools = edit_tools(Editor("openai/gpt-4o-mini"), namespace="alice")   # doctest: +SKIP
>>> agent = create_react_agent(model, tools)                                 # doctest: +SKIP

Tool results are JSON strings; a failed call (an empty fact, an unknown id) returns the error text
to the agent instead of raising, so it can correct itself. Descriptions live in ``prompts/tool_*.j2``.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any, Callable

from ..errors import AgentEditError
from ..prompts import render

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

    from ..editor import Editor
    from ..types import EditRecord


def _summary(rec: "EditRecord") -> dict[str, Any]:
    return {"id": rec.id, "statement": rec.statement, "subject": rec.subject, "status": rec.status}


def edit_tools(editor: "Editor", *, namespace: str | None = None) -> list["BaseTool"]:
    """The four tools, bound to ``editor`` and ``namespace`` (default: the editor's)."""
    from langchain_core.tools import StructuredTool, ToolException

    ns = namespace or editor.namespace

    def guarded(func: Callable[..., Any]) -> Callable[..., str]:
        @functools.wraps(func)  # keeps the signature LangChain builds the argument schema from
        def call(*args: Any, **kwargs: Any) -> str:
            try:
                return json.dumps(func(*args, **kwargs), ensure_ascii=False)
            except AgentEditError as exc:
                raise ToolException(str(exc)) from None

        return call

    def record_edit(statement: str, subject: str | None = None) -> dict[str, Any]:
        return _summary(editor.edit(statement=statement, subject=subject, namespace=ns, actor="agent"))

    def list_edits(subject: str | None = None, text: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        return [_summary(r) for r in editor.edits(ns, subject=subject, text=text, limit=max(1, min(limit, 200)))]

    def forget_edit(edit_id: str) -> dict[str, Any]:
        return _summary(editor.forget(edit_id, namespace=ns, actor="agent"))

    def ask_edited(question: str) -> dict[str, Any]:
        ans = editor.ask(question, namespace=ns)
        return {"answer": ans.text, "applied": ans.applied}

    return [StructuredTool.from_function(func=guarded(f), name=f.__name__, description=render(f"tool_{f.__name__}"),
                                         handle_tool_error=True)
            for f in (record_edit, list_edits, forget_edit, ask_edited)]
