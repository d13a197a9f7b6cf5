"""The relation checker, clause by clause and with the answer's kind: for questions written the way users write them.

Two things the ``relation`` checker (:mod:`agentedit.scope.relation`) does not do, measured on the user-style
benchmark (``evals/userstyle_bench.py``):

- **joined questions** ("When was X born, and where did he die?"): every clause that names the subject, or refers
  back to it by a pronoun, is compared with the edit's relation (:func:`~agentedit.scope.text.query_relations`),
  and the best clause decides; ``relation`` compares one clause only;
- **the same attribute named**: a clause whose relation similarity falls short of the threshold but reaches
  :data:`AGREEMENT_FLOOR` is accepted when both relations name one attribute of the contrast vocabulary
  (:func:`~agentedit.scope.contrast.shared_attributes`: "What is X's job?" against "X works as", occupation; "Who
  employs X?" against "X works for", employer). Measured in session 13: user-style recall 0.898 -> 0.905 (gold edits),
  0.747 -> 0.771 (statements) with specificity unchanged; CounterFact recall 0.744 -> 0.752 for one locality probe
  (0.989 -> 0.988), wiki_counterfact 0.745 -> 0.749, ZsRE unchanged (1,000 cases each);
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
from .contrast import answer_conflict, relation_conflict, shared_attributes
from .relation import VETO, RelationChecker, build_relation_checker
from .text import find_subject, normalise, query_relations, relation_text
from .views import find_answer_name, masked_role, same_role, views


AGREEMENT_FLOOR = 0.50  # a clause this close that names the edit's attribute counts as asking it


class ClauseRelationChecker(RelationChecker):
    """See the module docstring."""

    name = "relation-clauses"

    def _judged(self, query: str, candidates: Sequence[Candidate]) -> list[tuple[str | None, float | None, str | None]]:
        # per candidate: its relation, its clauses (clause, the view's relation, why ruled out), the name it goes by
        plans: list[tuple[str | None, list[tuple[str, str, str | None]], str | None]] = []
        todo: list[tuple[str, str]] = []
        said = f" {normalise(query)} "
        for cand in candidates:
            rel = relation_text(cand.record)
            clauses: list[tuple[str, str, str | None]] = []
            named = None
            for view in views(cand.record, rel):
                if view.states_answer and f" {normalise(view.answer or '')} " in said:
                    continue  # a question that already says the answer ("..., which is not Y, is") is not asking it
                found = find_subject(query, view.names) if view.role is None else find_answer_name(query, view.names)
                if found is None:
                    continue
                named = named or found
                for clause in query_relations(query, found):
                    # read from the subject's end, the fact's answer follows its relation
                    why = relation_conflict(clause, view.relation) or answer_conflict(
                        clause, view.answer, rel if view.role is None else None)
                    if why is None and view.role is not None and not same_role(masked_role(clause), view.role):
                        # "Who does X employ?" against "Someone employs X": the relation asked of the answer itself
                        why = f"asks about {found!r} as the {masked_role(clause)}, the fact has it as the {view.role}"
                    clauses.append((clause, view.relation, why))
                    if why is None:
                        todo.append((clause, view.relation))
            plans.append((rel, clauses, named))
        scored = dict(zip(todo, self.relation_scores(todo))) if todo else {}
        for key, score in scored.items():  # both name one attribute: "What is X's job?" against "X works as"
            if AGREEMENT_FLOOR <= score < self.threshold and shared_attributes(*key):
                scored[key] = self.threshold
        out: list[tuple[str | None, float | None, str | None]] = []
        for rel, clauses, named in plans:
            if named is None or rel is None:
                out.append((named, None, None))
                continue
            best = max((scored[(c, r)] for c, r, why in clauses if why is None), default=None)
            if best is None:  # every clause ruled out: say why for the first
                out.append((named, VETO, clauses[0][2]))
            else:
                out.append((named, best, None))
        return out


def factory(*, calibration: Calibration | None = None, backend: Any = None, embedder: Any = None, max_edits: int = 4,
            model_dir: str | Path | None = None) -> ClauseRelationChecker:
    """The ``relation-clauses`` checker over the memory's ``embedder``, at the calibration's relation threshold."""
    return build_relation_checker(ClauseRelationChecker, "relation-clauses", calibration=calibration,  # type: ignore[return-value]
                                  embedder=embedder, max_edits=max_edits)


__all__ = ["ClauseRelationChecker", "factory"]
