"""Edit anatomy: the subject, relation and target of a fact given as free text.

"Alice's manager is Bob." becomes subject ``Alice``, relation ``{}'s manager is``, target ``Bob``, so that the scope
check can ask whether a query names the subject and asks the relation, as it does for benchmark-shaped edits.

The representation (:class:`Anatomy`): ``subject`` and ``target`` are copied from the statement; ``relation`` is the
fact sentence with the subject replaced by ``{}`` and the target taken out, so a target in the middle leaves the words
around it ("The Zephyr gateway listens on port 9000 by default": relation ``The {} listens on port by default``,
target ``9000``) and two edits of the same fact with different values share one relation; ``prompt`` is the sentence
up to the target (what a weight edit completes), or the relation with the subject filled in when the target comes
before the subject.

Three sources, tried in this order (:func:`parse_statement`):

- ``model``: a model is asked for JSON with the subject and target (``prompts/statement_anatomy.j2``, constrained by a
  JSON schema in ``response_format`` where the server takes one); accepted only when both are copied from the statement;
- ``parser``: an English dependency parse with spaCy (:mod:`agentedit.anatomy.parser`), when spaCy is installed;
- ``rules``: offline regular expressions for the common shapes (:mod:`agentedit.anatomy.rules`).

Each parse carries a ``confidence`` in [0, 1]; below the review threshold, or when the statement holds role tags,
instructions or a hedge ("I believe", "apparently": :mod:`agentedit.anatomy.screen`, kept as data and listed in
``flags``), the record is marked
``metadata.needs_review`` with the reason. A statement that is empty or nothing but role tags and instructions raises
:class:`NoFactError`; one with nothing a fact could be about ("hello there", "ok") gets no parse (:func:`no_fact`).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from ..prompts import render
from .screen import COURTESY_TITLE, HEDGE, NoFactError, Screened, screen

logger = logging.getLogger(__name__)

__all__ = ["Anatomy", "NoFactError", "clause_start", "compose", "correction_cue", "parse_statement", "parse_with_model", "parse_model_reply",
           "parse_with_parser", "parse_with_rules", "validate", "screen", "no_fact", "MAX_PARSE_CHARS", "REVIEW_BELOW"]

MAX_PARSE_CHARS = 2000  # longer statements are refused by the record validation; they are not parsed first
REVIEW_BELOW = 0.7  # default: a parse less sure than this is marked for review
_ARTICLES = ("the ", "a ", "an ")
_TRAIL = " .!;:,"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"subject": {"type": "string"}, "target": {"type": "string"}},
    "required": ["subject", "target"],
}


@dataclass(frozen=True)
class Anatomy:
    """A fact's parts (see the module docstring for how ``relation`` and ``prompt`` are formed)."""

    subject: str
    relation: str
    target: str
    source: str  # "model", "parser" or "rules"
    prompt: str = ""
    confidence: float = 1.0
    flags: tuple[str, ...] = ()
    reasons: tuple[str, ...] = field(default=())

    def needs_review(self, threshold: float = REVIEW_BELOW) -> bool:
        return self.confidence < threshold or bool(self.flags)

    def review_reason(self, threshold: float = REVIEW_BELOW) -> str:
        why = [f"statement holds {f.replace('_', ' ')}" for f in self.flags if f not in ("several_sentences", "hedge")]
        if "hedge" in self.flags:
            why.append("the statement is hedged ('I believe', 'apparently'): confirm the fact")
        if "several_sentences" in self.flags:
            why.append("only the first sentence was parsed")
        if self.confidence < threshold:
            why.append(f"{self.source} parse confidence {self.confidence:.2f} < {threshold:.2f}"
                       + (f" ({'; '.join(self.reasons)})" if self.reasons else ""))
        return "; ".join(why)

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "relation": self.relation, "target": self.target, "source": self.source,
                "prompt": self.prompt, "confidence": round(self.confidence, 3), "flags": list(self.flags),
                "reasons": list(self.reasons)}


def _tidy(text: str) -> str:
    return " ".join(text.split()).strip(_TRAIL)


