"""Text and subject matching shared by the scope checkers and the multi-hop workflow.

Everything here is pure text work on normalised strings (no model, no store): normalising text
(:func:`normalise`), the spellings that still name a subject (:func:`name_variants`), finding the
subject a query names (:func:`find_subject`), masking it (:func:`mask_subject`, :data:`MASK`), the
clause of a query that asks about it (:func:`query_relation`) and an edit's relation with its
subject masked (:func:`relation_text`). :class:`RelationMatcher` compares relations word by word,
for following chains of edits in multi-hop questions.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Sequence

from ..anatomy.screen import COURTESY_TITLE, sentence_breaks
from ..types import EditRecord
from .names import short_name_in, short_names

MASK = "X"  # what a relation's subject is replaced by

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


# Words that join the parts of a name ("Charles de Gaulle", "Al-Amir bi-Ahkam Allah"), and articles that name nothing alone.
CONNECTORS = frozenset("of de la le du da di del della van von der den ter bi bin bint ibn al el y and the & upon on".split())
_NAME_ARTICLES = frozenset("the la le les el los las il lo der die das den het de du des".split())


def _plain(word: str) -> bool:
    """A lower-case class noun or article around a name ("river", "phone", "the"); name particles ("van", "de") stay."""
    return word.isalpha() and word.islower() and (word in ("the", "a", "an") or word not in CONNECTORS)


_TITLE = re.compile(COURTESY_TITLE, re.IGNORECASE)


def proper_core(name: str) -> str | None:
    """The name inside a subject that carries a class noun or a courtesy title before it, or a class noun after it
    ("river Ostra" -> "Ostra", "Aurora X2 phone" -> "Aurora X2", "Dr. Amara Obi" -> "Amara Obi"), else None. Only
    lower-case words at the ends go (at the end, only after two words or more), and a capitalised word other than an
    article stays."""
    words = name.split()
    lo, hi = 0, len(words)
    while lo < hi and _plain(words[lo]):
        lo += 1
    if hi - lo >= 3 and _TITLE.fullmatch(words[lo]):  # a courtesy title: "Dr. Amara Obi" -> "Amara Obi"
        lo += 1
    while hi > lo and _plain(words[hi - 1]):
        hi -= 1
    if hi < len(words) and hi - lo < 2:
        hi = len(words)  # "Javan surili" is not "Javan": a trailing word goes only from a name of two words or more
    core = words[lo:hi]
    if (lo, hi) == (0, len(words)) or not any(w[:1].isupper() and len(w) >= 3 and w.lower() not in _NAME_ARTICLES
                                               for w in core):
        return None  # "La colombe" keeps its "colombe": "La" alone names nothing
    return " ".join(core)


def name_variants(name: str, *, short_forms: bool = False) -> list[str]:
    """Normalised spellings that still name ``name``: the name itself, without a leading article, without single-letter
    middle initials ("Jose L Castillo" -> "jose castillo"), and with common abbreviations swapped ("Saint Petersburg" ->
    "st petersburg"). With ``short_forms``, also the short forms of :func:`~agentedit.scope.names.short_names` (surname,
    acronym, country adjective), which :func:`find_subject` accepts only when the raw query spells them as a name."""
    base = normalise(name)
    if not base:
        return []
    out = [base]
    for art in _ARTICLES:
        if base.startswith(art) and len(base) > len(art) + 2:
            out.append(base[len(art):])
    core = proper_core(name)
    if core:
        out.append(normalise(core))
    words = base.split()
    if len(words) >= 3 and len(words[0]) > 1 and len(words[-1]) > 1 and any(len(w) == 1 for w in words[1:-1]):
        out.append(" ".join([words[0], *[w for w in words[1:-1] if len(w) > 1], words[-1]]))
    for long, abbr in _ABBREVIATIONS.items():
        for a, b in ((long, abbr), (abbr, long)):
            for v in list(out):
                padded = f" {v} "
                if f" {a} " in padded:
                    out.append(padded.replace(f" {a} ", f" {b} ").strip())
    if short_forms:
        out += [s.normalised for s in short_names(name)]
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
    matter; see :func:`name_variants` for the rest. Full names win over short ones (a surname, an acronym, a country's
    adjective), which must also be spelt as a name in the raw query (:func:`~agentedit.scope.names.short_name_in`).
    """
    q = f" {normalise(query)} "
    for name in names:
        for n in name_variants(name):
            if f" {n} " in q:
                return n
    for name in names:
        for s in short_names(name):
            if f" {s.normalised} " in q and short_name_in(query, s):
                return s.normalised
    return None


def _word_pattern(word: str) -> str:
    if len(word) <= 4 and word.isalpha():  # joined initials ("gl") also match "G.L." and "G. L."
        return r"[\W_]*".join(re.escape(ch) for ch in word)
    return re.escape(word)


