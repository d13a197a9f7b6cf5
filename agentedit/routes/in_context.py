"""The in-context route: an edit is a record in the memory, injected into the requests it bears on."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..types import EditRecord
from .base import Progress

IN_CONTEXT = "in-context"


class InContextRoute:
    """Edits kept in the memory and applied per query by retrieve -> scope -> compose."""

    injects = True
    name = IN_CONTEXT

    def __init__(self, memory: Any) -> None:
        self.memory = memory

    def owns(self, record: EditRecord) -> bool:
        return record.method == IN_CONTEXT

    def write(self, records: Sequence[Mapping[str, Any] | EditRecord], *, method: str = IN_CONTEXT, namespace: str,
              actor: str, progress: Progress | None = None) -> list[EditRecord]:
        return self.memory.add_many(records, namespace=namespace, actor=actor, progress=progress)

    def update(self, edit_id: str, changes: Mapping[str, Any], *, namespace: str | None, actor: str,
               expected_version: int | None = None) -> EditRecord:
        return self.memory.update(edit_id, changes, namespace=namespace, actor=actor, expected_version=expected_version)

    def retract(self, edit_id: str, *, namespace: str | None, actor: str,
                expected_version: int | None = None) -> EditRecord:
        return self.memory.delete(edit_id, namespace=namespace, actor=actor, expected_version=expected_version)

    def bearing_on(self, query: str, namespace: str) -> list[EditRecord]:
        return []  # injected edits are found by retrieval and the scope check, not here
