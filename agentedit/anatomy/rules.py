"""The offline regular-expression anatomy: the last fallback, for the common sentence shapes ("X's R is T",
"The R of X is T", "X <verb phrase> T"). It only finds a target at the end of the sentence and a subject that is
a leading run of capitalised words, so its parses are marked with a low confidence."""

from __future__ import annotations

import re

from . import Anatomy, from_parts

_COPULA = r"(?:is|are|was|were|has been|had been|will be)"
_POSSESSIVE = re.compile(rf"^(?P<s>.+?)['\u2019]s\s+(?P<r>.+?)\s+(?P<v>{_COPULA})\s+(?P<t>.+)$", re.IGNORECASE)
_OF = re.compile(rf"^(?P<a>the|a|an)\s+(?P<r>.+?)\s+of\s+(?P<s>.+?)\s+(?P<v>{_COPULA})\s+(?P<t>.+)$", re.IGNORECASE)
_CONNECTORS = {"of", "the", "de", "la", "le", "von", "van", "der", "du", "da", "di", "del", "and", "&", "y", "for"}
_NOT_NAMES = {"i", "you", "he", "she", "it", "we", "they", "my", "our", "your", "his", "her", "its", "their", "this", "that",
              "these", "those", "there", "here", "today", "now", "yesterday", "tomorrow", "everyone", "nobody", "someone",
              "although", "because", "when", "since", "after", "before", "while", "if", "once", "unless", "until"}
_PREPOSITIONS = {"in", "of", "at", "by", "for", "to", "from", "on", "with", "as", "into", "under", "about"}
PATTERN_CONFIDENCE = 0.75  # "X's R is T" / "The R of X is T"
FALLBACK_CONFIDENCE = 0.5  # capitalised words first, the tail as target


def _is_name_word(word: str) -> bool:
    return bool(word) and (word[0].isupper() or word[0].isdigit())


def split(text: str) -> tuple[str, str, float] | None:
    """(subject, target, confidence) for ``text`` (one tidy sentence), or None when no shape fits."""
    if not text:
        return None
    for rx in (_POSSESSIVE, _OF):
        m = rx.match(text)
        if m and m["s"].strip() and m["t"].strip():
            return m["s"].strip(), m["t"].strip(), PATTERN_CONFIDENCE
    words = text.split()
    n = 0
    while n < len(words) and (_is_name_word(words[n]) or (n > 0 and words[n].lower() in _CONNECTORS and n + 1 < len(words)
                                                           and _is_name_word(words[n + 1]))):
        n += 1
    if n == 0 or n >= len(words) - 1 or words[0].lower() in _NOT_NAMES:
        return None
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
    return " ".join(words[:n]), " ".join(rest[k:]), FALLBACK_CONFIDENCE


def parse(text: str, flags: tuple[str, ...] = ()) -> Anatomy | None:
    found = split(text)
    if found is None:
        return None
    subject, target, confidence = found
    reasons = () if confidence >= PATTERN_CONFIDENCE else ("subject guessed from capitalised words, target from the end",)
    return from_parts(text, subject, target, "rules", confidence=confidence, flags=flags, reasons=reasons)
