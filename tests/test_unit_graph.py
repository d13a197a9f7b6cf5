"""Unit tests of agentedit.graph: the retrieve -> scope -> compose -> generate workflow."""

from __future__ import annotations

import asyncio
import json

import pytest
from langgraph.graph import StateGraph
from langgraph.runtime import Runtime

from agentedit.routes import Routes
from agentedit.graph import WorkflowContext, build_graph, nodes
from agentedit.injection import Demo, DemoPool
from agentedit.memory import EditMemory
from agentedit.scope import JudgeChecker, RejectAllChecker, SimilarityChecker

EIFFEL = {"prompt": "The Eiffel Tower is located in", "subject": "Eiffel Tower", "target_new": "Rome", "id": "eiffel"}
CEO = {"prompt": "The CEO of Acme Corp is", "subject": "Acme Corp", "target_new": "Jane Doe", "id": "acme-ceo"}
STAGES = ("plan", "retrieve", "scope", "compose", "generate")
BRANCH = ("chain", "propose", "hop", "fallback", "finish")


@pytest.fixture()
def filled(memory: EditMemory) -> EditMemory:
    memory.add_many([EIFFEL, CEO])
    return memory


@pytest.fixture(scope="module")
def graph():
    return build_graph().compile()


def _ctx(memory, backend, checker=None, **kw) -> WorkflowContext:
    return WorkflowContext(memory=memory, backend=backend, checker=checker or SimilarityChecker(0.7),
                           routes=Routes(memory, lambda: None), **kw)


def test_build_graph_is_uncompiled_with_the_single_pass_and_the_decomposition_branch() -> None:
    g = build_graph()
    assert isinstance(g, StateGraph)
    assert not hasattr(g, "invoke")
    assert set(STAGES) | set(BRANCH) == set(g.nodes)
    assert set(g.edges) == {("__start__", "plan"), ("retrieve", "scope"), ("scope", "compose"),
                            ("compose", "generate"), ("generate", "__end__"), ("fallback", "retrieve"), ("finish", "__end__")}
    assert set(g.branches) == {"plan", "chain", "propose", "hop"}  # the conditional edges
    assert build_graph() is not g  # a fresh builder each call
    prepare = build_graph(generate=False)  # every entry point's graph without the final model call: same plan, same branch
    assert set(prepare.nodes) == set(g.nodes) - {"generate"}
    assert ("compose", "__end__") in prepare.edges and ("__start__", "plan") in prepare.edges


def test_out_of_scope_query_is_passed_through_untouched(graph, filled, make_backend) -> None:
    backend = make_backend("100 degrees Celsius")
    messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "What is the boiling point of water?"}]
    out = graph.invoke({"messages": messages, "namespace": "default"}, context=_ctx(filled, backend))
    assert backend.calls == [("chat", messages, {})]
    assert out["applied"] == [] and out["mode"] == "passthrough"
    assert out["request"] == messages
    assert out["completion"].text == "100 degrees Celsius"
    assert len(out["candidates"]) == 2 and not any(d.in_scope for d in out["decisions"])


def test_in_scope_query_gets_the_facts_block(graph, filled, make_backend) -> None:
    backend = make_backend("Rome")
    messages = [{"role": "user", "content": "In which city is the Eiffel Tower?"}]
    out = graph.invoke({"messages": messages, "namespace": "default", "params": {"max_tokens": 5}},
                       context=_ctx(filled, backend))
    [(method, sent, params)] = backend.calls
    assert method == "chat" and params == {"max_tokens": 5}
    assert sent[0]["role"] == "system"
    assert json.dumps("The Eiffel Tower is located in Rome.") in sent[0]["content"]
    assert "Jane Doe" not in sent[0]["content"]  # the out-of-scope edit is not injected
    assert sent[1:] == messages
    assert [r.id for r in out["applied"]] == ["eiffel"]
    assert out["mode"] == "in-context" and out["query"] == "In which city is the Eiffel Tower?"
    assert set(out["timings"]) == set(STAGES) and all(v >= 0 for v in out["timings"].values())


