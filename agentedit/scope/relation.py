"""Relation-aware scope checker: the query must name the edit's subject, and ask its relation.

An edit is in scope when (1) the query mentions the edit's subject (or one of
its ``metadata.aliases``), compared on normalised text, and (2) the query with
the subject masked is similar enough to the edit's relation template with the
subject masked ("The mother tongue of X is" vs "X is a native speaker of").
The second threshold is calibrated with the similarity one. Edits without a
known subject fall back to the plain similarity threshold.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

import numpy as np

from ..memory.embed import Embedder
from ..memory.store import Candidate
from ..types import EditRecord, ScopeDecision
from .base import BaseChecker

MASK = "X"
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalise(text: str) -> str:
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def subject_names(rec: EditRecord) -> list[str]:
    names = [rec.subject] if rec.subject else []
    aliases = rec.metadata.get("aliases") if isinstance(rec.metadata, dict) else None
    if isinstance(aliases, list):
        names.extend(a for a in aliases if isinstance(a, str) and a.strip())
    return names


def find_subject(query: str, names: Sequence[str]) -> str | None:
    """The first of ``names`` the query mentions (whole words, case- and punctuation-insensitive)."""
    q = f" {normalise(query)} "
    for name in names:
        n = normalise(name)
        if n and f" {n} " in q:
            return name
    return None


def mask_subject(text: str, subject: str) -> str:
    """Replace the subject in ``text`` by the mask token, tolerant of case and punctuation."""
    words = [re.escape(w) for w in normalise(subject).split()]
    if not words:
        return text
    pattern = r"(?<!\w)" + r"[\W_]*".join(words) + r"(?!\w)"
    return re.sub(pattern, MASK, text, count=1, flags=re.IGNORECASE)


def relation_text(rec: EditRecord) -> str | None:
    if rec.relation:
        return rec.relation.replace("{}", MASK)
    if rec.subject and rec.prompt:
        return mask_subject(rec.prompt, rec.subject)
    if rec.subject:
        return mask_subject(rec.statement, rec.subject)
    return None


class RelationChecker(BaseChecker):
    """See the module docstring."""

    name = "relation"

    def __init__(self, embedder: Embedder, *, relation_threshold: float, fallback_threshold: float, max_edits: int = 4) -> None:
        self.embedder = embedder
        self.relation_threshold = relation_threshold
        self.fallback_threshold = fallback_threshold
        self.max_edits = max_edits
        self._embed_cached = lru_cache(maxsize=65536)(self._embed_one)

    def _embed_one(self, text: str) -> np.ndarray:
        return self.embedder.embed_one(text)

    def check(self, query: str, candidates: Sequence[Candidate]) -> list[ScopeDecision]:
        out: list[ScopeDecision] = []
        accepted = 0
        for cand in sorted(candidates, key=lambda c: -c.similarity):
            rec = cand.record
            rel = relation_text(rec)
            if rel is None:
                ok = cand.similarity >= self.fallback_threshold
                reason = f"no subject; similarity {cand.similarity:.3f} vs {self.fallback_threshold:.3f}"
            else:
                named = find_subject(query, subject_names(rec))
                if named is None:
                    ok, reason = False, f"query does not name {rec.subject!r}"
                else:
                    rsim = float(self._embed_cached(mask_subject(query, named)) @ self._embed_cached(rel))
                    ok = rsim >= self.relation_threshold
                    reason = f"names {named!r}; relation similarity {rsim:.3f} {'>=' if ok else '<'} {self.relation_threshold:.3f}"
            ok = ok and accepted < self.max_edits
            accepted += ok
            out.append(self._decide(cand, ok, reason))
        return out
