"""Relation-aware scope checker: the query must name the edit's subject, and ask its relation.

An edit is in scope when (1) the query mentions the edit's subject (or one of
its ``metadata.aliases``), compared on normalised text, and (2) the sentence of
the query that names the subject, with the subject masked, is similar enough
to the edit's relation template with the subject masked ("The mother tongue of
X is" vs "X is a native speaker of"). The relation threshold is calibrated with
the similarity one (see :func:`agentedit.scope.similarity.calibrate_similarity`).
Edits without a known subject fall back to the plain similarity threshold.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from typing import Sequence

import numpy as np

from ..memory.embed import Embedder
from ..types import Candidate, EditRecord, ScopeDecision
from .base import BaseChecker
from .contrast import MASK, relation_conflict

_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
# Where one sentence joins two questions: ", and ...", "; ...", or "and" before a new question word.
_CLAUSE_JOIN = re.compile(
    r"\s*[,;]\s*(?:and|or|but|while)\s+|\s*;\s*"
    r"|\s+(?:and|or|but)\s+(?=(?:what|which|who|whom|whose|where|when|how|is|are|was|were|does|do|did|can)\b)",
    re.IGNORECASE)
_INITIALS = re.compile(r"\b(?:[^\W\d_] ){1,}[^\W\d_]\b")  # "j r r" -> "jrr" (after normalisation)
_ARTICLES = ("the ", "a ", "an ")
# Common abbreviations, matched as whole normalised words in either direction.
_ABBREVIATIONS = {
    "saint": "st", "mount": "mt", "fort": "ft", "doctor": "dr", "company": "co", "corporation": "corp",
    "incorporated": "inc", "limited": "ltd", "university": "univ", "international": "intl", "association": "assn",
    "department": "dept", "brothers": "bros", "and": "&", "united states": "us", "united states of america": "usa",
    "united kingdom": "uk", "football club": "fc", "junior": "jr", "senior": "sr",
}


def fold(text: str) -> str:
    """``text`` without diacritics ("Martín Rössler" -> "Martin Rossler")."""
    if text.isascii():
        return text
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def normalise(text: str) -> str:
    """Lower case, no diacritics or punctuation, single spaces, runs of initials joined ("G. L. Defer" -> "gl defer")."""
    words = " ".join(_NON_WORD.sub(" ", fold(text).lower().replace("_", " ")).split())
    return _INITIALS.sub(lambda m: m.group(0).replace(" ", ""), words)


def name_variants(name: str) -> list[str]:
    """Normalised spellings that still name ``name``: the name itself, without a leading article, without single-letter
    middle initials ("Jose L Castillo" -> "jose castillo"), and with common abbreviations swapped ("Saint Petersburg" ->
    "st petersburg")."""
    base = normalise(name)
    if not base:
        return []
    out = [base]
    for art in _ARTICLES:
        if base.startswith(art) and len(base) > len(art) + 2:
            out.append(base[len(art):])
    words = base.split()
    if len(words) >= 3 and len(words[0]) > 1 and len(words[-1]) > 1 and any(len(w) == 1 for w in words[1:-1]):
        out.append(" ".join([words[0], *[w for w in words[1:-1] if len(w) > 1], words[-1]]))
    for long, short in _ABBREVIATIONS.items():
        for a, b in ((long, short), (short, long)):
            for v in list(out):
                padded = f" {v} "
                if f" {a} " in padded:
                    out.append(padded.replace(f" {a} ", f" {b} ").strip())
    seen: list[str] = []
    for v in out:
        if v and v not in seen and len(v) >= 2:
            seen.append(v)
    return seen


def subject_names(rec: EditRecord) -> list[str]:
    """The edit's subject and its user-given ``metadata.aliases`` (each matched with its automatic variants)."""
    names = [rec.subject] if rec.subject else []
    aliases = rec.metadata.get("aliases") if isinstance(rec.metadata, dict) else None
    if isinstance(aliases, list):
        names.extend(a for a in aliases if isinstance(a, str) and a.strip())
    return names


def find_subject(query: str, names: Sequence[str]) -> str | None:
    """The spelling (a normalised variant of one of ``names``) the query uses for the subject, else None.

    Matching is on whole words of the normalised texts, so case, punctuation, diacritics and possessives do not
    matter; see :func:`name_variants` for the rest.
    """
    q = f" {normalise(query)} "
    for name in names:
        for n in name_variants(name):
            if f" {n} " in q:
                return n
    return None


def _word_pattern(word: str) -> str:
    if len(word) <= 4 and word.isalpha():  # joined initials ("gl") also match "G.L." and "G. L."
        return r"[\W_]*".join(re.escape(ch) for ch in word)
    return re.escape(word)


def mask_subject(text: str, subject: str) -> str:
    """Replace the subject in ``text`` by the mask token, tolerant of case, punctuation and diacritics.

    ``subject`` is a name or one of its variants; the text comes back without diacritics.
    """
    words = [_word_pattern(w) for w in normalise(subject).split()]
    if not words:
        return text
    pattern = r"(?<!\w)" + r"[\W_]*".join(words) + r"(?!\w)"
    return re.sub(pattern, MASK, fold(text), count=1, flags=re.IGNORECASE)


def subject_clause(text: str, subject: str) -> str:
    """The part of ``text`` that asks about ``subject``: the last sentence naming it (drops unrelated lead-in
    sentences) and, when that sentence joins several questions ("..., and which country is Y a citizen of?"),
    the joined clause naming it, if that clause says more than the name."""
    parts = [p for p in _SENTENCE_END.split(text) if p.strip()]
    sentence = next((p for p in reversed(parts) if find_subject(p, [subject])), text)
    clauses = [c for c in _CLAUSE_JOIN.split(sentence) if c and c.strip()]
    if len(clauses) > 1:
        for clause in clauses:
            if find_subject(clause, [subject]) and len(normalise(clause).split()) >= len(normalise(subject).split()) + 2:
                return clause
    return sentence


def query_relation(query: str, subject: str) -> str:
    """What the query asks about ``subject``: its clause naming the subject, subject masked."""
    return mask_subject(subject_clause(query, subject), subject)


def relation_text(rec: EditRecord) -> str | None:
    if rec.relation:
        return rec.relation.replace("{}", MASK)
    if rec.subject and rec.prompt:
        return mask_subject(rec.prompt, rec.subject)
    if rec.subject:
        return mask_subject(rec.statement, rec.subject)
    return None


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
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def relation_threshold(self) -> float:
        return self.threshold

    def _vectors(self, texts: set[str]) -> dict[str, np.ndarray]:
        """Embeddings of ``texts``, computing the missing ones in one batch."""
        with self._lock:
            have = {t: self._cache[t] for t in texts if t in self._cache}
        missing = sorted(texts - set(have))
        if missing:
            for t, v in zip(missing, self.embedder.embed(missing)):
                have[t] = v
            with self._lock:
                for t in missing:
                    self._cache[t] = have[t]
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return have

    def relation_scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        vecs = self._vectors({t for pair in pairs for t in pair})
        return [float(vecs[q] @ vecs[rel]) for q, rel in pairs]
