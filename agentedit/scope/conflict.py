"""Do two edits state the same fact? The match the store's conflict policy and the query-time tie-break use.

Two edits are about the same fact when they name the same subject and ask the same relation, matched the way
the scope check matches a query to an edit (not by identical template):

- **subject**: some spelling of one edit's subject or aliases (:func:`~.text.subject_names`, with the automatic
  variants of :func:`~.text.name_variants`) is a spelling of the other's ("Acme Corporation" = "Acme Corp");
- **relation**: the cosine of the two subject-masked relations (:func:`~.text.relation_text`, MiniLM, as the
  ``relation`` checker scores a query's clause), unless the contrast veto (:func:`~.contrast.relation_conflict`)
  rules the pair out ("mother" against "father").

A score at or above :attr:`ConflictMatcher.supersede_at` is a correction (the newer edit supersedes the older);
one in ``[conflict_at, supersede_at)`` is uncertain: both stay active and the write reports a possible conflict.
By default ``conflict_at`` is the relation checker's calibrated threshold (a query clause that close counts as
asking the edit's relation) and ``supersede_at`` is the higher of that and :data:`SUPERSEDE_FLOOR`: on CounterFact
templates (``evals/conflict_thresholds.py``: 265 templates, 24 recovered relations) 9.6% of pairs of *different*
relations reach the checker's 0.639, 0.25% reach 0.80, so superseding at the checker's threshold would retire
one of two unrelated facts of a subject about one time in ten.

A statement that says it corrects something (:func:`~agentedit.anatomy.correction_cue`: "Correction: ...", "X's
email is now ...") supersedes its best same-subject match at :data:`CORRECTION_FLOOR` or above (not vetoed): the
user has said which way the uncertainty goes. The write's reply names what it superseded, and history keeps it.

The relation vectors are cached, so the store computes them before its write transaction opens
(:meth:`ConflictMatcher.prepare`) and the re-check inside the transaction is text work and dot products.
"""

from __future__ import annotations

from typing import Callable, Iterable, Literal, Sequence

import numpy as np

from ..anatomy import correction_cue
from ..memory.embed import Embedder
from ..types import Candidate, ConflictMatch, EditRecord, ScopeDecision
from .contrast import relation_conflict
from .text import name_variants, relation_text, subject_names
from .views import masked_role, same_role, views
from .vectors import VectorCache

CORRECTION_FLOOR = 0.50  # a statement marked as a correction supersedes its best same-subject match from here
SUPERSEDE_FLOOR = 0.80  # template-vs-template cosine above which different relations are rare (0.25% on CounterFact)


def same_subject(a: EditRecord, b: EditRecord) -> str | None:
    """A normalised spelling both edits' subjects (or aliases) share, else None."""
    if not a.subject or not b.subject:
        return None
    left = {v for n in subject_names(a) for v in name_variants(n)}
    return next((v for n in subject_names(b) for v in name_variants(n) if v in left), None)


End = tuple[frozenset[str], str, str | None]  # (spellings of the end's name, the relation read from it, its role)


def fact_ends(rec: EditRecord) -> list[End]:
    """The ends a fact can be read from, as the scope check reads them (:func:`~.views.views`, without the reading that
    repeats the answer): its subject's (role None), and its answer's when the answer is a name, with the role the
    answer has: "Roden Buxton is the dad of Gao Yifeng" is also a fact about Gao Yifeng ("Someone is the dad of X",
    holder), which "Gao Yifeng's father is Niitabe" corrects."""
    if not rec.subject:
        return []
    return [(frozenset(v for n in view.names for v in name_variants(n)), view.relation, view.role)
            for view in views(rec, relation_text(rec)) if not view.states_answer]


def _pairs(a: EditRecord, b: EditRecord) -> list[tuple[str, str, str, bool]]:
    """(shared spelling, a's relation, b's relation, across ends) for each pair of ends that name one thing and read
    it the same way round: subject with subject as before; an answer's end only with a subject's end that gives the
    name the same role ("Someone is the dad of X" with "X's father is", not with "X is the dad of")."""
    out: list[tuple[str, str, str, bool]] = []
    for names_a, rel_a, role_a in fact_ends(a):
        for names_b, rel_b, role_b in fact_ends(b):
            shared = names_a & names_b
            if not shared:
                continue
            if role_a is None and role_b is None:
                out.append((min(shared, key=len), rel_a, rel_b, False))
            elif (role_a is None or role_b is None) and same_role(role_a or masked_role(rel_a), role_b or masked_role(rel_b)):
                # never two answers' ends: "Someone speaks X" holds for many people ("A speaks Italian" and "B speaks
                # Italian" are two facts); a subject's reading asks for one value
                out.append((min(shared, key=len), rel_a, rel_b, True))
    return out


