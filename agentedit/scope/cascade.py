"""Cascade: similarity settles the clear cases, the LLM judge only the ambiguous band."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import ScopeError
from ..types import Candidate, ScopeDecision
from .base import BaseChecker
from .calibration import Calibration, default_calibration
from .judge import JudgeChecker, judge_for


class CascadeChecker(BaseChecker):
    """Reject below ``low``, accept at or above ``high``, ask the judge in between.

    ``low`` and ``high`` come from the calibration's band: ``low`` keeps 99% of
    in-scope training pairs, ``high`` rejects 99.9% of out-of-scope ones.
    """

    name = "cascade"

    def __init__(self, judge: JudgeChecker, *, low: float, high: float, max_edits: int = 4) -> None:
        if low > high:
            raise ScopeError(f"cascade band is empty: low {low:.3f} > high {high:.3f}")
        self.judge = judge
        self.low, self.high = low, high
        self.max_edits = max_edits

    def _partition(self, candidates: Sequence[Candidate]) -> tuple[list[ScopeDecision], list[Candidate]]:
        settled, ambiguous = [], []
        for c in candidates:
            if c.similarity >= self.high:
                settled.append(self._decide(c, True, f"similarity {c.similarity:.3f} >= {self.high:.3f} (clear accept)"))
            elif c.similarity < self.low:
                settled.append(self._decide(c, False, f"similarity {c.similarity:.3f} < {self.low:.3f} (clear reject)"))
            else:
                ambiguous.append(c)
        return settled, ambiguous

    def _merge(self, settled: list[ScopeDecision], judged: list[ScopeDecision]) -> list[ScopeDecision]:
        for d in judged:
            d.checker = self.name
        return self._cap(sorted(settled + judged, key=lambda d: -d.similarity), self.max_edits)

    def check(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]:
        settled, ambiguous = self._partition(candidates)
        return self._merge(settled, self.judge.check(query, ambiguous) if ambiguous else [])

    async def acheck(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]:
        settled, ambiguous = self._partition(candidates)
        return self._merge(settled, await self.judge.acheck(query, ambiguous) if ambiguous else [])


def factory(*, calibration: Calibration | None = None, backend: Any = None, embedder: Any = None, max_edits: int = 4,
            model_dir: str | Path | None = None) -> CascadeChecker:
    """The ``cascade`` checker over the calibration's ambiguous band, ``backend`` judging inside it."""
    cal = calibration or default_calibration()
    return CascadeChecker(judge_for("cascade", cal, backend, max_edits), low=cal.band_low, high=cal.band_high,
                          max_edits=max_edits)
