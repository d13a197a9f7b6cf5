"""The readings of an edit's fact that a question may ask (:func:`views`): from the subject's end, with the answer
after a relation that says little, and from the answer's end when the answer is a name (its role in the fact:
:func:`masked_role`). The subject and relation matching they build on is :mod:`agentedit.scope.text`."""

from __future__ import annotations

import re
from typing import NamedTuple, Sequence

from ..records import also_asks
from ..types import EditRecord
from .names import short_name_in, short_names
from .text import CONNECTORS, MASK, content_words, fold, mask_subject, name_variants, normalise, subject_names


# The fact read from its answer's end ("Google employs Alan Sugar", asked "Who employs Alan Sugar?"): the answer is
# masked and the subject, now what is asked for, becomes this word ("Someone employs X").
ASKED_END = "Someone"


# A name's word that starts in lower case: an inner capital after 1-3 letters ("iWork", "eBay") or a particle ("al-Amir").
_LOWER_NAME = re.compile(r"[a-z]{1,4}-[A-Z]|[a-z]{1,3}[A-Z]")


def _name_word(word: str) -> bool:
    return word[:1].isupper() or bool(_LOWER_NAME.match(word))


def answer_names(rec: EditRecord) -> list[str]:
    """The edit's answer, when it is a name a question could be about ("Google", "the Baltic Sea", "Al-Amir bi-Ahkam
    Allah", "iWork"): at most eight words, each a name's word, a connector ("of", "van", "bi") or not a word; not a
    number, not the subject. Else []."""
    target = (rec.target_new or "").strip(" .,;:!?\"'")
    words = target.split()
    if words and words[0].lower() in ("the", "a", "an"):
        words = words[1:]
    if not words or len(words) > 8 or not _name_word(words[0]) or not any(w[:1].isalpha() for w in words):
        return []
    head = words
    # "the Solberg concert hall", "the Ashgrove series": a name with a common head noun or two after it
    while len(head) > 1 and len(words) - len(head) < 2 and head[-1].isalpha() and head[-1].islower() \
            and head[-1] not in CONNECTORS and _name_word(head[0]):
        head = head[:-1]
    if not all(_name_word(w) or w.lower() in CONNECTORS or not w[:1].isalpha() for w in head):
        return []
    name = " ".join(words)
    if rec.subject and normalise(name) in (normalise(rec.subject), ""):
        return []
    return [name]


def with_answer(relation: str, rec: EditRecord) -> str | None:
    """The relation with the edit's answer after it ("X holds Cuba citizenship"), when the relation alone says at most
    one content word ("X holds", "X received", "X, the"): the answer then carries what is asked; else None."""
    target = (rec.target_new or "").strip()
    if not target or len(content_words(relation.replace(MASK, " "))) > 1:
        return None
    return f"{relation.rstrip()} {target}"


def find_whole_name(query: str, names: Sequence[str]) -> str | None:
    """The spelling of one of ``names`` the query uses as a whole name, else None: its full name (no surnames, acronyms
    or country adjectives), not inside a longer capitalised name ("CBS" is not named by "CBS News debuted on")."""
    words = [re.sub(r"'s?$", "", w) for w in re.findall(r"[\w'-]+", fold(query))]
    # a word may normalise to several ("DC-9" -> "dc 9"): a name is matched on the normalised pieces, and must start
    # and end on a word's edges
    pieces: list[tuple[str, int, bool, bool]] = []  # (piece, its word, first piece of the word, last piece of it)
    for i, w in enumerate(words):
        parts = normalise(w).split()
        pieces += [(p, i, j == 0, j == len(parts) - 1) for j, p in enumerate(parts)]
    for name in names:
        for variant in name_variants(name):
            size = len(variant.split())
            for k in range(len(pieces) - size + 1):
                span = pieces[k:k + size]
                if " ".join(p for p, *_ in span) != variant or not span[0][2] or not span[-1][3]:
                    continue
                i, j = span[0][1], span[-1][1]
                before = words[i - 1] if i > 0 else ""
                after = words[j + 1] if j + 1 < len(words) else ""
                if not (before[:1].isupper() and i > 1 and before.lower() not in CONNECTORS) and not after[:1].isupper():
                    return variant
    return None


def find_answer_name(query: str, names: Sequence[str]) -> str | None:
    """How the query names the answer of a fact read from its answer's end: its whole name (:func:`find_whole_name`),
    or a person's surname spelt as a name ("Who is Yifeng's dad?" for "Roden Buxton is the dad of Gao Yifeng"); the
    role the question gives it must still be the fact's (:func:`same_role`). Acronyms and country adjectives are not
    taken: an answer's end has no subject gate of its own."""
    if (found := find_whole_name(query, names)) is not None:
        return found
    for name in names:
        for short in short_names(name):
            if short.kind == "surname" and short_name_in(query, short):
                return short.normalised
    return None


