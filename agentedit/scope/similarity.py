"""Similarity-threshold scope checker: in scope when cosine similarity reaches the calibrated threshold.

The threshold comes from :mod:`agentedit.scope.calibration` (the store's saved calibration, else
the shipped default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import ScopeError
from ..types import Candidate, ScopeDecision
from .base import BaseChecker
from .calibration import Calibration, default_calibration


class SimilarityChecker(BaseChecker):
    """In scope when cosine similarity >= a calibrated threshold."""

    name = "similarity"

    def __init__(self, threshold: float, *, max_edits: int = 4) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ScopeError(f"similarity threshold must be in [-1, 1], got {threshold}")
        self.threshold = threshold
        self.max_edits = max_edits

    def check(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]:
        out = []
        accepted = 0
        for cand in sorted(candidates, key=lambda c: -c.similarity):
            ok = cand.similarity >= self.threshold and accepted < self.max_edits
            accepted += ok
            rel = ">=" if cand.similarity >= self.threshold else "<"
            out.append(self._decide(cand, ok, f"similarity {cand.similarity:.3f} {rel} {self.threshold:.3f}"))
        return out


def factory(*, calibration: Calibration | None = None, backend: Any = None, embedder: Any = None, max_edits: int = 4,
            model_dir: str | Path | None = None) -> SimilarityChecker:
    """The ``similarity`` checker at the calibration's threshold."""
    return SimilarityChecker((calibration or default_calibration()).threshold, max_edits=max_edits)
