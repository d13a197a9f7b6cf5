"""Relations that read alike but ask different things: a veto for the structural checkers.

Sentence embeddings put "The name of the mother of X is" and "The name of the father of X is" (or
"X follows" and "X is followed by") so close that no similarity threshold separates them, and on
wiki_counterfact such pairs are most of the relation checker's false accepts. These closed cases are
clear enough to decide by rule:

- **contrast words**: both relations name attributes from one closed vocabulary (kinship, name
  parts, occupation/employer, place levels, religion, language), and the sets they name are
  disjoint: "mother" against "father", "occupation" against "employer", "country" against
  "continent". A relation naming none of them is never vetoed;
- **inverse voice**: one relation uses a verb in the passive ("is followed by") and the other the
  same verb in the active ("follows"): the subject sits at opposite ends of the fact;
- **birth against death**: contrast words of their own group, compared only with each other ("The place of
  birth of X is" against "Where did X die?");
- **a time asked by the edit only**: the edit's relation says it asks for a time ("What year was X made?", "When
  did X open?") and the query's gives no sign of asking one (no time word, no trailing preposition a date could
  follow): "The manufacturer of X is" is not answered by the year X was made.

The same vocabulary is positive evidence too (:func:`shared_attributes`): the clause checker accepts a relation just
short of its threshold when both name one attribute (:mod:`agentedit.scope.clauses`).

Another rule looks at the edit's answer (:func:`answer_conflict`): a question that asks for a time
("when", "what year") cannot be answered by an edit whose target holds no date, a question for an
amount ("how many", "how long") by a target with no number, and a question for a place or a
person ("where", "who") by a target that is only a number or a date: "When did X die?" is not
answered by "X died in Paris". A question for someone ("Who owns X?", "Which company controls X?") is not
answered by a fact whose answer follows "in" ("X is headquartered in Oslo"): a place, a time or a language goes there;
nor a question for a place or a language by one whose answer follows "by" ("X was written by Y": someone). These two
apply only where the question asks about the subject itself ("Who owns X?"), not about another thing named through
it ("In which city is the company that produces X headquartered?").
"""

from __future__ import annotations

import re
from functools import lru_cache

from .text import MASK


# label -> phrases (lower case, whole words, plurals matched too). Labels sharing nothing are different attributes.
_CONTRAST: dict[str, tuple[str, ...]] = {
    "mother": ("mother", "mom", "mum", "female parent"),
    "father": ("father", "dad", "male parent"),
    "sibling": ("sibling", "brother", "sister"),
    "child": ("child", "children", "kid", "son", "daughter", "offspring"),
    "spouse": ("spouse", "wife", "husband", "married", "marry"),
    "family name": ("family name", "surname", "last name"),
    "given name": ("given name", "first name", "forename"),
    "occupation": ("occupation", "profession", "job", "works as", "work as", "worked as", "for a living", "line of work",
                   "career"),
    "employer": ("employer", "employed by", "employ", "employing", "works for", "work for", "worked for"),
    "capital": ("capital",),
    "country": ("country", "countries", "nation", "nationality", "citizen", "citizenship", "passport"),
    "continent": ("continent",),
    "religion": ("religion", "religious", "faith"),
    "language": ("language", "tongue", "speak", "speaking", "spoken"),
    "birth": ("birth", "born", "birthplace", "birthdate", "birthday"),
    "death": ("death", "die", "died", "dying", "dead", "deathplace", "burial", "buried"),
    "arrival": ("arrive", "arrives", "arrived", "arrival"),
    "departure": ("depart", "departs", "departed", "departure", "leave", "leaves"),
}
# Labels compared only within their group (default: the attributes above): birth against death, never against a
# kinship word ("Who gave birth to X?" asks the mother, which a mother's edit answers); arrival against departure (a
# trip's two times). Not opening against closing: "How late is X open?" asks when it closes.
_GROUP = {"birth": "life", "death": "life", "arrival": "trip", "departure": "trip"}
_PATTERNS = {label: re.compile(r"\b(?:" + "|".join(re.escape(p) for p in sorted(ps, key=len, reverse=True)) + r")(?:s|es)?\b")
             for label, ps in _CONTRAST.items()}  # plurals too: "mother tongues", "capitals"
# Phrases that contain a contrast word without naming that attribute.
_NEUTRAL = re.compile(r"\b(?:mother tongues?|native languages?|famil(?:y|ies) of languages)\b")
_PASSIVE = re.compile(r"\b(?:(?:is|was|are|were|be|been|being)\s+)?([a-z]+?)(?:ed|d)\s+by\b")
_WORD = re.compile(r"[a-z]+")


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "d", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@lru_cache(maxsize=65536)
def _attributes(relation: str) -> frozenset[str]:
    text = relation.lower()
    found = {label for label, rx in _PATTERNS.items() if rx.search(text)}
    if _NEUTRAL.search(text):  # "mother tongue" is the language, not the mother
        found.discard("mother")
        found.add("language")
    return frozenset(found)


