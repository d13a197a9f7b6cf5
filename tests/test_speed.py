"""The request path's speed-ups keep behaviour: the ONNX embedder computes the torch path's vectors, the backend is a
clear setting, the query LRU cannot serve another text's vector, and the workflow's direct single pass gives the
compiled graph's state."""

from __future__ import annotations

import numpy as np
import pytest

from agentedit.errors import ConfigError
from agentedit.graph import WorkflowContext, build_graph
from agentedit.graph.workflow import Workflow
from agentedit.memory import EditMemory, Embedder
from agentedit.memory.embed import embedder_backend
from agentedit.routes import Routes
from agentedit.scope import SimilarityChecker

TEXTS = ["What is the mother tongue of Danielle Darrieux?", "Ada Abbott works as a pilot in Oslo.", "x", "",
         "Die Hauptstadt von Frankreich ist Paris, oder?", "émigré naïve café — 東京 🙂",
         " ".join(["The Eiffel Tower is located in the city of Rome."] * 60)]  # past the 256-token truncation


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return Embedder(backend="torch")


@pytest.fixture(scope="module")
def onnx_embedder() -> Embedder:
    return Embedder(backend="onnx")


def test_onnx_vectors_match_sentence_transformers_on_torch(onnx_embedder: Embedder, torch_embedder: Embedder) -> None:
    batch = onnx_embedder.embed(TEXTS)  # one padded, length-sorted batch
    want = torch_embedder.embed(TEXTS)
    assert batch.shape == want.shape == (len(TEXTS), 384) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert float((batch * want).sum(axis=1).min()) >= 0.9999
    singles = np.stack([onnx_embedder.embed([t])[0] for t in TEXTS])  # no padding: same vectors as in the batch
    assert float((singles * batch).sum(axis=1).min()) >= 0.9999
    assert onnx_embedder.dim == torch_embedder.dim == 384
    assert onnx_embedder.embed([]).shape == (0, 384)


def test_backend_setting_and_its_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTEDIT_EMBEDDER_BACKEND", raising=False)
    assert embedder_backend() == "onnx" and embedder_backend(device="cuda") == "torch"
    monkeypatch.setenv("AGENTEDIT_EMBEDDER_BACKEND", "torch")
    assert embedder_backend() == "torch" and Embedder().backend == "torch"
    monkeypatch.setenv("AGENTEDIT_EMBEDDER_BACKEND", "tensorrt")
    with pytest.raises(ConfigError, match="unknown embedder backend .tensorrt.*onnx, torch, onnx-int8"):
        Embedder()
    with pytest.raises(ConfigError, match="CPU only"):
        Embedder(backend="onnx", device="cuda")