def mask_subject(text: str, subject: str, token: str = MASK) -> str:
    """Replace the subject in ``text`` by ``token`` (the mask), tolerant of case, punctuation and diacritics.

    ``subject`` is a name or one of its variants; the text comes back without diacritics.
    """
    words = [_word_pattern(w) for w in normalise(subject).split()]
    if not words:
        return text
    pattern = r"(?<!\w)" + r"(?:['\u2019]s)?[\W_]*".join(words) + r"(?!\w)"  # "Wotquenne's Catalogue" as well
    return re.sub(pattern, lambda _m: token, fold(text), count=1, flags=re.IGNORECASE)


def _sentences(text: str) -> list[str]:
    """``text``'s sentences (:func:`~agentedit.anatomy.screen.sentence_breaks`: "Where was A. Leonard Allen born?" is
    one); generated prompts put unrelated text ending in a dotted acronym ("F.C.") before the question."""
    out, pos = [], 0
    for m in [*sentence_breaks(text, _SENTENCE_END), None]:
        part = text[pos:m.start() if m else len(text)]
        if part.strip():
            out.append(part)
        pos = m.end() if m else pos
    return out


def subject_clause(text: str, subject: str) -> str:
    """The part of ``text`` that asks about ``subject``: the last sentence naming it (drops unrelated lead-in
    sentences) and, when that sentence joins several questions ("..., and which country is Y a citizen of?"),
    the joined clause naming it, if that clause says more than the name."""
    parts = _sentences(text)
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


_PRONOUN = re.compile(r"\b(?:he|she|it|they|him|her|them|his|hers|its|their|this person|that person)\b", re.IGNORECASE)


def query_relations(query: str, subject: str) -> list[str]:
    """Every clause of the query that may ask about ``subject``, subject masked: :func:`query_relation` first, then
    each other clause of the sentence naming it, and a later clause that refers to it by a pronoun ("When was X born,
    and where did he die?" gives "When was X born" and "where did X die")."""
    first = query_relation(query, subject)
    out = [first]
    parts = _sentences(query)
    sentence = next((p for p in reversed(parts) if find_subject(p, [subject])), None)
    if sentence is None:
        return out
    named = False
    for clause in (c for c in _CLAUSE_JOIN.split(sentence) if c and c.strip()):
        if find_subject(clause, [subject]):
            named = True
            masked = mask_subject(clause, subject)
        elif named and _PRONOUN.search(clause):
            masked = _PRONOUN.sub(MASK, fold(clause), count=1)
        else:
            continue
        if masked not in out and len(normalise(masked).split()) >= 2:
            out.append(masked)
    return out


def relation_text(rec: EditRecord) -> str | None:
    """The edit's relation with its subject masked (its template, else its prompt or statement), or None without a subject."""
    if rec.relation:
        return rec.relation.replace("{}", MASK)
    if rec.subject and rec.prompt:
        return mask_subject(rec.prompt, rec.subject)
    if rec.subject:
        return mask_subject(rec.statement, rec.subject)
    return None


_STOP = frozenset("""a an the of in on at to by for from with as is was are were be been has have had what which who whom
whose where when that this it its their his her x called named""".split())


WORD_MATCH = 0.5  # cosine of two words' embeddings above which they name the same relation ("married" ~ "spouse": 0.82)


def content_words(text: str) -> list[str]:
    """The words of ``text`` that say something: no stop words, none under three letters, no numbers."""
    return [w for w in normalise(text).split() if w not in _STOP and len(w) > 2 and not w.isdigit()]


class RelationMatcher:
    """How strongly a question asks an edit's relation, by the words of the relation (subject masked).

    1.0 when a relation word shares its first five letters with a question word ("performed" /
    "performer"); else the best cosine between the embeddings of a relation word and a question
    word ("produced" / "manufacturer" 0.57). Word embeddings are cached for the matcher's life.
    """

    def __init__(self, embedder: Any, question: str) -> None:
        self.embedder = embedder
        self.qwords = sorted(set(content_words(question)))
        self.qstems = {w[:5] for w in self.qwords}
        self._qvecs: Any = None

    def score(self, rec: EditRecord) -> float:
        words = sorted(set(content_words((relation_text(rec) or "").replace(MASK, " "))))
        if not words or not self.qwords:
            return 0.0
        if any(w[:5] in self.qstems for w in words):
            return 1.0
        if self._qvecs is None:
            self._qvecs = self.embedder.embed(self.qwords)
        return float((self.embedder.embed(words) @ self._qvecs.T).max())


__all__ = ["CONNECTORS", "MASK", "RelationMatcher", "WORD_MATCH", "content_words", "find_subject", "fold", "mask_subject",
           "name_variants", "normalise", "proper_core", "query_relation", "query_relations", "relation_text", "subject_clause",
           "subject_names"]
