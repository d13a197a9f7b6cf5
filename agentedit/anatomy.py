"""Edit anatomy: the subject, relation and target of a fact given as free text.

"Alice's manager is Bob." becomes subject ``Alice``, relation ``{}'s manager is``, target ``Bob``,
so that the scope check can ask whether a query names the subject and asks the relation, as it
does for benchmark-shaped edits. Two ways, same result type:

- :func:`parse_with_model`: a capable model (a hosted API model) is asked for JSON with the
  three parts (``prompts/statement_anatomy.j2``); the reply is accepted only when the parts really
  come from the statement (:func:`validate`).
- :func:`parse_with_rules`: an offline fallback for the common sentence shapes ("X's R is T",
  "The R of X is T", "X <verb phrase> T").

The result is stored with the edit (``metadata.anatomy`` says which way produced it), shown by
``agentedit edit`` and changed with ``agentedit update``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from .prompts import render

logger = logging.getLogger(__name__)

_COPULA = r"(?:is|are|was|were|has been|had been|will be)"
_POSSESSIVE = re.compile(rf"^(?P<s>.+?)['\u2019]s\s+(?P<r>.+?)\s+(?P<v>{_COPULA})\s+(?P<t>.+)$", re.IGNORECASE)
_OF = re.compile(rf"^(?P<a>the|a|an)\s+(?P<r>.+?)\s+of\s+(?P<s>.+?)\s+(?P<v>{_COPULA})\s+(?P<t>.+)$", re.IGNORECASE)
_CONNECTORS = {"of", "the", "de", "la", "le", "von", "van", "der", "du", "da", "di", "del", "and", "&", "y", "for"}
_NOT_NAMES = {"i", "you", "he", "she", "it", "we", "they", "my", "our", "your", "his", "her", "its", "their", "this", "that",
              "these", "those", "there", "here", "today", "now", "yesterday", "tomorrow", "everyone", "nobody", "someone"}
_PREPOSITIONS = {"in", "of", "at", "by", "for", "to", "from", "on", "with", "as", "into", "under", "about"}


@dataclass(frozen=True)
class Anatomy:
    """A fact's parts: ``relation`` holds one ``{}`` where the subject goes; the target follows it."""

    subject: str
    relation: str
    target: str
    source: str  # "model" or "rules"

    @property
    def prompt(self) -> str:
        return self.relation.replace("{}", self.subject)

    def to_dict(self) -> dict[str, str]:
        return {"subject": self.subject, "relation": self.relation, "target": self.target, "source": self.source}


def _clean(statement: str) -> str:
    return " ".join(statement.split()).rstrip(" .!;")


def _is_name_word(word: str) -> bool:
    return bool(word) and (word[0].isupper() or word[0].isdigit())


def validate(statement: str, subject: str, relation: str, target: str) -> bool:
    """True when the parts come from the statement: the relation has one ``{}``, and relation with
    the subject filled in, followed by the target, spells the statement (ignoring case and spaces)."""
    if relation.count("{}") != 1 or not subject.strip() or not target.strip():
        return False
    norm = lambda s: " ".join(s.lower().split()).rstrip(" .")  # noqa: E731
    return norm(f"{relation.replace('{}', subject)} {target}") == norm(statement)


def parse_with_rules(statement: str) -> Anatomy | None:
    """The offline decomposition of common sentence shapes; None when no shape fits."""
    text = _clean(statement)
    if not text or len(text) > 1000:
        return None
    for rx, build in ((_POSSESSIVE, lambda m: "{}'s " + f"{m['r']} {m['v']}"), (_OF, lambda m: f"{m['a']} {m['r']} of {{}} {m['v']}")):
        m = rx.match(text)
        if m and m["s"].strip() and m["t"].strip():
            relation = build(m)
            relation = relation[0].upper() + relation[1:]
            subject, target = m["s"].strip(), m["t"].strip()
            if validate(text, subject, relation, target):
                return Anatomy(subject, relation, target, "rules")
    words = text.split()
    # "X <verb phrase> T": the subject is the leading run of capitalised words (and connectors inside it).
    n = 0
    while n < len(words) and (_is_name_word(words[n]) or (n > 0 and words[n].lower() in _CONNECTORS and n + 1 < len(words)
                                                           and _is_name_word(words[n + 1]))):
        n += 1
    if n == 0 or n >= len(words) - 1 or words[0].lower() in _NOT_NAMES:
        return None
    subject = " ".join(words[:n])
    rest = words[n:]
    # The target: the trailing run of capitalised words or numbers; else what follows the last preposition; else the last word.
    k = len(rest)
    while k > 1 and (_is_name_word(rest[k - 1]) or (rest[k - 1].lower() in _CONNECTORS and k < len(rest) and k - 1 > 0
                                                    and _is_name_word(rest[k - 2]))):
        k -= 1
    if k == len(rest):
        preps = [i for i, w in enumerate(rest[:-1]) if w.lower() in _PREPOSITIONS]
        k = preps[-1] + 1 if preps else len(rest) - 1
    if k < 1:
        return None
    relation = "{} " + " ".join(rest[:k])
    target = " ".join(rest[k:])
    if not validate(text, subject, relation, target):
        return None
    return Anatomy(subject, relation, target, "rules")


def parse_model_reply(statement: str, reply: str) -> Anatomy | None:
    """The model's JSON reply as an Anatomy, if it is valid JSON whose parts come from the statement."""
    match = re.search(r"\{.*\}", reply, re.DOTALL)
    if not match:
        return None
    try:
        data: Any = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("subject", "relation", "target")):
        return None
    subject, relation, target = data["subject"].strip(), data["relation"].strip(), data["target"].strip()
    if not validate(_clean(statement), subject, relation, target):
        return None
    return Anatomy(subject, relation, target, "model")


def parse_with_model(statement: str, backend: Any) -> Anatomy | None:
    """Ask ``backend`` for the parts; None when the call fails or the reply does not check out."""
    try:
        reply = backend.chat([{"role": "user", "content": render("statement_anatomy", statement=_clean(statement))}],
                             temperature=0.0, max_tokens=200)
    except Exception as exc:  # a failed helper call must not fail the edit: the rules still apply
        logger.warning("fact decomposition by the model failed (%s); using the offline rules", exc)
        return None
    return parse_model_reply(statement, reply.text)


def parse_statement(statement: str, backend: Any = None) -> Anatomy | None:
    """The model's decomposition when a backend is given and its reply checks out, else the rules'."""
    if backend is not None:
        found = parse_with_model(statement, backend)
        if found is not None:
            return found
    return parse_with_rules(statement)