_HOLDER = re.compile(rf"\b{MASK}'s?\b|\b{MASK}'(?!\w)|\bof (?:the |a |an )?{MASK}\b")
_FINAL = re.compile(rf"\b{MASK}\W*$")
_COPULA_FINAL = re.compile(rf"\b(?:is|was|are|were|be|been)\s+{MASK}\W*$", re.IGNORECASE)  # "Whose father is X?"


# The passive's subject is what the act was done to ("X was written by" = "Someone wrote X"); a name inside a place
# phrase before the rest is what the rest is about ("People in X speak" = "the language of X").
_PASSIVE_SUBJECT = re.compile(rf"^\W*{MASK}\s+(?:is|was|are|were|has been|have been|had been|will be|gets|got)\s+"
                              rf"(?:\w+ly\s+)?\w+\s+by\b", re.IGNORECASE)
_PLACE_HOLDER = re.compile(rf"\b(?:in|at|within|inside|across|throughout)\s+(?:the\s+)?{MASK}\b(?!\W*$)", re.IGNORECASE)


def masked_role(text: str) -> str:
    """Where the masked name sits in ``text``: ``holder`` ("X's father", "the father of X", "people in X speak"),
    ``object`` (last, after the verb or preposition: "Who employs X?"; or the passive's subject: "X was written by"),
    ``complement`` (last, after a copula: "Whose father is X?", "Someone's father is X": X is the father) or ``other``
    ("Who does X employ?"). A fact read from its answer's end is asked only by a question that gives the answer the
    same part (:func:`same_role`)."""
    if _HOLDER.search(text):
        return "holder"
    if _FINAL.search(text) and not re.match(rf"^\W*{MASK}\W*$", text):
        return "complement" if _COPULA_FINAL.search(text) else "object"
    if _PASSIVE_SUBJECT.search(text):
        return "object"
    if _PLACE_HOLDER.search(text):
        return "holder"
    return "other"


def same_role(a: str, b: str) -> bool:
    """Whether two :func:`masked_role` results give the name the same part in its fact: a holder and an object are
    both what the fact is about ("the dad of X" and "Who fathered X?", "X's employer" and "Who employs X?"); the
    other roles match only themselves."""
    about = ("holder", "object")
    return a == b or (a in about and b in about)


def answer_relation(rec: EditRecord) -> str | None:
    """The fact with its answer masked and its subject as :data:`ASKED_END` ("Someone employs X"), or None when the
    edit's answer is not a name (:func:`answer_names`) or its text does not hold the answer."""
    names = answer_names(rec)
    if not names or not rec.subject:
        return None
    text = f"{rec.prompt} {rec.target_new}" if rec.prompt else rec.statement
    masked = mask_subject(text, names[0])
    if masked == fold(text):
        return None
    masked = re.sub(rf"\b(?:the|a|an) {MASK}\b", MASK, masked, flags=re.IGNORECASE)
    return mask_subject(masked, rec.subject, ASKED_END).strip(" .")


class View(NamedTuple):
    """One way a question may read an edit's fact: the names that must appear, the relation to compare the question's
    clause with, the answer the clause must be able to take, and the role the name must have (None: any)."""

    names: list[str]
    relation: str
    answer: str | None
    role: str | None = None
    states_answer: bool = False  # the relation ends with the answer ("X holds Cuba citizenship")


def views(rec: EditRecord, rel: str | None) -> list[View]:
    """The readings of ``rec``'s fact (see :class:`View`):

    - the subject's end, with its relation ("X holds"), and with each relation of the edits it corrected
      (``metadata["also_asks"]``, :func:`~agentedit.records.also_asks`: "X is a citizen of");
    - the same end with the answer after the relation, when the relation alone says at most one content word
      ("X holds Cuba citizenship": :func:`with_answer`);
    - the answer's end when the answer is a name ("Google employs Alan Sugar" answers "Who employs Alan Sugar?":
      :func:`answer_relation`), with the role the answer has in the fact
      (:func:`masked_role`), which the question must give it too: "Who does Alan Sugar employ?"
      asks the relation of Alan Sugar himself.
    """
    if rel is None:
        return []
    out = [View(subject_names(rec), rel, rec.target_new)]
    out += [View(subject_names(rec), t.replace("{}", MASK), rec.target_new) for t in also_asks(rec)]
    if (full := with_answer(rel, rec)) is not None:
        out.append(View(subject_names(rec), full, rec.target_new, states_answer=True))
    inverse = answer_relation(rec)
    if inverse is not None and masked_role(inverse) != "other":
        out.append(View(answer_names(rec), inverse, rec.subject, masked_role(inverse)))
    return out


__all__ = ["ASKED_END", "View", "answer_names", "answer_relation", "find_answer_name", "find_whole_name", "masked_role",
           "same_role", "views", "with_answer"]
