"""A LangGraph node that answers with your chat model and the in-scope edits applied.

Drop it in where an agent graph calls its model::

    builder = StateGraph(MessagesState)
    builder.add_node("agent", edited_model_node(model.bind_tools(tools), editor))   # was: call_model
    builder.add_node("tools", ToolNode(tools))
    ...

Per call, the conversation goes through ``Editor.prepare_chat`` (the workflow ``Editor.chat`` runs, stopped
before the final model call); when edits bear on it, the model receives an "updated facts" system message
(merged with your own system message), otherwise exactly the messages in the state. A multi-hop question
the workflow decomposed comes back answered (its hops called the Editor's model) as an ``AIMessage``. The facts are not written back into the state, so the
conversation history stays the user's. The ids of the applied edits are in the reply's
``response_metadata["agentedit_applied"]``. A run's namespace can be set per call with
``config={"configurable": {"agentedit_namespace": "alice"}}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

    from ..editor import Editor
    from ..graph import Prepared

NAMESPACE_KEY = "agentedit_namespace"


def _with_facts(messages: Sequence["BaseMessage"], prepared: "Prepared") -> list["BaseMessage"]:
    from langchain_core.messages import SystemMessage

    msgs = list(messages)
    if not prepared.applied or prepared.answered:
        return msgs
    if msgs and isinstance(msgs[0], SystemMessage):
        msgs = msgs[1:]  # compose merged it into the facts message
    return [SystemMessage(content=prepared.request[0]["content"]), *msgs]


def _namespace(config: "RunnableConfig | None", default: str | None) -> str | None:
    return ((config or {}).get("configurable") or {}).get(NAMESPACE_KEY) or default


def _openai(messages: Sequence["BaseMessage"]) -> list[dict[str, Any]]:
    from langchain_core.messages import convert_to_openai_messages

    return convert_to_openai_messages(list(messages))  # type: ignore[return-value]


def inject_edits(messages: Sequence["BaseMessage"], editor: "Editor", *,
                 namespace: str | None = None) -> tuple[list["BaseMessage"], "Prepared"]:
    """The messages to send (facts added when edits apply) and what ``Editor.prepare_chat`` decided."""
    prepared = editor.prepare_chat(_openai(messages), namespace=namespace)
    return _with_facts(messages, prepared), prepared


async def ainject_edits(messages: Sequence["BaseMessage"], editor: "Editor", *,
                        namespace: str | None = None) -> tuple[list["BaseMessage"], "Prepared"]:
    prepared = await editor.aprepare_chat(_openai(messages), namespace=namespace)
    return _with_facts(messages, prepared), prepared


def edited_model_node(model: "Runnable", editor: "Editor", *, namespace: str | None = None,
                      messages_key: str = "messages") -> "RunnableLambda":
    """A graph node ``state -> {messages_key: [reply]}`` calling ``model`` with the in-scope edits applied."""
    from langchain_core.messages import AIMessage
    from langchain_core.runnables import RunnableLambda

    def _reply(reply: Any, prepared: "Prepared") -> dict[str, Any]:
        reply.response_metadata = {**(reply.response_metadata or {}), "agentedit_applied": prepared.applied_ids,
                                   "agentedit_mode": prepared.mode,
                                   **({"agentedit_resolved_query": prepared.resolved_query} if prepared.resolved_query else {})}
        return {messages_key: [reply]}

    def _answered(prepared: "Prepared") -> Any:  # a decomposed multi-hop question: the workflow already answered
        return AIMessage(content=prepared.completion.text if prepared.completion else "")

    def node(state: dict[str, Any], config: "RunnableConfig") -> dict[str, Any]:
        msgs, prepared = inject_edits(state[messages_key], editor, namespace=_namespace(config, namespace))
        return _reply(_answered(prepared) if prepared.answered else model.invoke(msgs, config), prepared)

    async def anode(state: dict[str, Any], config: "RunnableConfig") -> dict[str, Any]:
        msgs, prepared = await ainject_edits(state[messages_key], editor, namespace=_namespace(config, namespace))
        return _reply(_answered(prepared) if prepared.answered else await model.ainvoke(msgs, config), prepared)

    return RunnableLambda(node, afunc=anode, name="edited_model")
