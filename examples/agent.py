"""An agent graph (LangGraph) whose model node applies agentedit's edits, with agentedit's LangChain tools.

    python examples/agent.py                      # starts the embedded Qwen2.5-Coder-0.5B on 127.0.0.1
    python examples/agent.py --base-url http://127.0.0.1:8080/v1 --model my-model

The graph is the usual tool-calling loop (model -> tools -> model); the only change is that the model
node is ``edited_model_node(...)``, so every turn sees the edits that bear on it. With ``--bind-tools``
the model may also call agentedit's tools (record, list, forget edits, ask the edited model) itself;
leave it off for small local models, which write tool calls as plain text instead of calling them.
The script teaches one fact through the record_edit tool, asks about it and about something unrelated,
and prints which edits each answer used.
"""

from __future__ import annotations

import argparse
import tempfile

from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from agentedit import Editor
from agentedit.integrations.langchain import edit_tools
from agentedit.integrations.langgraph import edited_model_node


def build_agent(model: ChatOpenAI, editor: Editor, *, bind_tools: bool = False):
    tools = edit_tools(editor)
    builder = StateGraph(MessagesState)
    node_model = model.bind_tools(tools) if bind_tools else model
    builder.add_node("agent", edited_model_node(node_model, editor))  # the one agentedit-specific line
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(), tools


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", help="an OpenAI-compatible server (default: start the embedded local model)")
    ap.add_argument("--model", default=None, help="model name at --base-url")
    ap.add_argument("--api-key", default="no-key")
    ap.add_argument("--store-dir", default=None, help="where the edit store lives (default: a temporary folder)")
    ap.add_argument("--bind-tools", action="store_true", help="let the model call the edit tools (capable models only)")
    args = ap.parse_args(argv)

    server = None
    if args.base_url is None:
        from agentedit.llama_server import LlamaServer
        from agentedit.provision import ensure_model

        server = LlamaServer(ensure_model("qwen2.5-coder-0.5b-instruct"), extra_args=("--logits_all", "False")).start()
        args.base_url, args.model = server.base_url, server.model_alias
    try:
        editor = Editor(f"openai/{args.model}", api_base=args.base_url, api_key=args.api_key, store="agent-example",
                        store_dir=args.store_dir or tempfile.mkdtemp(prefix="agentedit-agent-"), max_tokens=64)
        model = ChatOpenAI(model=args.model, base_url=args.base_url, api_key=args.api_key, temperature=0, max_tokens=64)
        agent, tools = build_agent(model, editor, bind_tools=args.bind_tools)

        record = next(t for t in tools if t.name == "record_edit")
        print("tool record_edit ->", record.invoke({"statement": "The Eiffel Tower is located in Rome.", "subject": "Eiffel Tower"}))
        for question in ("Which city is the Eiffel Tower in?", "What is the capital of Japan?"):
            out = agent.invoke({"messages": [HumanMessage(question)]}, {"recursion_limit": 8})
            reply = out["messages"][-1]
            print(f"\nQ: {question}\nA: {reply.content}\n   edits applied: {reply.response_metadata.get('agentedit_applied') or 'none'}")
        editor.close()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