def _find(text: str, part: str, avoid: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """Where ``part`` occurs in ``text`` (case-insensitive, whole words), not overlapping ``avoid``."""
    if not part:
        return None
    for m in re.finditer(rf"(?<!\w){re.escape(part)}(?!\w)", text, re.IGNORECASE):
        if avoid is None or m.end() <= avoid[0] or m.start() >= avoid[1]:
            return m.start(), m.end()
    return None


_LEADS = (re.compile(r"^[^:\n]{1,60}?:\s+"),  # "Update: ", "Sorry, I was wrong: ", "Her address changed: "
          re.compile(r"^(?:\w+[ ,]+){0,4}?that\s+", re.IGNORECASE),  # "Note that ", "Please keep in mind that "
          re.compile(r"^(?:[\w']+\s+){0,3}[\w']+,\s+"),  # "FYI, ", "Actually, ", "As of today, "
          HEDGE,  # "I believe ", "We were told that ", "As far as I know, " (flagged by the screen)
          re.compile(r"^(?:[\w']+\s+){0,3}[\w']+,\s+"))  # "Actually, as of 2024, "


_RELATIVE = re.compile(r"(?:which|who|whom|whose|where|that)\b", re.IGNORECASE)


def clause_start(fact: str, first: int | None = None) -> int:
    """Where the fact's clause starts: after discourse leads ("Update:", "Correction:", "FYI,", "Note that", "As of
    today,") that end before ``first`` (the first of the subject and the target, when known). A lead names nothing:
    one with a capitalised word past its first ("In Norway, ...", "Acme Corp: ...") is part of the fact. Leads stay
    in the statement but are no part of the relation, so a correction and what it corrects compare clause to clause."""
    start = 0
    for rx in _LEADS:
        m = rx.match(fact[start:])
        if not m or (first is not None and start + m.end() > first):
            continue
        words, rest = re.findall(r"[\w']+", m.group(0)), fact[start + m.end():]
        if any(w[:1].isupper() and w != "I" for w in words[1:]) or _RELATIVE.match(rest) or \
                not re.search(r"\d|\b(?!I\b)[A-Z]", rest):  # "Acme, which was founded...": the lead is the subject
            continue
        start += m.end()
    return start


_CUE_LEAD = re.compile(r"\b(?:correct(?:ion|ed|ing)?|wrong|mistaken?|erratum|error|scratch|updated?|changed?|instead|"
                       r"actually|no longer)\b", re.IGNORECASE)
_CUE_CLAUSE = re.compile(r"\b(?:is|are|was|has|have)\s+now\b|\bnow\s+(?:is|are|works|lives|reports|runs|belongs)\b|"
                         r"(?:'s|\b[Tt]he)\s+new\b|\bno longer\b")  # lower-case "new": "The New York office" is a name


def correction_cue(statement: str) -> str | None:
    """The words by which a statement says it replaces an earlier fact, or None: a discourse lead that speaks of a
    correction or change ("Correction:", "Sorry, I was wrong:", "Actually,"), or a clause that puts the value in time
    ("X's email is now ...", "X's new chief executive is ..."). The store's conflict match lets such a statement
    supersede its best same-subject match at a lower bar (:mod:`agentedit.scope.conflict`)."""
    text = " ".join(statement.split())
    lead = text[:clause_start(text)]
    if lead and _CUE_LEAD.search(lead):
        return lead.strip(" ,:")
    m = _CUE_CLAUSE.search(text)
    return m.group(0) if m else None


# After a name: more of it ("Minister for Education", "Prince Victor of Thurn and Taxis", "HBO Now"): capitalised
# words, directly or after a connector. Before a number, the word that makes it approximate ("about 48,000").
_NAME_CONNECTORS = "of|for|de|du|des|la|le|van|von|y"  # the small words inside a name ("Bank of America")
_NAME_MORE = re.compile(rf"(?:\s+(?:{_NAME_CONNECTORS}|and|&)\s+|\s+)(?:the\s+)?[A-Z][\w'\-]*")
_APPROX_WORDS = r"(?:(?:just|only|well|a little|a bit|slightly)\s+)?(?:about|around|roughly|approximately|nearly|almost|" \
    r"over|under|some|more than|less than|fewer than|at least|up to)"
_APPROX = re.compile(rf"{_APPROX_WORDS}\s+$", re.IGNORECASE)
_NUMBER_START = re.compile(r"[\d$€£¥]|(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
                           r"forty|fifty|a hundred|a thousand|hundreds|thousands)\b", re.IGNORECASE)
_APPROX_LEAD = re.compile(rf"{_APPROX_WORDS}\s+(?={_NUMBER_START.pattern})",
                          re.IGNORECASE)  # inside a value's span: "more than 900,000", "up to ten working days"


# The head of a name that a span starts inside: capitalised words and a connector right before it ("Institution of"
# before "Structural Engineers", "Bank of" before "America"). Not a lower-case word ("the capital of France" keeps
# "France"), an acronym or a word after an article: "The CEO of Acme", "the Mayor of Paris" name an office of the subject.
_NAME_HEAD = re.compile(rf"(?:(?<=\s)|^)((?:[A-Z][a-z][\w'\-]*\s+)+(?:{_NAME_CONNECTORS})\s+(?:the\s+)?)$")
_AFTER_ARTICLE = re.compile(r"\b(?:the|a|an)\s*$", re.IGNORECASE)


def _whole(fact: str, span: tuple[int, int], other: tuple[int, int]) -> tuple[int, int]:
    """``span`` grown over the rest of a name it cuts (:data:`_NAME_MORE`, :data:`_NAME_HEAD`), never into ``other``."""
    a, b = span
    # a name grows; a measure does not ("16 GB of RAM": the value is "16 GB")
    if fact[a:b][-1:].isalnum() and fact[a:b].split()[-1][:1].isupper() and not fact[a:a + 1].isdigit():
        while (m := _NAME_MORE.match(fact, b)) and not (b < other[1] and m.end() > other[0]):
            b = m.end()
    if fact[a:a + 1].isupper() and (m := _NAME_HEAD.search(fact, 0, a)) and not _AFTER_ARTICLE.search(fact, 0, m.start(1)) \
            and not (other[0] < a and other[1] > m.start(1)):
        a = m.start(1)
    return a, b


def _unhedged(fact: str, subj: tuple[int, int], targ: tuple[int, int]) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """``fact`` without the word that makes its number approximate ("About 48,000 people live in ..."): part of
    neither the value nor the relation."""
    m = _APPROX.search(fact, 0, targ[0]) if _NUMBER_START.match(fact, targ[0]) else None
    if m is None or (subj[0] < targ[0] and subj[1] > m.start()):  # no such word, or the subject reaches into it
        return fact, subj, targ
    cut = targ[0] - m.start()

    def shift(span: tuple[int, int]) -> tuple[int, int]:
        return span if span[1] <= m.start() else (span[0] - cut, span[1] - cut)

    return fact[:m.start()] + fact[targ[0]:], shift(subj), shift(targ)


# A courtesy title before a name ("Dr. Ayla Demir"): the name is what a question uses. A clock time's am/pm after its
# number ("8 am"). A preposition that fronts a phrase set off by a comma ("At Nordvik Hospital, ...").
_HONORIFIC = re.compile(rf"{COURTESY_TITLE}\s+(?=[A-Z])")
_MERIDIEM = re.compile(r"\s*(?:[ap]\.m\.|[ap]m)\b", re.IGNORECASE)
_FRONTING = re.compile(r"(?:at|in|on|for|from|by|with|within)\s+(?=[A-Z])", re.IGNORECASE)


def _trimmed(fact: str, span: tuple[int, int], other: tuple[int, int], *, subject: bool) -> tuple[int, int]:
    """``span`` without a courtesy title (and, for a subject, a fronting preposition), and with the am/pm of a clock
    time it ends in or consists of, never into ``other``."""
    a, b = span
    if m := _HONORIFIC.match(fact, a, b):
        a = m.end()
    if not subject and (m := _APPROX_LEAD.match(fact, a, b)):  # the approximation word is no part of the value
        a = m.end()
    if subject and (m := _FRONTING.match(fact, a, b)) and fact[b:b + 1] == ",":
        a = m.end()
    if subject and b - a > 2 and fact[b - 1] in "'\u2019" and fact[b - 2] == "s":  # "Corvid Labs' chief scientist"
        b -= 1
    if fact[a:b][-1:].isdigit() and (m := _MERIDIEM.match(fact, b)) and not (b <= other[0] < m.end()):
        b = m.end()
    elif _MERIDIEM.fullmatch(fact[a:b]) and (m := re.search(r"\d+(?::\d\d)?\s*$", fact[:a])) \
            and not (m.start() < other[1] <= a):
        a = m.start()
    return a, b


def compose(fact: str, subj: tuple[int, int], targ: tuple[int, int], source: str, *, confidence: float = 1.0,
            flags: tuple[str, ...] = (), reasons: tuple[str, ...] = (), grow_subject: bool = True) -> Anatomy | None:
    """The anatomy of ``fact`` with the subject at ``subj`` and the target at ``targ`` (character spans), or None when
    the spans overlap or leave no relation. A span that cuts a name short is grown over the rest of it (:func:`_whole`;
    the subject not when ``grow_subject`` is False: the parser found its head), a courtesy title or a fronting
    preposition is left out and a clock time keeps its am/pm (:func:`_trimmed`); a leading article of the subject goes
    to the relation."""
    subj, targ = (_whole(fact, subj, targ) if grow_subject else subj), _whole(fact, targ, subj)
    subj, targ = _trimmed(fact, subj, targ, subject=True), _trimmed(fact, targ, subj, subject=False)
    fact, subj, targ = _unhedged(fact, subj, targ)
    (s0, s1), (t0, t1) = subj, targ
    while fact[s0:s1].lower().startswith(_ARTICLES) and " " in fact[s0:s1].strip():
        s0 += fact[s0:s1].index(" ") + 1
    if s0 >= s1 or t0 >= t1 or not (s1 <= t0 or t1 <= s0):
        return None
    subject, target = _tidy(fact[s0:s1]), _tidy(fact[t0:t1])
    cut = clause_start(fact, min(s0, t0))
    fact, s0, s1, t0, t1 = fact[cut:], s0 - cut, s1 - cut, t0 - cut, t1 - cut
    if s1 <= t0:
        relation = _tidy(f"{fact[:s0]}{{}}{fact[s1:t0]} {fact[t1:]}")
        prompt = _tidy(fact[:t0])
    else:
        relation = _tidy(f"{fact[:t0]} {fact[t1:s0]}{{}}{fact[s1:]}")
        prompt = relation.replace("{}", subject)
    if not subject or not target or not relation.replace("{}", "").strip(_TRAIL + " "):
        return None
    relation = relation[0].upper() + relation[1:] if relation[0].islower() and fact[:1].isupper() else relation
    return Anatomy(subject, relation, target, source, prompt, round(max(0.0, min(1.0, confidence)), 3), flags, reasons)


def from_parts(fact: str, subject: str, target: str, source: str, **kw: Any) -> Anatomy | None:
    """:func:`compose` for a subject and target given as text (both must occur in ``fact``)."""
    subj = _find(fact, subject.strip(_TRAIL + " "))
    targ = _find(fact, target.strip(_TRAIL + " "), subj) if subj else None
    if subj is None or targ is None:
        return None
    return compose(fact, subj, targ, source, **kw)


def validate(statement: str, subject: str, relation: str, target: str) -> bool:
    """True when the parts come from the statement: one ``{}`` in the relation, subject and target copied from the
    statement, and the relation is the statement with the subject replaced and the target taken out."""
    if relation.count("{}") != 1 or not subject.strip() or not target.strip():
        return False
    found = from_parts(_tidy(statement), subject, target, "check")
    norm = lambda s: " ".join(s.lower().split())  # noqa: E731
    return found is not None and norm(found.relation) == norm(relation)


def parse_model_reply(statement: str, reply: str, fact: Screened | None = None) -> Anatomy | None:
    """The model's JSON reply as an Anatomy, if it is valid JSON whose subject and target come from the statement."""
    match = re.search(r"\{.*\}", reply, re.DOTALL)
    if not match:
        return None
    try:
        data: Any = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("subject", "target")):
        return None
    fact = fact or screen(statement)
    found = from_parts(_tidy(fact.fact), data["subject"], data["target"], "model", confidence=0.85, flags=fact.flags)
    if found is None or ("relation" in data and isinstance(data["relation"], str) and "{}" in data["relation"]
                         and data["relation"].count("{}") != 1):
        return None
    return found


