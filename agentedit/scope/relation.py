"""Relation-aware scope checker: the query must name the edit's subject, and ask its relation.

An edit is in scope when (1) the query mentions the edit's subject (or one of
its ``metadata.aliases``), compared on normalised text, and (2) the sentence of
the query that names the subject, with the subject masked, is similar enough
to the edit's relation template with the subject masked ("The mother tongue of
X is" vs "X is a native speaker of"). The relation threshold is calibrated with
the similarity one (see :func:`agentedit.scope.calibration.calibrate_similarity`).
Edits without a known subject fall back to the plain similarity threshold. The text
matching itself lives in :mod:`agentedit.scope.text`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from ..memory.embed import Embedder
from ..types import Candidate, ScopeDecision
from .base import BaseChecker
from .calibration import Calibration, default_calibration
from .contrast import relation_conflict
from .text import find_subject, query_relation, relation_text, subject_names
from .vectors import VectorCache

VETO = -2.0  # the score of a pair that :func:`~agentedit.scope.contrast.relation_conflict` rules out
Plan = tuple[str | None, str | None, str | None]  # (edit relation, subject spelling in the query, query relation)


class SubjectGatedChecker(BaseChecker):
    """The shared decision of the structural checkers: the query must name the edit's subject, and a relation score
    of the query's clause against the edit's relation (both subject-masked) must reach ``threshold``. Edits without a
    subject fall back to plain similarity. Subclasses say how the relation is scored (:meth:`relation_scores`)."""

    score_name = "relation score"
    threshold: float
    fallback_threshold: float
    max_edits: int

    @staticmethod
    def plans(query: str, candidates: Sequence[Candidate]) -> list[Plan]:
        out: list[Plan] = []
        for cand in candidates:
            rel = relation_text(cand.record)
            named = find_subject(query, subject_names(cand.record)) if rel is not None else None
            out.append((rel, named, query_relation(query, named) if named else None))
        return out

    def relation_scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Scores of (query relation, edit relation) pairs, higher meaning the query asks that relation."""
        raise NotImplementedError

    def scores(self, query: str, candidates: Sequence[Candidate]) -> list[tuple[str | None, float | None]]:
        """Per candidate: the subject spelling the query uses (None if absent) and the relation score."""
        return [(named, score) for named, score, _ in self._judged(query, candidates)]

    def _judged(self, query: str, candidates: Sequence[Candidate]) -> list[tuple[str | None, float | None, str | None]]:
        """:meth:`scores` plus, for a vetoed pair, why it was ruled out."""
        plans = self.plans(query, candidates)
        todo = [(i, q, rel) for i, (rel, _, q) in enumerate(plans) if q is not None and rel is not None]
        # "mother" against "father", "follows" against "is followed by": ruled out before any scoring
        vetoes = {i: why for i, q, rel in todo if (why := relation_conflict(q, rel))}
        todo = [t for t in todo if t[0] not in vetoes]
        by_index: dict[int, float] = {i: VETO for i in vetoes}
        by_index.update(zip((i for i, _, _ in todo), self.relation_scores([(q, rel) for _, q, rel in todo]) if todo else []))
        return [(named, by_index.get(i), vetoes.get(i)) for i, (_, named, _) in enumerate(plans)]

    def check(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]:
        ranked = sorted(candidates, key=lambda c: -c.similarity)
        out: list[ScopeDecision] = []
        for cand, (named, score, veto) in zip(ranked, self._judged(query, ranked)):
            if relation_text(cand.record) is None:
                ok = cand.similarity >= self.fallback_threshold
                reason = f"no subject; similarity {cand.similarity:.3f} vs {self.fallback_threshold:.3f}"
            elif named is None or score is None:
                ok, reason = False, f"query does not name {cand.record.subject!r}"
            elif veto is not None:
                ok, reason = False, f"names {named!r}; {veto}"
            else:
                ok = score >= self.threshold
                reason = f"names {named!r}; {self.score_name} {score:.3f} {'>=' if ok else '<'} {self.threshold:.3f}"
            out.append(self._decide(cand, ok, reason))
        return self._cap(out, self.max_edits)


class RelationChecker(SubjectGatedChecker):
    """See the module docstring: the relation is scored by embedding similarity."""

    name = "relation"
    score_name = "relation similarity"

    def __init__(self, embedder: Embedder, *, relation_threshold: float, fallback_threshold: float, max_edits: int = 4,
                 cache_size: int = 65536) -> None:
        self.embedder = embedder
        self.threshold = relation_threshold
        self.fallback_threshold = fallback_threshold
        self.max_edits = max_edits
        self._vecs = VectorCache(embedder, cache_size)

    @property
    def relation_threshold(self) -> float:
        return self.threshold

    def _vectors(self, texts: set[str]) -> dict[str, np.ndarray]:
        """Embeddings of ``texts``, computing the missing ones in one batch."""
        return self._vecs.get(texts)

    def relation_scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        vecs = self._vectors({t for pair in pairs for t in pair})
        return [float(vecs[q] @ vecs[rel]) for q, rel in pairs]


def build_relation_checker(cls: type[RelationChecker], name: str, *, calibration: Calibration | None, embedder: Any,
                           max_edits: int) -> RelationChecker:
    """A relation-similarity checker of class ``cls`` over the memory's ``embedder``, at the calibration's thresholds."""
    cal = calibration or default_calibration()
    if embedder is None:
        raise ConfigError(f"the {name!r} scope checker needs the memory's embedder")
    return cls(embedder, relation_threshold=cal.relation_threshold, fallback_threshold=cal.threshold, max_edits=max_edits)


def factory(*, calibration: Calibration | None = None, backend: Any = None, embedder: Any = None, max_edits: int = 4,
            model_dir: str | Path | None = None) -> RelationChecker:
    """The ``relation`` checker over the memory's ``embedder``, at the calibration's relation threshold."""
    return build_relation_checker(RelationChecker, "relation", calibration=calibration, embedder=embedder,
                                  max_edits=max_edits)