class ConflictMatcher:
    """Scores pairs of edits as the same fact (see the module docstring); thread-safe, with a vector cache."""

    def __init__(self, embedder: Embedder, *, conflict_at: float, supersede_at: float | None = None,
                 cache_size: int = 65536) -> None:
        self.embedder = embedder
        self.conflict_at = conflict_at
        self.supersede_at = max(conflict_at, SUPERSEDE_FLOOR) if supersede_at is None else supersede_at
        self._vecs = VectorCache(embedder, cache_size)

    def _vectors(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        return self._vecs.get(texts)

    def prepare(self, records: Iterable[EditRecord]) -> None:
        """Embed the relations of ``records`` now (before a write transaction), so :meth:`match` need not."""
        self._vectors(rel for rec in records for _, rel, _ in fact_ends(rec))

    def score(self, a: EditRecord, b: EditRecord) -> tuple[float, str] | None:
        """(relation score, why) when the two are about one thing read the same way round (the same subject, or one's
        answer as the other's subject or answer: :func:`fact_ends`), else None; a vetoed pair scores -1."""
        pairs = _pairs(a, b)
        if not pairs:
            return None
        spelled = pairs[0][0]
        if a.conflict_key is not None and a.conflict_key == b.conflict_key:
            return 1.0, f"same subject {spelled!r} and relation {a.relation!r}"
        best: tuple[float, str] | None = None
        for spelled, ra, rb, across in pairs:
            where = f"{spelled!r}, named by {'the other end of the fact' if across else 'both subjects'}"
            veto = relation_conflict(ra, rb)
            if veto is not None:
                found = (-1.0, f"same subject {where}; {veto}")
            else:
                vecs = self._vectors([ra, rb])
                sim = float(vecs[ra] @ vecs[rb])
                found = (sim, f"same subject {where}; relation similarity {sim:.3f} ({ra!r} ~ {rb!r})")
            if best is None or found[0] > best[0]:
                best = found
        return best

    def same_fact(self, newer: EditRecord, older: EditRecord) -> str | None:
        """Why only the newer of two edits may reach the model when a query accepts both, or None: the same conflict
        key, or a relation match at ``conflict_at`` or above (what the store would supersede or report as a
        possible conflict)."""
        if newer.conflict_key is not None and newer.conflict_key == older.conflict_key:
            return "same relation"
        scored = self.score(newer, older)
        return scored[1] if scored is not None and scored[0] >= self.conflict_at else None

    def match(self, rec: EditRecord, others: Sequence[EditRecord]) -> list[ConflictMatch]:
        """The edits of ``others`` (other ids) that ``rec`` supersedes or possibly conflicts with, best first."""
        cue = correction_cue(rec.statement) if rec.statement else None
        scored = [(other, s) for other in others if not (other.id == rec.id and other.namespace == rec.namespace)
                  and (s := self.score(rec, other)) is not None]
        marked = max((x for x in scored if x[1][0] >= CORRECTION_FLOOR), key=lambda x: x[1][0], default=None) \
            if cue else None
        out: list[ConflictMatch] = []
        for other, (score, reason) in scored:
            kind: Literal["supersede", "conflict"]
            if marked is not None and other is marked[0] and score < self.supersede_at:
                kind, why = "supersede", (f"{reason} >= {CORRECTION_FLOOR:.2f}, the best match of a statement marked "
                                          f"as a correction ({cue!r})")
            elif score < self.conflict_at:
                continue
            else:
                kind = "supersede" if score >= self.supersede_at else "conflict"
                why = reason + (f" >= {self.supersede_at:.3f}" if kind == "supersede" else
                                f" in [{self.conflict_at:.3f}, {self.supersede_at:.3f}): possibly the same fact")
            # the superseded edit's questions pass on when it names the subject as its subject (its relation, even
            # when identical under another spelling of the subject, carries the chain of its own ``also_asks``)
            carried = other.relation if kind == "supersede" and other.relation and same_subject(rec, other) else None
            out.append(ConflictMatch(edit_id=other.id, score=round(score, 4), kind=kind, reason=why, relation=carried))
        return sorted(out, key=lambda m: -m.score)


def newest_wins(decisions: list[ScopeDecision], candidates: Sequence[Candidate], matcher: ConflictMatcher | None,
                kept_apart: Callable[[Sequence[str]], set[frozenset[str]]] | None = None) -> list[ScopeDecision]:
    """Of two in-scope edits stating the same fact, only the newer reaches the model; the older's decision turns out
    of scope, saying by which edit and why. The same fact: the same conflict key, or a relation match at
    ``conflict_at`` or above: two edits of one subject that the query asks, and whose relations the store would
    report as a possible conflict (or supersede), answer one question with two values, and the newer is the
    correction (a write in the uncertain band keeps both active for a person to settle, not for the model to pick).
    Pairs ``kept_apart`` gives for the accepted ids (a conflict resolved "kept both") are two facts and both pass."""
    by_id = {c.record.id: c.record for c in candidates}
    accepted = sorted((by_id[d.edit_id] for d in decisions if d.in_scope and d.edit_id in by_id),
                      key=lambda r: (r.created_at, r.id), reverse=True)
    beaten: dict[str, str] = {}
    apart = kept_apart([r.id for r in accepted]) if kept_apart is not None and len(accepted) > 1 else set()
    for i, newer in enumerate(accepted):
        if newer.id in beaten:
            continue
        for older in accepted[i + 1:]:
            if older.id in beaten or frozenset((newer.id, older.id)) in apart:
                continue
            if matcher is not None:
                why = matcher.same_fact(newer, older)
            else:
                why = "same relation" if newer.conflict_key is not None and newer.conflict_key == older.conflict_key \
                    else None
            if why is not None:
                beaten[older.id] = f"{newer.id} ({why})"
    for d in decisions:
        if d.edit_id in beaten and d.in_scope:
            d.in_scope, d.reason = False, f"{d.reason}; superseded at query time by {beaten[d.edit_id]}"
    return decisions


__all__ = ["CORRECTION_FLOOR", "ConflictMatcher", "SUPERSEDE_FLOOR", "fact_ends", "newest_wins", "same_subject"]