def parse_with_model(statement: str, backend: Any, fact: Screened | None = None) -> Anatomy | None:
    """Ask ``backend`` for the subject and target (JSON, schema-constrained where supported); None when the call
    fails or the reply does not check out."""
    fact = fact or screen(statement)
    messages = [{"role": "user", "content": render("statement_anatomy", statement=_tidy(fact.fact))}]
    fmt = {"type": "json_object", "schema": SCHEMA}
    try:
        try:
            reply = backend.chat(messages, temperature=0.0, max_tokens=200, response_format=fmt)
        except TypeError:  # a backend without response_format
            reply = backend.chat(messages, temperature=0.0, max_tokens=200)
    except Exception as exc:  # a failed helper call must not fail the edit: the parser and rules still apply
        logger.warning("fact decomposition by the model failed (%s); using the parser or the offline rules", exc)
        return None
    return parse_model_reply(statement, reply.text, fact)


def _on_clause(text: str, parse: Any) -> Anatomy | None:
    """``parse`` of the text after its discourse leads (:func:`clause_start`): a lead never holds the subject."""
    return parse(text[clause_start(text):])


def parse_with_parser(statement: str, fact: Screened | None = None) -> Anatomy | None:
    """The dependency-parse anatomy (None when spaCy or its English model is not installed, or no shape fits)."""
    from . import parser

    fact = fact or screen(statement)
    return _on_clause(_tidy(fact.fact), lambda text: parser.parse(text, fact.flags)) if parser.available() else None


