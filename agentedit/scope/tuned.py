"""The ``trained`` checker over a tuned relation encoder (``agentedit train-scope --kind encoder``).

The decision is the ``relation-clauses`` checker's (:mod:`agentedit.scope.clauses`): the subject gate with short names,
every clause of a joined question, the contrast and answer-kind vetoes. Only the relation score differs: the cosine of
the clause and the edit's relation (both subject-masked) under the encoder tuned on the training file
(:mod:`agentedit.scope.encoder_training`), against the threshold calibrated with it. The memory's own embedder, which
retrieves edits, is untouched: the tuned encoder is a second model, loaded from the store's ``scope-model`` folder (the
ONNX runtime by default, like the memory's).
"""

from __future__ import annotations

from pathlib import Path

from ..memory.embed import Embedder
from .clauses import ClauseRelationChecker
from .trained import TrainingReport


class TunedRelationChecker(ClauseRelationChecker):
    """See the module docstring."""

    name = "trained"
    score_name = "tuned relation similarity"

    def __init__(self, model_dir: str | Path, report: TrainingReport, *, fallback_threshold: float,
                 threshold: float | None = None, max_edits: int = 4) -> None:
        super().__init__(Embedder(str(model_dir)), relation_threshold=report.threshold if threshold is None else threshold,
                         fallback_threshold=fallback_threshold, max_edits=max_edits)
        self.report = report


__all__ = ["TunedRelationChecker"]