def test_onnx_backend_refuses_a_model_folder_without_a_fast_tokenizer(tmp_path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(ConfigError, match="no tokenizer.json.*AGENTEDIT_EMBEDDER_BACKEND=torch"):
        Embedder(str(tmp_path), backend="onnx").embed(["a question"])


def test_query_lru_returns_the_texts_own_read_only_vector(onnx_embedder: Embedder) -> None:
    small = Embedder(backend="onnx", cache_size=2)
    small._model = onnx_embedder._load()  # share the loaded session; the LRU is the embedder's own
    a = small.embed_one("Who wrote Hamlet?")
    assert small.embed_one("Who wrote Hamlet?") is a  # repeated query: no second embedding
    assert not a.flags.writeable
    b = small.embed_one("Who painted the Mona Lisa?")
    assert float(a @ b) < 0.9 and np.allclose(b, onnx_embedder.embed(["Who painted the Mona Lisa?"])[0], atol=1e-6)
    small.embed_one("third text")  # bounded: the oldest entry is dropped
    assert list(small._recent) == ["Who painted the Mona Lisa?", "third text"]


def test_a_store_written_through_torch_is_served_through_onnx(tmp_path, torch_embedder: Embedder,
                                                              onnx_embedder: Embedder) -> None:
    facts = [{"prompt": "The Eiffel Tower is located in", "subject": "Eiffel Tower", "target_new": "Rome"},
             {"prompt": "The CEO of Acme Corp is", "subject": "Acme Corp", "target_new": "Jane Doe"},
             {"prompt": "Danielle Darrieux's mother tongue is", "subject": "Danielle Darrieux", "target_new": "English"}]
    with EditMemory("mixed", root=tmp_path, embedder=torch_embedder) as mem:
        mem.add_many(facts)
        want = [(c.record.subject, round(c.similarity, 4)) for c in mem.query("Where is the Eiffel Tower?", k=3)]
    with EditMemory("mixed", root=tmp_path, embedder=onnx_embedder) as mem:  # same recorded embedder name: opens
        got = [(c.record.subject, round(c.similarity, 4)) for c in mem.query("Where is the Eiffel Tower?", k=3)]
        mem.add_many([{"prompt": "The capital of Spain is", "subject": "Spain", "target_new": "Seville"}])
        assert mem.query("What is Spain's capital city?", k=1)[0].record.subject == "Spain"
    assert [s for s, _ in got] == [s for s, _ in want] and want[0][0] == "Eiffel Tower"
    assert all(abs(a - b) <= 2e-4 for (_, a), (_, b) in zip(got, want))


def _ctx(memory: EditMemory, backend, multihop: str = "never") -> WorkflowContext:
    return WorkflowContext(memory=memory, backend=backend, checker=SimilarityChecker(0.7),
                           routes=Routes(memory, lambda: None), multihop=multihop)


@pytest.mark.parametrize("question", ["Where is the Eiffel Tower located?", "What is the boiling point of water?"])
def test_direct_single_pass_gives_the_graphs_state(memory: EditMemory, make_backend, question: str) -> None:
    memory.add_many([{"prompt": "The Eiffel Tower is located in", "subject": "Eiffel Tower", "target_new": "Rome"}])
    state = {"messages": [{"role": "user", "content": question}], "namespace": "default", "style": "chat", "params": {}}
    for generate in (False, True):
        backend = make_backend("Rome.")
        graph_out = build_graph(generate=generate).compile().invoke(dict(state), context=_ctx(memory, backend))
        direct_backend = make_backend("Rome.")
        direct = Workflow.single_pass(dict(state), _ctx(memory, direct_backend), generate=generate)
        assert direct is not None
        assert set(direct) == set(graph_out) and set(direct["timings"]) == set(graph_out["timings"])
        for key in set(graph_out) - {"timings", "decisions", "candidates"}:
            assert direct[key] == graph_out[key], key
        assert [(d.edit_id, d.in_scope) for d in direct["decisions"]] == [(d.edit_id, d.in_scope) for d in graph_out["decisions"]]
        assert direct_backend.calls == backend.calls
    assert (direct["mode"] == "in-context") == ("Eiffel" in question)


def test_decomposition_leaves_the_direct_path_for_the_graph(memory: EditMemory, make_backend) -> None:
    state = {"messages": [{"role": "user", "content": "Who is the spouse of the CEO of Acme Corp?"}],
             "namespace": "default", "style": "chat", "params": {}}
    assert Workflow.single_pass(dict(state), _ctx(memory, make_backend("x"), multihop="always"), generate=False) is None
    backend = make_backend("Final answer: Jane Roe")
    prepared = Workflow().prepare(dict(state), _ctx(memory, backend, multihop="always"))
    assert prepared.mode == "multi-hop" and prepared.completion.text == "Jane Roe" and backend.calls  # the graph ran the branch


def test_int8_backend_is_another_embedder_that_a_float_store_refuses(tmp_path, onnx_embedder: Embedder) -> None:
    from agentedit.errors import StoreError

    int8 = Embedder(backend="onnx-int8")
    assert int8.name == "all-MiniLM-L6-v2-int8" != onnx_embedder.name
    a, b = int8.embed(TEXTS[:3]), onnx_embedder.embed(TEXTS[:3])
    assert 0.9 < float((a * b).sum(axis=1).min()) < 0.9999  # close, but not the float vectors
    with EditMemory("float", root=tmp_path, embedder=onnx_embedder) as mem:
        mem.add_many([{"prompt": "The capital of Spain is", "subject": "Spain", "target_new": "Seville"}])
    with pytest.raises(StoreError, match="built with embedder 'all-MiniLM-L6-v2' but 'all-MiniLM-L6-v2-int8'"):
        EditMemory("float", root=tmp_path, embedder=int8)