def test_namespace_scopes_the_workflow(graph, memory, make_backend) -> None:
    memory.add(EIFFEL, namespace="tenant-a")
    backend = make_backend()
    messages = [{"role": "user", "content": "In which city is the Eiffel Tower?"}]
    out = graph.invoke({"messages": messages, "namespace": "tenant-b"}, context=_ctx(memory, backend))
    assert out["applied"] == [] and backend.calls[0][1] == messages
    out_a = graph.invoke({"messages": messages, "namespace": "tenant-a"}, context=_ctx(memory, backend))
    assert [r.id for r in out_a["applied"]] == ["eiffel"]


def test_reject_all_checker_gives_the_unedited_request(graph, filled, make_backend) -> None:
    backend = make_backend()
    messages = [{"role": "user", "content": "In which city is the Eiffel Tower?"}]
    out = graph.invoke({"messages": messages}, context=_ctx(filled, backend, RejectAllChecker()))
    assert backend.calls[0][1] == messages and out["mode"] == "passthrough"


def test_ainvoke_uses_the_async_backend(graph, filled, make_backend) -> None:
    backend = make_backend("Rome")
    messages = [{"role": "user", "content": "In which city is the Eiffel Tower?"}]
    out = asyncio.run(graph.ainvoke({"messages": messages, "namespace": "default"}, context=_ctx(filled, backend)))
    [(method, sent, _)] = backend.calls
    assert method == "achat"
    assert json.dumps("The Eiffel Tower is located in Rome.") in sent[0]["content"]
    assert [r.id for r in out["applied"]] == ["eiffel"] and set(out["timings"]) == set(STAGES)


def test_ainvoke_with_the_judge_checker_asks_asynchronously(graph, filled, make_backend) -> None:
    def reply(msgs):
        content = msgs[-1]["content"]
        if "Decide whether a stored fact answers a question" in content:
            return "yes" if "Eiffel" in content.split("Question")[0] else "no"
        return "Rome"

    backend = make_backend(reply)
    messages = [{"role": "user", "content": "In which city is the Eiffel Tower?"}]
    out = asyncio.run(graph.ainvoke({"messages": messages}, context=_ctx(filled, backend, JudgeChecker(backend))))
    assert [c[0] for c in backend.calls] == ["achat", "achat", "achat"]  # two judgements, one answer
    assert [r.id for r in out["applied"]] == ["eiffel"]
    assert out["completion"].text == "Rome"


def test_complete_style_poses_the_prefix_to_a_chat_model(graph, filled, make_backend) -> None:
    backend = make_backend("Rome")
    out = graph.invoke({"prompt": "The Eiffel Tower is located in", "style": "complete"}, context=_ctx(filled, backend))
    sent = backend.calls[0][1]
    assert sent[-1] == {"role": "user", "content": "Complete the sentence with a short answer: The Eiffel Tower is located in"}
    assert sent[0]["role"] == "system" and "Rome" in sent[0]["content"]
    assert out["query"] == "The Eiffel Tower is located in"


def test_text_style_calls_complete_with_a_prefix(graph, filled, make_backend) -> None:
    backend = make_backend(" Rome")
    graph.invoke({"prompt": "The Eiffel Tower is located in", "style": "text"}, context=_ctx(filled, backend))
    [(method, prompt, _)] = backend.calls
    assert method == "complete"
    assert prompt.startswith("Updated facts") and prompt.endswith("\n\nThe Eiffel Tower is located in")
    assert json.dumps("The Eiffel Tower is located in Rome.") in prompt
    asyncio.run(graph.ainvoke({"prompt": "What is the boiling point of water?", "style": "text"},
                              context=_ctx(filled, backend)))
    assert backend.calls[-1][:2] == ("acomplete", "What is the boiling point of water?")


