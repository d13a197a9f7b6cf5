"""Role tags and instructions inside a statement: kept as data, flagged, never taken as the fact's subject.

A statement is text a user typed; some of it may look like chat markup ("SYSTEM:", "<|im_start|>assistant")
or like an order to the model ("Ignore previous instructions"). :func:`screen` finds such parts, names them
as flags, and returns the sentence that states the fact (the part the anatomy is read from). A statement
that is nothing but such parts has no fact: :class:`NoFactError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import EditError

# "SYSTEM:", "assistant:", "[INST]", "<|im_start|>user", "### Instruction:" at the start of the text or of a sentence.
_ROLE_TAG = re.compile(
    r"^\s*(?:<\|[a-z_]+\|>\s*(?:system|user|assistant|developer|tool)?\s*|\[/?(?:INST|SYS)\]\s*|<</?SYS>>\s*"
    r"|#{1,4}\s*(?:system|user|assistant|instruction|response)\s*:?\s*"
    r"|(?:system|user|assistant|developer|tool|human|ai|bot)\s*:\s*)",
    re.IGNORECASE)
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|prompts?|rules|context|everything|above)\b"
    r"|\byou (?:must|should|will) (?:now )?(?:always |never )?(?:answer|say|reply|respond|tell|pretend|act)\b"
    r"|\byou are now\b|\bfrom now on\b|\bdo not (?:tell|reveal|mention)\b|\b(?:always|never) (?:answer|say|reply|respond)\b"
    r"|^\s*(?:please\s+)?(?:answer|say|reply|respond|pretend|act as|print|repeat|reveal)\b",
    re.IGNORECASE)
# An instruction that only leads into a fact: "From now on, the Orchid Hotel's manager is Ana Silva." keeps its fact.
_INSTRUCTION_LEAD = re.compile(r"^\s*(?:from now on|going forward|henceforth|(?:always )?remember that)\s*,?\s+", re.IGNORECASE)
# A hedge before the fact ("I believe ", "We were told that ", "As far as I know, ", "Apparently, "): the fact is kept,
# its lead is no part of it, and the edit is marked for review (the writer was not sure).
HEDGE = re.compile(r"^\s*(?:(?:I|we)\s+(?:believe|think|heard|hear|understand|guess|reckon|recall|read|"
                   r"(?:was|were|am|are|'m|'re)\s+told)|as far as (?:I|we) know|apparently|reportedly|supposedly|"
                   r"rumou?r has it),?\s+(?:that\s+)?", re.IGNORECASE)
_SENTENCES = re.compile(r"(?<=[.!?;])\s+|\n+")
# A courtesy title before a name ("Dr. Ayla Demir"): the anatomy leaves it out of a subject or target, the scope check
# reads the name without it as one of its spellings (:func:`agentedit.scope.text.proper_core`).
COURTESY_TITLE = r"(?:Dr|Prof|Mr|Mrs|Ms|Mx)\.?"
# A lone initial's or an abbreviation's full stop ends no sentence: "A. Leonard Allen", "Dr. Rao", "Acme Inc. makes";
# "No." only before a number ("Platform No. 5"). Dotted acronyms ("F.C.", "I.R.S.") still may end one.
_ABBREVIATION = re.compile(r"(?:^|\s)(?:[A-Z]|Dr|Mr|Mrs|Ms|Prof|St|Mt|Inc|Ltd|Co|Corp|Jr|Sr|vs|e\.g|i\.e|etc)\.$")
_NUMBER_SIGN = re.compile(r"(?:^|\s)No\.$")


def sentence_breaks(text: str, boundary: re.Pattern[str] = _SENTENCES) -> list[re.Match[str]]:
    """The matches of ``boundary`` in ``text`` that end a sentence: not after an initial or an abbreviation."""
    return [m for m in boundary.finditer(text) if not _ABBREVIATION.search(text[:m.start()])
            and not (_NUMBER_SIGN.search(text[:m.start()]) and text[m.end():m.end() + 1].isdigit())]


class NoFactError(EditError):
    """The statement states no fact (empty, a greeting, only an instruction or role tag)."""


@dataclass(frozen=True)
class Screened:
    """``fact``: the sentence the anatomy is read from, starting at ``offset`` in the statement; ``flags``: what was
    found around it (``role_tag``, ``instruction``, ``hedge``, ``several_sentences``)."""

    fact: str
    offset: int
    flags: tuple[str, ...]


def _strip_tags(text: str, start: int, end: int) -> tuple[int, bool]:
    found = False
    while start < end:
        m = _ROLE_TAG.match(text, start, end)
        if not m or m.end() == start:
            break
        start, found = m.end(), True
    return start, found


def screen(statement: str) -> Screened:
    """Split ``statement`` into its fact sentence and its flags; :class:`NoFactError` when no sentence is left."""
    flags: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    breaks = sentence_breaks(statement)
    for m in [*breaks, None]:
        end = m.start() if m else len(statement)
        start, tagged = _strip_tags(statement, pos, end)
        if tagged:
            flags.append("role_tag")
        sentence = statement[start:end]
        lead = _INSTRUCTION_LEAD.match(sentence)
        if lead and not _INSTRUCTION.search(sentence[lead.end():]) and sentence[lead.end():].strip(" .!?;:\t"):
            flags.append("instruction")  # the lead is data to flag, the rest is the fact
            start += lead.end()
            sentence = statement[start:end]
        if (hedge := HEDGE.match(sentence)) and sentence[hedge.end():].strip(" .!?;:\t"):
            flags.append("hedge")
        if _INSTRUCTION.search(sentence):
            flags.append("instruction")
        elif sentence.strip(" .!?;:\t"):
            spans.append((start, end))
        pos = m.end() if m else len(statement)
    if not spans:
        what = ("only an instruction to the model" if "instruction" in flags else
                "only a role tag" if "role_tag" in flags else "empty")
        raise NoFactError(f"the statement is {what}, not a fact; write the fact itself, e.g. "
                          "'The Zephyr gateway listens on port 9000'")
    if len(spans) > 1:
        flags.append("several_sentences")
    start, end = spans[0]
    while start < end and statement[start].isspace():
        start += 1
    return Screened(statement[start:end].rstrip(), start, tuple(dict.fromkeys(flags)))