@lru_cache(maxsize=65536)
def _roles(relation: str) -> tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]]]:
    """(passive, active) sets of (verb stem, role of the masked subject): "agent" or "patient".

    "X is followed by" puts X as the patient of "follow", "What is followed by X?" as its agent; in
    the active voice X before the verb is its agent ("X follows", "What does X follow?") and X after
    it the patient ("What follows X?").
    """
    at = relation.find(MASK)
    if at < 0:
        return frozenset(), frozenset()
    text = relation.lower()
    passive: set[tuple[str, str]] = set()
    spans = []
    for m in _PASSIVE.finditer(text):
        spans.append(m.span())
        passive.add((_stem(m.group(1) + "ed"), "agent" if at >= m.end() else "patient"))
    active = {(_stem(m.group(0)), "agent" if at < m.start() else "patient") for m in _WORD.finditer(text)
              if not any(a <= m.start() < b for a, b in spans) and not (m.start() == at and m.group(0) == MASK.lower())}
    return frozenset(passive), frozenset(active)


def _other(role: str) -> str:
    return "patient" if role == "agent" else "agent"


# A relation that says it asks for a time, and one that leaves room for a date after its last word ("X opened in").
# "when" only as the question's word ("When did X open?"), not as a conjunction ("where did X live when he died");
# "how many times" counts rather than asks a time; "period" and "era" also name styles ("What period of art...?").
_SAYS_TIME = re.compile(r"^\W*(?:(?:since|until|by|from)\s+)?when\b|\b(?:(?:year|date|day|month|century|decade|birthday|anniversary)s?"
                        r"|time(?!\s+zones?\b)|ago)\b", re.IGNORECASE)  # a time zone is a place
_ROOM_FOR_TIME = re.compile(r"\b(?:in|on|at|since|from|until|till|by|around|circa|during|before|after|of)\W*$", re.IGNORECASE)


@lru_cache(maxsize=65536)
def _time_signs(relation: str) -> tuple[str | None, bool]:
    """(the word by which ``relation`` says it asks for a time, or None; whether a date could follow its last word)."""
    said = _SAYS_TIME.search(relation)
    return (said.group(0).strip().lower() if said else None), bool(_ROOM_FOR_TIME.search(relation))


def _time_only_in_edit(query: str, edit: str) -> str | None:
    """The edit's relation says it asks for a time and the query's gives no sign of one. Only this way round: a
    question for a time against an edit that does not say so is settled by the edit's answer
    (:func:`answer_conflict`: "When does X open?" against "X opens on" is answered by "14 March")."""
    said, _ = _time_signs(edit)
    if said and _time_signs(query) == (None, False):
        return f"the edit asks for a time ({said!r}); the question asks for none"
    return None


def _disjoint(a: frozenset[str], b: frozenset[str]) -> tuple[frozenset[str], frozenset[str]] | None:
    """The labels of one group that both relations name and share none of, or None."""
    for group in sorted({_GROUP.get(label, "") for label in a | b}):
        ga = frozenset(x for x in a if _GROUP.get(x, "") == group)
        gb = frozenset(x for x in b if _GROUP.get(x, "") == group)
        if ga and gb and not ga & gb:
            return ga, gb
    return None


def shared_attributes(query_relation: str, edit_relation: str) -> frozenset[str]:
    """The attribute labels both relations name ("What is X's job?" and "X works as": occupation), birth and death
    left out (a place of burial is no place of death, though both speak of death)."""
    return frozenset(x for x in _attributes(query_relation) & _attributes(edit_relation) if x not in _GROUP)


def relation_conflict(query_relation: str, edit_relation: str) -> str | None:
    """Why the two (subject-masked) relations cannot be the same, or None when no rule says so."""
    if (apart := _disjoint(_attributes(query_relation), _attributes(edit_relation))) is not None:
        return f"asks {'/'.join(sorted(apart[0]))}, the edit is about {'/'.join(sorted(apart[1]))}"
    if (why := _time_only_in_edit(query_relation, edit_relation)) is not None:
        return why
    (pa, aa), (pb, ab) = _roles(query_relation), _roles(edit_relation)
    flipped = (pa & {(v, _other(r)) for v, r in ab}) | (pb & {(v, _other(r)) for v, r in aa}) | \
        (pa & {(v, _other(r)) for v, r in pb})
    if flipped:
        stem, role = min(flipped)  # the same message on every run (set order follows the hash seed)
        return f"'{stem}' with the subject at the other end of the fact ({role} against {_other(role)})"
    return None


# -- the kind of answer a question asks for ----------------------------------------------------------------
_ASKS_TIME = re.compile(r"^\W*(?:when|since when|until when|(?:in |on |at |by )?(?:what|which) (?:year|date|day|month|time|century|decade))\b"
                        r"|\b(?:what|which) (?:year|date|month|century|decade)\b|\bbirthday\b|\bhow long ago\b", re.IGNORECASE)