def test_ike_injection_includes_demonstrations(graph, filled, make_backend, embedder) -> None:
    demos = [Demo("copy", '"Paris is in Italy."', "Paris is in", "Italy"),
             Demo("update", '"Paris is in Italy."', "Which country is Paris in?", "Italy"),
             Demo("retain", '"Paris is in Italy."', "Berlin is in", "Germany")]
    pool = DemoPool(demos, embedder.embed([f"{d.fact} {d.question}" for d in demos]), embedder)
    backend = make_backend()
    graph.invoke({"messages": [{"role": "user", "content": "In which city is the Eiffel Tower?"}]},
                 context=_ctx(filled, backend, injection="ike", demos=pool, n_demos=3))
    system = backend.calls[0][1][0]["content"]
    assert system.count("New fact:") == 3 and "Question: Berlin is in" in system
    assert system.index("New fact:") < system.index(json.dumps("The Eiffel Tower is located in Rome."))
    # the demonstrations follow the injected fact, not the wording of the question (IKE retrieves by the new fact)
    graph.invoke({"messages": [{"role": "user", "content": "Where is the Eiffel Tower located?"}]},
                 context=_ctx(filled, backend, injection="ike", demos=pool, n_demos=2))
    graph.invoke({"messages": [{"role": "user", "content": "Which city has the Eiffel Tower?"}]},
                 context=_ctx(filled, backend, injection="ike", demos=pool, n_demos=2))
    a, b = backend.calls[-2][1], backend.calls[-1][1]
    assert a[0] == b[0] and a[0]["content"].count("New fact:") == 2 and a[-1] != b[-1]
    keys: list[str] = []
    select = pool.select
    pool.select = lambda key, k=6, vector=None: keys.append(key) or select(key, k)  # type: ignore[method-assign]
    graph.invoke({"messages": [{"role": "user", "content": "Where is the Eiffel Tower located?"}]},
                 context=_ctx(filled, backend, injection="ike", demos=pool, n_demos=2))
    assert keys == ["The Eiffel Tower is located in Rome."]


def test_empty_query_retrieves_nothing(graph, filled, make_backend) -> None:
    backend = make_backend()
    out = graph.invoke({"messages": [{"role": "user", "content": "   "}]}, context=_ctx(filled, backend))
    assert out["candidates"] == [] and out["mode"] == "passthrough"


# -- nodes as plain functions ----------------------------------------------------------------------
def test_nodes_are_plain_functions(filled, make_backend) -> None:
    backend = make_backend("Rome")
    rt = Runtime(context=_ctx(filled, backend, k=1))
    state = {"messages": [{"role": "user", "content": "In which city is the Eiffel Tower?"}], "namespace": "default"}
    r = nodes.retrieve(state, rt)
    assert r["query"] == "In which city is the Eiffel Tower?"
    assert [c.record.id for c in r["candidates"]] == ["eiffel"] and "retrieve" in r["timings"]
    state.update(r)
    s = nodes.scope(state, rt)
    assert [d.edit_id for d in s["decisions"]] == ["eiffel"] and [e.id for e in s["applied"]] == ["eiffel"]
    assert asyncio.run(nodes.ascope(state, rt))["applied"] == s["applied"]
    state.update(s)
    c = nodes.compose(state, rt)
    assert c["mode"] == "in-context" and c["request"][0]["role"] == "system"
    state.update(c)
    g = nodes.generate(state, rt)
    assert g["completion"].text == "Rome" and backend.calls[-1] == ("chat", c["request"], {})
    asyncio.run(nodes.agenerate(state, rt))
    assert backend.calls[-1][0] == "achat"


def test_scope_node_without_candidates_does_not_call_the_checker(filled, make_backend) -> None:
    class Exploding:
        name = "exploding"

        def check(self, query, candidates):
            raise AssertionError("checker must not be called without candidates")

    rt = Runtime(context=_ctx(filled, make_backend(), Exploding()))  # type: ignore[arg-type]
    assert nodes.scope({"query": "q", "candidates": []}, rt)["applied"] == []
