"""Edit routes: where an edit lives. One protocol (:class:`EditRoute`), two routes, and :class:`Routes`,
the set an :class:`~agentedit.Editor` holds.

- :class:`InContextRoute`: a record in the memory, injected into the requests it bears on (every model).
- :class:`WeightRoute`: written into a local model's weights by a parametric method, recorded in the memory
  (``hf:`` models); retracting it restores the weights bit for bit.

``Routes.of(record)`` is the one place that decides which route an edit belongs to; the workflow asks
``Routes.injectable`` which retrieved edits to scope-check and ``Routes.in_weights`` which edits the
model already holds for a question.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..types import EditRecord
from .base import EditRoute, Progress
from .in_context import IN_CONTEXT, InContextRoute

if TYPE_CHECKING:
    from ..types import Candidate

__all__ = ["EditRoute", "IN_CONTEXT", "InContextRoute", "Progress", "Routes", "WeightRoute"]


def __getattr__(name: str) -> Any:  # WeightRoute pulls in torch: import it only when asked for
    if name == "WeightRoute":
        from .weights import WeightRoute

        return WeightRoute
    raise AttributeError(name)


class Routes:
    """The in-context route, and the weight route when the model's weights can be edited (made on first use)."""

    def __init__(self, memory: Any, weights: Callable[[], EditRoute | None]) -> None:
        self.in_context = InContextRoute(memory)
        self._make_weights = weights
        self._weights: EditRoute | None = None
        self._weights_made = False

    @property
    def weights(self) -> EditRoute | None:
        if not self._weights_made:
            self._weights = self._make_weights()
            self._weights_made = True
        return self._weights

    @property
    def weights_if_made(self) -> EditRoute | None:
        """The weight route if something already asked for it (no model is loaded by asking this)."""
        return self._weights

    def for_method(self, method: str) -> EditRoute:
        if method == IN_CONTEXT:
            return self.in_context
        route = self.weights
        if route is None:
            from ..errors import ConfigError

            raise ConfigError(f"method {method!r} edits weights, which this model does not expose; "
                              "use a local model (hf:...) or method='in-context'")
        return route

    def of(self, record: EditRecord) -> EditRoute:
        """The route ``record`` lives on."""
        if self.in_context.owns(record):
            return self.in_context
        return self.for_method(record.method)

    @staticmethod
    def injects(record: EditRecord) -> bool:
        """Whether the edit reaches the model by injection (the in-context route)."""
        return record.method == IN_CONTEXT

    def injectable(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The retrieved edits the scope check decides on: weight edits are in the model already."""
        return [c for c in candidates if self.injects(c.record)]

    def in_weights(self, query: str, namespace: str) -> list[EditRecord]:
        """Weight edits that answer ``query`` (none unless the weight route is in use)."""
        route = self.weights_if_made
        return route.bearing_on(query, namespace) if route is not None else []
