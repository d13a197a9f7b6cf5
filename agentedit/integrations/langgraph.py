"""A LangGraph node that answers with your chat model and the in-scope edits applied.

Drop it in where an agent graph calls its model::

    builder = StateGraph(MessagesState)
    builder.add_node("agent", edited_model_node(model.bind_tools(tools), editor))   # was: call_model
    builder.add_node("tools", ToolNode(tools))
    ...

Per call, the last user message goes through ``retrieve -> scope -> compose``; when edits bear on
it, the model receives an "updated facts" system message (merged with your own system message),
otherwise exactly the messages in the state. The facts are not written back into the state, so the
conversation history stays the user's. The ids of the applied edits are in the reply's
``response_metadata["agentedit_applied"]``. A run's namespace can be set per call with
``config={"configurable": {"agentedit_namespace": "alice"}}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..graph.prepare import ChatPreparer

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

    from ..editor import Editor

NAMESPACE_KEY = "agentedit_namespace"


def _with_facts(messages: Sequence["BaseMessage"], prepared: dict[str, Any]) -> list["BaseMessage"]:
    from langchain_core.messages import SystemMessage

    msgs = list(messages)
    if not prepared.get("applied"):
        return msgs
    if msgs and isinstance(msgs[0], SystemMessage):
        msgs = msgs[1:]  # compose merged it into the facts message
    return [SystemMessage(content=prepared["request"][0]["content"]), *msgs]


def _namespace(config: "RunnableConfig | None", default: str | None) -> str | None:
    return ((config or {}).get("configurable") or {}).get(NAMESPACE_KEY) or default


def inject_edits(messages: Sequence["BaseMessage"], editor: "Editor", *, namespace: str | None = None,
                 preparer: ChatPreparer | None = None) -> tuple[list["BaseMessage"], list[str]]:
    """The messages to send (facts added when edits apply) and the applied edit ids."""
    from langchain_core.messages import convert_to_openai_messages

    prepared = (preparer or ChatPreparer(editor)).run(convert_to_openai_messages(list(messages)), namespace=namespace)
    return _with_facts(messages, prepared), [r.id for r in prepared.get("applied", [])]


async def ainject_edits(messages: Sequence["BaseMessage"], editor: "Editor", *, namespace: str | None = None,
                        preparer: ChatPreparer | None = None) -> tuple[list["BaseMessage"], list[str]]:
    from langchain_core.messages import convert_to_openai_messages

    prepared = await (preparer or ChatPreparer(editor)).arun(convert_to_openai_messages(list(messages)), namespace=namespace)
    return _with_facts(messages, prepared), [r.id for r in prepared.get("applied", [])]


def edited_model_node(model: "Runnable", editor: "Editor", *, namespace: str | None = None,
                      messages_key: str = "messages") -> "RunnableLambda":
    """A graph node ``state -> {messages_key: [reply]}`` calling ``model`` with the in-scope edits applied."""
    from langchain_core.runnables import RunnableLambda

    preparer = ChatPreparer(editor)

    def _reply(reply: Any, applied: list[str]) -> dict[str, Any]:
        reply.response_metadata = {**(reply.response_metadata or {}), "agentedit_applied": applied}
        return {messages_key: [reply]}

    def node(state: dict[str, Any], config: "RunnableConfig") -> dict[str, Any]:
        msgs, applied = inject_edits(state[messages_key], editor, namespace=_namespace(config, namespace), preparer=preparer)
        return _reply(model.invoke(msgs, config), applied)

    async def anode(state: dict[str, Any], config: "RunnableConfig") -> dict[str, Any]:
        msgs, applied = await ainject_edits(state[messages_key], editor, namespace=_namespace(config, namespace),
                                            preparer=preparer)
        return _reply(await model.ainvoke(msgs, config), applied)

    return RunnableLambda(node, afunc=anode, name="edited_model")
