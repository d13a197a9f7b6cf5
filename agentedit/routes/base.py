"""The edit route protocol: where an edit lives and how it is written, changed, retracted and found again.

Two routes implement it: :class:`~agentedit.routes.in_context.InContextRoute` (the edit is a record in
the memory, injected into the requests it bears on) and :class:`~agentedit.routes.weights.WeightRoute`
(the edit is written into a local model's weights and recorded in the memory). The :class:`~agentedit.Editor`
picks a route per edit and never branches on the method itself.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from ..types import EditRecord

Progress = Callable[[int, int], None]


@runtime_checkable
class EditRoute(Protocol):
    """What the :class:`~agentedit.Editor` needs from a route."""

    #: True when the route's edits are injected into requests (in context); False when the model holds them.
    injects: bool

    def owns(self, record: EditRecord) -> bool:
        """Whether ``record`` lives on this route."""
        ...

    def write(self, records: Sequence[Mapping[str, Any] | EditRecord], *, method: str, namespace: str, actor: str,
              progress: Progress | None = None) -> list[EditRecord]:
        """Record a batch, all or nothing (a newer edit of the same subject and relation supersedes the older)."""
        ...

    def update(self, edit_id: str, changes: Mapping[str, Any], *, namespace: str | None, actor: str,
               expected_version: int | None = None) -> EditRecord:
        """Change an active edit (only at ``expected_version`` when given; the conflict policy applies)."""
        ...

    def retract(self, edit_id: str, *, namespace: str | None, actor: str,
                expected_version: int | None = None) -> EditRecord:
        """Retract an edit (only at ``expected_version`` when given): later queries no longer see it; its history is kept."""
        ...

    def bearing_on(self, query: str, namespace: str) -> list[EditRecord]:
        """The route's active edits that answer ``query`` without injection (empty for injected routes)."""
        ...