_ASKS_AMOUNT = re.compile(r"\bhow (?:many|much|long|tall|high|old|big|far|deep|heavy|wide|large|fast|often)\b", re.IGNORECASE)
_ASKS_PLACE_OR_WHO = re.compile(r"^\W*(?:where|who|whom|whose|in which (?:city|country|town|place)|(?:which|what) (?:city|country|town|place))\b",
                                re.IGNORECASE)
_MONTHS = ("january february march april may june july august september october november december jan feb mar apr jun jul aug "
           "sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday noon midnight "
           "morning evening night century decade spring summer autumn fall winter weekly daily annually").split()
# A digit counts as a time unless it is only an ordinal inside a name ("Sir John Pakington, 3rd Baronet") or part of a
# model's name ("DC-9", "M54"): a time has a year or decade, a clock time, a bare day number, or a date word beside it.
_TIME_WORD = re.compile(r"\b(?:" + "|".join(_MONTHS) + r")\b|\b(?:am|pm|bc|ad|bce|ce)\b"
                        r"|(?<![^\W_])(?<![^\W\d_]-)\d(?!\d*(?:st|nd|rd|th)\b)|\b\d+(?:st|nd|rd|th)\s+(?:of\s+)?(?:century|" + "|".join(_MONTHS) + r")\b"
                        r"|^\W*(?:the\s+)?\d+(?:st|nd|rd|th)\W*$",  # "the 25th" alone is a day
                        re.IGNORECASE)
_NUMBER_WORD = re.compile(r"\d|\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
                          r"hundred|thousand|million|billion|dozen|half|none|few|several|many)\b", re.IGNORECASE)
_ONLY_NUMBER_OR_DATE = re.compile(r"^\W*(?:\d[\d\s.,:/\-]*(?:\s*(?:am|pm|bc|ad|ce|bce))?|(?:\d{1,2}\s+)?(?:"
                                  + "|".join(_MONTHS[:12]) + r")(?:\s+\d{1,4})?(?:,?\s*\d{4})?)\W*$", re.IGNORECASE)


# A question for someone: a person or an organisation ("Who owns X?", "Which company controls X?").
_ASKS_AGENT = re.compile(r"^\W*(?:who|whom|(?:which|what) (?:company|firm|organi[sz]ation|corporation|person|man|woman|"
                         r"people|group|individual))\b", re.IGNORECASE)
_ANSWER_AFTER_IN = re.compile(r"\bin\W*$", re.IGNORECASE)  # "X is headquartered in", "X was founded in"
# A question for a place or a language ("Where was X founded?", "In which language was X first produced?").
_ASKS_PLACE_OR_LANGUAGE = re.compile(r"^\W*(?:where|(?:in |into )?(?:which|what) (?:language|city|country|town|place))\b",
                                     re.IGNORECASE)
# The question asks about the subject itself: the subject right after the question word and one verb ("Who owns X",
# "In which language was X produced"), not inside a phrase about another thing ("the company that produces X").
_DIRECT = re.compile(rf"^\W*(?:(?:in|on|at|for|from|to|by|with|into)\s+)?(?:who|whom|where|(?:which|what)\s+\w+)\s+"
                     rf"(?:\w+\s+)?{MASK}\b", re.IGNORECASE)
_ANSWER_AFTER_BY = re.compile(r"\bby\W*$", re.IGNORECASE)  # "X was written by": someone


def answer_conflict(query_relation: str, target: str | None, relation: str | None = None) -> str | None:
    """Why an edit whose answer is ``target`` cannot answer the (subject-masked) query clause, or None.

    Only clear cases: the question asks for a time and the target holds no date or time word; it asks for an amount
    and the target holds no number; it asks where or who and the target is only a number or a date. With the edit's
    ``relation`` (given when the answer follows it), and a question about the subject itself: it asks for someone and
    the answer follows "in", where a place, a time or a language goes ("Who owns X?" against "X is headquartered in");
    it asks for a place or a language and the answer follows "by", where someone goes ("X was written by").
    """
    q = query_relation.strip()
    if relation is not None and _DIRECT.search(q):
        if _ASKS_AGENT.search(q) and _ANSWER_AFTER_IN.search(relation):
            return "asks for someone; the edit's answer follows 'in' (a place, a time or a language)"
        if _ASKS_PLACE_OR_LANGUAGE.search(q) and _ANSWER_AFTER_BY.search(relation):
            return "asks for a place or a language; the edit's answer follows 'by' (someone)"
    if not target or not target.strip():
        return None
    if _ASKS_TIME.search(q) and not _TIME_WORD.search(target):
        return f"asks for a time; the edit's answer {target!r} is none"
    if _ASKS_AMOUNT.search(q) and not _NUMBER_WORD.search(target):
        return f"asks for an amount; the edit's answer {target!r} holds no number"
    if _ASKS_PLACE_OR_WHO.search(q) and _ONLY_NUMBER_OR_DATE.match(target):
        return f"asks where or who; the edit's answer {target!r} is a number or a date"
    return None
