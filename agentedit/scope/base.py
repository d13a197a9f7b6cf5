"""The scope-checker protocol, the factory protocol of the checker registry, and the two trivial checkers used as
baselines."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

from ..types import Candidate, ScopeDecision

if TYPE_CHECKING:
    from .calibration import Calibration


@runtime_checkable
class ScopeChecker(Protocol):
    """Decides, per retrieved candidate, whether the edit bears on the query."""

    name: str

    def check(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]: ...

    async def acheck(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]: ...


class CheckerFactory(Protocol):
    """Builds one checker; what :data:`agentedit.scope.CHECKERS` maps a name to.

    Every factory takes the same keywords and uses those its checker needs: ``calibration``
    (None: the shipped default), ``backend`` (the model a judge asks), ``embedder`` (the memory's),
    ``max_edits`` and ``model_dir`` (where a trained checker's model lives).
    """

    def __call__(self, *, calibration: Calibration | None = None, backend: Any = None, embedder: Any = None,
                 max_edits: int = 4, model_dir: str | Path | None = None) -> ScopeChecker: ...


class BaseChecker:
    """Gives every checker an ``acheck`` that runs ``check`` off the event loop."""

    name = "base"

    def check(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]:
        raise NotImplementedError

    async def acheck(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]:
        return await asyncio.to_thread(self.check, query, candidates)

    @staticmethod
    def _cap(decisions: list[ScopeDecision], max_edits: int) -> list[ScopeDecision]:
        """Keep at most ``max_edits`` accepted decisions (in the given order); later ones say why they were dropped."""
        accepted = 0
        for d in decisions:
            if d.in_scope:
                accepted += 1
                if accepted > max_edits:
                    d.in_scope, d.reason = False, d.reason + "; over max_edits"
        return decisions

    def _decide(self, cand: Candidate, ok: bool, reason: str) -> ScopeDecision:
        return ScopeDecision(edit_id=cand.record.id, similarity=cand.similarity, in_scope=ok, checker=self.name, reason=reason)


class TopKChecker(BaseChecker):
    """No scope check: the ``k`` nearest edits always apply (what IKE/"prefix-all" baselines do)."""

    name = "prefix-all"

    def __init__(self, k: int = 1) -> None:
        self.k = k

    def check(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]:
        ranked = sorted(candidates, key=lambda c: -c.similarity)
        return [self._decide(c, i < self.k, f"rank {i + 1}") for i, c in enumerate(ranked)]


class RejectAllChecker(BaseChecker):
    """Every edit is out of scope: the unedited model (the "none" baseline)."""

    name = "none"

    def check(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]:
        return [self._decide(c, False, "edits disabled") for c in candidates]


def prefix_all_factory(*, calibration: Calibration | None = None, backend: Any = None, embedder: Any = None,
                       max_edits: int = 4, model_dir: str | Path | None = None) -> TopKChecker:
    """The ``prefix-all`` baseline: the nearest edit always applies."""
    return TopKChecker(1)


def none_factory(*, calibration: Calibration | None = None, backend: Any = None, embedder: Any = None,
                 max_edits: int = 4, model_dir: str | Path | None = None) -> RejectAllChecker:
    """The ``none`` baseline: no edit ever applies."""
    return RejectAllChecker()
