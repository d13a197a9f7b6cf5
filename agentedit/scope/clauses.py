"""The relation checker, clause by clause and with the answer's kind: for questions written the way users write them.

Two things the ``relation`` checker (:mod:`agentedit.scope.relation`) does not do, measured on the user-style
benchmark (``evals/userstyle_bench.py``):

- **joined questions** ("When was X born, and where did he die?"): every clause that names the subject, or refers
  back to it by a pronoun, is compared with the edit's relation (:func:`~agentedit.scope.text.query_relations`),
  and the best clause decides; ``relation`` compares one clause only;
- **the kind of answer**: a clause that asks for a time, an amount, a place or a person is not answered by an edit
  whose target cannot be one (:func:`~agentedit.scope.contrast.answer_conflict`): "When did X die?" against the edit
  "X died in Paris".

The subject gate (with the short names of :mod:`agentedit.scope.names`), the contrast veto and the relation
similarity with its calibrated threshold are the ``relation`` checker's. Both rules only need the candidate's
record, so they could move into :class:`~agentedit.scope.relation.SubjectGatedChecker` for every structural
checker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..types import Candidate
from .calibration import Calibration
from .contrast import answer_conflict, relation_conflict
from .relation import VETO, RelationChecker, build_relation_checker
from .text import find_subject, query_relations, relation_text, subject_names


class ClauseRelationChecker(RelationChecker):
    """See the module docstring."""

    name = "relation-clauses"

    def _judged(self, query: str, candidates: Sequence[Candidate]) -> list[tuple[str | None, float | None, str | None]]:
        plans: list[tuple[str | None, list[tuple[str, str | None]], str | None]] = []
        todo: list[tuple[str, str]] = []
        for cand in candidates:
            rel = relation_text(cand.record)
            named = find_subject(query, subject_names(cand.record)) if rel is not None else None
            clauses: list[tuple[str, str | None]] = []
            if named is not None and rel is not None:
                for clause in query_relations(query, named):
                    why = relation_conflict(clause, rel) or answer_conflict(clause, cand.record.target_new)
                    clauses.append((clause, why))
                    if why is None:
                        todo.append((clause, rel))
            plans.append((rel, clauses, named))
        scored = dict(zip(todo, self.relation_scores(todo))) if todo else {}
        out: list[tuple[str | None, float | None, str | None]] = []
        for rel, clauses, named in plans:
            if named is None or rel is None:
                out.append((named, None, None))
                continue
            best = max((scored[(c, rel)] for c, why in clauses if why is None), default=None)
            if best is None:  # every clause ruled out: say why for the first
                out.append((named, VETO, clauses[0][1]))
            else:
                out.append((named, best, None))
        return out


def factory(*, calibration: Calibration | None = None, backend: Any = None, embedder: Any = None, max_edits: int = 4,
            model_dir: str | Path | None = None) -> ClauseRelationChecker:
    """The ``relation-clauses`` checker over the memory's ``embedder``, at the calibration's relation threshold."""
    return build_relation_checker(ClauseRelationChecker, "relation-clauses", calibration=calibration,  # type: ignore[return-value]
                                  embedder=embedder, max_edits=max_edits)


__all__ = ["ClauseRelationChecker", "factory"]
