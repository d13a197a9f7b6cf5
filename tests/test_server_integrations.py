"""Agent integrations: the LangChain tools and the LangGraph model node over a real store and a real model
(llama.cpp over SmolLM2), and the chat-app example run against a live proxy."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableLambda
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from agentedit import Editor
from agentedit.integrations.langchain import edit_tools
from agentedit.integrations.langgraph import edited_model_node
from agentedit.llama_server import LlamaServer
from agentedit.provision import ensure_model
from agentedit.server import ServerConfig, create_app
from server_support import StubUpstream, serving

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
EIFFEL = "The Eiffel Tower is located in Rome."


@pytest.fixture(scope="module")
def llama():
    server = LlamaServer(ensure_model("smollm2-135m-instruct"), extra_args=("--logits_all", "False")).start()
    yield server
    server.stop()


@pytest.fixture
def editor(llama, tmp_path):
    ed = Editor(f"openai/{llama.model_alias}", api_base=llama.base_url, store="agents", store_dir=tmp_path, max_tokens=16)
    yield ed
    ed.close()


def test_langchain_tools_record_list_ask_and_forget(editor):
    tools = {t.name: t for t in edit_tools(editor, namespace="ops")}
    assert set(tools) == {"record_edit", "list_edits", "forget_edit", "ask_edited"}
    assert "changed" in tools["record_edit"].description  # from prompts/tool_record_edit.j2

    assert json.loads(tools["list_edits"].invoke({})) == []
    plain = json.loads(tools["ask_edited"].invoke({"question": "Which city is the Eiffel Tower in?"}))
    assert plain["applied"] == [] and plain["answer"]

    rec = json.loads(tools["record_edit"].invoke({"statement": EIFFEL, "subject": "Eiffel Tower"}))
    assert rec["status"] == "active" and editor.edits("ops")[0].id == rec["id"]
    assert [e["id"] for e in json.loads(tools["list_edits"].invoke({"subject": "Eiffel Tower"}))] == [rec["id"]]
    edited = json.loads(tools["ask_edited"].invoke({"question": "Which city is the Eiffel Tower in?"}))
    assert edited["applied"] == [rec["id"]]

    assert json.loads(tools["forget_edit"].invoke({"edit_id": rec["id"]}))["status"] == "retracted"
    assert json.loads(tools["list_edits"].invoke({})) == []
    # failures come back as text the agent can read, and write nothing
    assert "no edit with id" in tools["forget_edit"].invoke({"edit_id": "nope"})
    assert "statement" in tools["record_edit"].invoke({"statement": "   "})
    assert editor.edits("ops", include_inactive=True)[0].id == rec["id"] and len(editor.edits("ops", include_inactive=True)) == 1


def _graph(model, editor, **kw):
    builder = StateGraph(MessagesState)
    builder.add_node("agent", edited_model_node(model, editor, **kw))
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    return builder.compile(checkpointer=InMemorySaver())


def test_langgraph_node_applies_edits_without_touching_the_history(editor, llama):
    seen: list[list] = []
    chat = ChatOpenAI(model=llama.model_alias, base_url=llama.base_url, api_key="unused", temperature=0, max_tokens=12)
    model = RunnableLambda(lambda msgs: seen.append(list(msgs)) or msgs) | chat
    graph = _graph(model, editor)
    rec = editor.edit(statement=EIFFEL, subject="Eiffel Tower")
    thread = {"configurable": {"thread_id": "t1"}}

    out = graph.invoke({"messages": [SystemMessage("Be brief."), HumanMessage("Which city is the Eiffel Tower in?")]}, thread)
    sent = seen[-1]
    assert isinstance(sent[0], SystemMessage) and '"The Eiffel Tower is located in Rome."' in sent[0].content
    assert sent[0].content.startswith("Be brief.") and sent[1:] == out["messages"][1:2]
    reply = out["messages"][-1]
    assert isinstance(reply, AIMessage) and reply.content and reply.response_metadata["agentedit_applied"] == [rec.id]
    assert [type(m).__name__ for m in out["messages"]] == ["SystemMessage", "HumanMessage", "AIMessage"]
    assert out["messages"][0].content == "Be brief."  # the facts are not written back into the state

    out = graph.invoke({"messages": [HumanMessage("What is the capital of Japan?")]}, thread)  # second turn, same thread
    assert seen[-1] == out["messages"][:-1]  # unrelated: exactly the conversation, no facts
    assert out["messages"][-1].response_metadata["agentedit_applied"] == []
    assert len(graph.get_state(thread).values["messages"]) == 5


def test_langgraph_node_namespace_per_run_and_async(editor, llama):
    chat = ChatOpenAI(model=llama.model_alias, base_url=llama.base_url, api_key="unused", temperature=0, max_tokens=8)
    graph = _graph(chat, editor)
    rec = editor.edit(statement=EIFFEL, subject="Eiffel Tower", namespace="alice")
    ask = {"messages": [HumanMessage("Which city is the Eiffel Tower in?")]}
    default = graph.invoke(ask, {"configurable": {"thread_id": "a"}})
    assert default["messages"][-1].response_metadata["agentedit_applied"] == []
    alice = asyncio.run(graph.ainvoke(ask, {"configurable": {"thread_id": "b", "agentedit_namespace": "alice"}}))
    assert alice["messages"][-1].response_metadata["agentedit_applied"] == [rec.id]


def test_chat_app_example_against_a_live_proxy(tmp_path):
    stub = StubUpstream("Rome, since the update.")
    cfg = ServerConfig(model="openai/stub", api_base=stub.base_url, store="example", store_dir=str(tmp_path), auth=False,
                       max_retries=0)
    try:
        with serving(create_app(cfg)) as url:
            run = subprocess.run([sys.executable, str(ROOT / "examples" / "chat_app.py"), "--base-url", url + "/v1",
                                  "--namespace", "demo", "--edit", EIFFEL, "--message", "Which city is the Eiffel Tower in?",
                                  "--message", "What is the capital of Japan?"],
                                 capture_output=True, text=True, timeout=120)
    finally:
        stub.close()
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("recorded edit e_")
    edit_id = lines[0].split()[2].rstrip(":")
    replies = [line for line in lines if line.startswith("model> ")]
    assert replies[0] == f"model> Rome, since the update.   [edits applied: {edit_id}]"
    assert replies[1] == "model> Rome, since the update."
    assert '"The Eiffel Tower is located in Rome."' in stub.requests[0]["messages"][0]["content"]
    assert stub.requests[1]["messages"][0]["content"] == "You are a helpful assistant. Answer briefly."
    assert len(stub.requests[1]["messages"]) == 4  # system, user, assistant, user: the history went along