def parse_with_rules(statement: str, fact: Screened | None = None) -> Anatomy | None:
    """The regular-expression anatomy (the last fallback)."""
    from .rules import parse

    fact = fact or screen(statement)
    return _on_clause(_tidy(fact.fact), lambda text: parse(text, fact.flags))


def parse_statement(statement: str, backend: Any = None) -> Anatomy | None:
    """The best anatomy: the model's when ``backend`` is given and its reply checks out (surer when the parser agrees),
    else the parser's, else the rules'; None when none fits or there is nothing to parse (:func:`no_fact`).
    :class:`NoFactError` for a statement that is empty or only role tags and instructions."""
    if len(statement) > MAX_PARSE_CHARS:
        return None  # the record validation refuses it with the limit
    fact = screen(statement)
    parsed = parse_with_parser(statement, fact)
    if parsed is None and no_fact(statement):
        return None  # nothing to ask a model about
    if backend is not None:
        found = parse_with_model(statement, backend, fact)
        if found is not None:
            if parsed is not None:
                same = (parsed.subject.lower(), parsed.target.lower()) == (found.subject.lower(), found.target.lower())
                found = Anatomy(**{**found.__dict__, "confidence": 0.95 if same else 0.65,
                                   "reasons": () if same else ("the parser read it differently",)})
            return found
    return parsed if parsed is not None else parse_with_rules(statement, fact)


def no_fact(statement: str) -> bool:
    """True when the statement's fact sentence has nothing a fact could be about (a greeting, "ok", "Thanks!")."""
    from . import parser

    fact = _tidy(screen(statement).fact)
    if parser.available():
        return parser.no_content(fact)
    return not re.search(r"\d|\b[A-Z][a-z]", fact[1:]) and len(fact.split()) < 3
