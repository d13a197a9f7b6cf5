"""One path for every entry point: ``Editor.chat``, the CLI, the HTTP proxy (official ``openai`` client) and the
LangGraph node give the same applied edits and send the model the same requests, for single facts, a multi-hop
question, an unrelated question, and a plain statement written through that same entry point.

The upstream is a real OpenAI-compatible HTTP server on loopback that records every request body
(:class:`~server_support.StubUpstream`); each entry point gets its own copy of one seeded store.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

from agentedit import Editor
from agentedit.memory import EditMemory

from server_support import StubUpstream, serving

SEED = [
    {"id": "eiffel", "prompt": "The Eiffel Tower is located in", "subject": "Eiffel Tower", "target_new": "Rome"},
    {"id": "performer", "prompt": "Hey Jude was performed by", "subject": "Hey Jude", "target_new": "Madonna"},
    {"id": "director", "prompt": "The director of Madonna is", "subject": "Madonna", "target_new": "Narendra Modi"},
    {"id": "citizen", "prompt": "Narendra Modi is a citizen of", "subject": "Narendra Modi", "target_new": "Australia"},
    {"id": "language", "prompt": "The official language of Australia is", "subject": "Australia", "target_new": "Arabic"},
]
STATEMENT = "Zephyr's default port is 9000."
QUESTIONS = {
    "single fact": "In which city is the Eiffel Tower?",
    "written statement": "What is Zephyr's default port?",
    "multi-hop": "What is the official language of the country of citizenship of the director of Hey Jude's performer?",
    "unrelated": "What is the boiling point of water?",
}
STORE = "parity"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    root = tmp_path_factory.mktemp("seed")
    with EditMemory(STORE, root=root, embedder=embedder) as mem:
        mem.add_many(SEED)
    return root


@pytest.fixture(scope="module")
def stub() -> Any:
    up = StubUpstream("Final answer: Arabic")
    yield up
    up.close()


def _fresh(seeded: Path, tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(seeded, root)
    return root


def _python(root: Path, base_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with Editor("openai/stub", api_base=base_url, store=STORE, store_dir=str(root), max_retries=0) as ed:
        rec = ed.edit(statement=STATEMENT, id="written")
        out["written"] = rec.to_dict()
        for kind, q in QUESTIONS.items():
            out[kind] = ed.chat([{"role": "user", "content": q}])["agentedit"]["applied"]
    return out


def _cli(root: Path, base_url: str) -> dict[str, Any]:
    from agentedit import cli

    runner = CliRunner()
    base = ["--store-dir", str(root), "--store", STORE, "--model", "openai/stub", "--api-base", base_url]
    res = runner.invoke(cli.app, [*base, "edit", "--statement", STATEMENT, "--id", "written", "--json"])
    assert res.exit_code == 0, res.output
    out: dict[str, Any] = {"written": json.loads(res.stdout)}
    for kind, q in QUESTIONS.items():
        res = runner.invoke(cli.app, [*base, "chat", "--message", q, "--json"])
        assert res.exit_code == 0, res.output
        out[kind] = json.loads(res.stdout)["agentedit"]["applied"]
    return out


def _proxy(root: Path, base_url: str) -> dict[str, Any]:
    from openai import OpenAI

    from agentedit.server import ServerConfig, create_app

    cfg = ServerConfig(model="openai/stub", api_base=base_url, store=STORE, store_dir=str(root), auth=False, max_retries=0)
    out: dict[str, Any] = {}
    with serving(create_app(cfg)) as url:
        client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        written = client.post("/edits", body={"statement": STATEMENT, "id": "written"}, cast_to=object)
        out["written"] = {k: v for k, v in written.items() if k != "object"}  # type: ignore[union-attr]
        for kind, q in QUESTIONS.items():
            resp = client.chat.completions.create(model="stub", messages=[{"role": "user", "content": q}])
            out[kind] = resp.model_extra["agentedit"]["applied"]  # type: ignore[index]
    return out


def _langgraph(root: Path, base_url: str) -> dict[str, Any]:
    from langchain_core.messages import HumanMessage
    from langchain_openai import ChatOpenAI
    from langgraph.graph import START, MessagesState, StateGraph

    from agentedit.integrations.langchain import edit_tools
    from agentedit.integrations.langgraph import edited_model_node

    out: dict[str, Any] = {}
    with Editor("openai/stub", api_base=base_url, store=STORE, store_dir=str(root), max_retries=0) as ed:
        record = next(t for t in edit_tools(ed) if t.name == "record_edit")
        written = json.loads(record.invoke({"statement": STATEMENT}))
        out["written"] = ed.get(written["id"]).to_dict()
        model = ChatOpenAI(model="stub", base_url=base_url, api_key="unused", max_retries=0)
        builder = StateGraph(MessagesState)
        builder.add_node("agent", edited_model_node(model, ed))
        builder.add_edge(START, "agent")
        graph = builder.compile()
        for kind, q in QUESTIONS.items():
            reply = graph.invoke({"messages": [HumanMessage(q)]})["messages"][-1]
            out[kind] = reply.response_metadata["agentedit_applied"]
    return out


ENTRY_POINTS: dict[str, Callable[[Path, str], dict[str, Any]]] = {
    "python": _python, "cli": _cli, "proxy": _proxy, "langgraph": _langgraph}


def _canonical(result: dict[str, Any], requests: list[dict[str, Any]]) -> dict[str, Any]:
    """What must agree: the written record's anatomy, applied ids (the written edit's own id normalised, since the
    LangChain tool takes none) and the messages each model request carried."""
    wid = result["written"]["id"]
    parts = {k: result["written"].get(k) for k in ("subject", "prompt", "relation", "target_new", "statement")}
    parts["anatomy"] = (result["written"].get("metadata") or {}).get("anatomy")
    applied = {kind: ["<written>" if i == wid else i for i in result[kind]] for kind in QUESTIONS}
    sent = [[{k: m.get(k) for k in ("role", "content")} for m in r["messages"]] for r in requests]
    return {"written": parts, "applied": applied, "sent": sent}


def test_every_entry_point_takes_the_same_path(seeded: Path, stub: Any, tmp_path: Path) -> None:
    seen: dict[str, dict[str, Any]] = {}
    for name, run in ENTRY_POINTS.items():
        before = len(stub.requests)
        result = run(_fresh(seeded, tmp_path, name), stub.base_url)
        seen[name] = _canonical(result, stub.requests[before:])

    reference = seen["python"]
    # The reference itself is what the edits say it should be.
    assert reference["written"]["subject"] == "Zephyr" and reference["written"]["target_new"] == "9000"
    assert reference["applied"]["single fact"] == ["eiffel"]
    assert reference["applied"]["written statement"] == ["<written>"]
    assert reference["applied"]["multi-hop"] == ["performer", "director", "citizen", "language"]
    assert reference["applied"]["unrelated"] == []
    assert any("Rome" in m["content"] for m in reference["sent"][0] if m["role"] == "system")
    assert reference["sent"][-1] == [{"role": "user", "content": QUESTIONS["unrelated"]}]  # untouched
    for name, got in seen.items():
        for part in ("written", "applied", "sent"):
            assert got[part] == reference[part], f"{name} differs from Editor.chat in {part}"
