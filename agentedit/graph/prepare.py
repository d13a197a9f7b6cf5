"""The workflow stopped before ``generate``: which edits apply to a chat, and the request the model would get.

For callers that send the request themselves: the HTTP proxy (which streams it and passes the
client's tools along) and the LangGraph integration (which hands it to the user's own chat model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from . import build_graph

if TYPE_CHECKING:
    from ..editor import Editor


class ChatPreparer:
    """Runs ``retrieve -> scope -> compose`` for chat messages with an Editor's memory and scope checker.

    :meth:`run` / :meth:`arun` return the workflow state: ``request`` (the messages to send), ``applied``
    (edit records), ``decisions``, ``route`` (``in-context`` or ``passthrough``) and ``timings`` (ms).
    A namespace without edits simply applies none.
    """

    def __init__(self, editor: "Editor") -> None:
        self.editor = editor
        # Never checkpointed: run inside a user's graph (the LangGraph node), it must not write the
        # memory's objects into that graph's checkpointer.
        self._graph: Any = build_graph(generate=False).compile(checkpointer=False)  # Any: build_graph's StateGraph is unparameterised

    @staticmethod
    def _state(messages: Sequence[dict[str, Any]], namespace: str) -> dict[str, Any]:
        return {"namespace": namespace, "style": "chat", "messages": [dict(m) for m in messages], "params": {}}

    def run(self, messages: Sequence[dict[str, Any]], *, namespace: str | None = None) -> dict[str, Any]:
        state = self._state(messages, namespace or self.editor.namespace)
        return self._graph.invoke(state, context=self.editor._context())

    async def arun(self, messages: Sequence[dict[str, Any]], *, namespace: str | None = None) -> dict[str, Any]:
        state = self._state(messages, namespace or self.editor.namespace)
        return await self._graph.ainvoke(state, context=self.editor._context())
