"""The index keeps one Chroma collection per namespace (no metadata filter at query time), and stores
written with the earlier single-collection layout are moved over on open without re-embedding."""

from __future__ import annotations

from pathlib import Path

import chromadb
from chromadb.config import Settings

from agentedit.memory import EditMemory
from agentedit.memory.index import ChromaIndex

EIFFEL = {"prompt": "The Eiffel Tower is located in", "subject": "Eiffel Tower", "target_new": "Rome", "id": "eiffel"}
EIFFEL_B = {**EIFFEL, "target_new": "Berlin", "id": "eiffel-b"}
CEO = {"prompt": "The CEO of Acme Corp is", "subject": "Acme Corp", "target_new": "Jane Doe", "id": "acme-ceo"}


def _names(mem: EditMemory) -> set[str]:
    assert isinstance(mem.index, ChromaIndex)
    return {c if isinstance(c, str) else c.name for c in mem.index.client.list_collections()}


def test_each_namespace_has_its_own_collection(tmp_path: Path, embedder) -> None:
    with EditMemory("t", root=tmp_path, embedder=embedder) as mem:
        mem.add(EIFFEL, namespace="a")
        mem.add_many([EIFFEL_B, CEO], namespace="x..y-")  # any valid namespace makes a valid collection name
        assert {"ns_" + "a".encode().hex(), "ns_" + "x..y-".encode().hex()} <= _names(mem)
        assert [c.record.id for c in mem.query("Where is the Eiffel Tower?", namespace="a", k=4)] == ["eiffel"]
        assert mem.query("Where is the Eiffel Tower?", namespace="x..y-", k=1)[0].record.id == "eiffel-b"
        assert mem.query("Where is the Eiffel Tower?", namespace="never-written", k=4) == []
        mem.delete("eiffel-b")
        assert [c.record.id for c in mem.query("Where is the Eiffel Tower?", namespace="x..y-", k=4)] == ["acme-ceo"]
        assert [c.record.id for c in mem.query("Where is the Eiffel Tower?", namespace="a", k=4)] == ["eiffel"]


def test_single_collection_stores_are_moved_without_re_embedding(tmp_path: Path, embedder) -> None:
    with EditMemory("t", root=tmp_path, embedder=embedder) as mem:
        mem.add(EIFFEL, namespace="a")
        mem.add(CEO, namespace="b")
    # rewrite the index in the earlier layout: one collection named "edits" with a namespace in the metadata
    client = chromadb.PersistentClient(path=str(tmp_path / "t" / "chroma"), settings=Settings(anonymized_telemetry=False))
    legacy = client.get_or_create_collection("edits", embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
    for col in client.list_collections():
        name = col if isinstance(col, str) else col.name
        if name.startswith("ns_"):
            page = client.get_collection(name, embedding_function=None).get(include=["embeddings", "documents", "metadatas"])
            legacy.upsert(ids=page["ids"], embeddings=page["embeddings"], documents=page["documents"], metadatas=page["metadatas"])
            client.delete_collection(name)
    assert {c if isinstance(c, str) else c.name for c in client.list_collections()} == {"edits"}
    del client

    calls = []
    original = embedder.embed
    embedder.embed = lambda texts: calls.append(list(texts)) or original(texts)  # type: ignore[method-assign]
    try:
        with EditMemory("t", root=tmp_path, embedder=embedder) as mem:
            assert "edits" not in _names(mem)
            assert calls == []  # vectors were moved, not recomputed
            assert [c.record.id for c in mem.query("Who runs Acme Corp?", namespace="b", k=4)] == ["acme-ceo"]
            assert [c.record.id for c in mem.query("Who runs Acme Corp?", namespace="a", k=4)] == ["eiffel"]
    finally:
        embedder.embed = original  # type: ignore[method-assign]
