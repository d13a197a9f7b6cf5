"""Helpers shared by the memory tests: counts read straight from the ledger file, the index's ids, reopening a store."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from agentedit.memory import DEFAULT_NAMESPACE, EditMemory
from agentedit.memory.index import ChromaIndex

EIFFEL = {"prompt": "The Eiffel Tower is located in", "subject": "Eiffel Tower", "target_new": "Rome", "id": "eiffel"}
CEO = {"prompt": "The CEO of Acme Corp is", "subject": "Acme Corp", "target_new": "Jane Doe", "id": "acme-ceo"}
LYON = {"statement": "The Globex office moved to Lyon.", "id": "globex-office"}


def _event_count(mem: EditMemory) -> int:
    with sqlite3.connect(mem.dir / "ledger.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def _ledger_count(mem: EditMemory) -> int:
    with sqlite3.connect(mem.dir / "ledger.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM edits").fetchone()[0]


def _default_collection(mem: EditMemory) -> Any:
    """The Chroma collection behind the default namespace (the tests' way to corrupt the index directly)."""
    assert isinstance(mem.index, ChromaIndex)
    return mem.index.collection(DEFAULT_NAMESPACE)


def _indexed_ids(mem: EditMemory) -> set[str]:
    return set(_default_collection(mem).get(include=[])["ids"])


def _open(root: Path, embedder) -> EditMemory:
    return EditMemory("t", root=root, embedder=embedder)


# -- add / get / list ------------------------------------------------------------------------------
