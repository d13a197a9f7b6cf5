"""The query a scope check sees in a conversation: the last user message, with its references resolved.

A follow-up names its subject by pronoun or description ("Where did she study?", "Who founded it?", "When
was the company started?"). Retrieval and the scope checkers need the name, so :func:`resolve` rewrites
the last user message with the pronoun or description replaced by the most recent *compatible* entity named
in the turns before it, within a bounded window (:data:`WINDOW_TURNS` user/assistant turns and
:data:`WINDOW_CHARS` characters, newest first).

Candidate entities, newest turn first and, within a turn, last mention first:

1. subjects of stored edits that the earlier turn names (the caller passes them in: the workflow retrieves
   edits for each earlier turn only when the question needs resolving), and
2. capitalised names in the turn's text ("Marie Curie", "Acme Corp"), leading function words dropped.

Compatibility: *he/she/him/her/his/hers* want a person, *it/its* a non-person, *they/them/their* any
entity; a description "the <noun>" wants an entity of that kind (``company``, ``city``, ``person``...) or,
failing that, one the earlier turn described with the same noun ("Acme, the company that..."). An entity
is a person when a person pronoun follows it in its turn or its name reads like a personal name (two or three
capitalised words with no organisation, place or work word); an organisation when its name carries an
organisation word. A reference is left as it is when the question names that entity already, or names the
subject of a stored edit of a compatible kind itself; a question with no pronoun or description is left alone. Tool turns (``tool`` results, assistant ``tool_calls``) are never the query
and are not searched for entities: the question is the user's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Sequence

from .injection import _content_text
from .scope.text import find_subject, normalise

WINDOW_TURNS = 3  # earlier user/assistant turns searched for entities, newest first
WINDOW_CHARS = 4000  # and no more text than this (about 1000 tokens)

Kind = Literal["person", "org", "place", "thing", "any"]

_PERSON_PRONOUNS = {"he", "she", "him", "her", "his", "hers", "himself", "herself"}
_THING_PRONOUNS = {"it", "its", "itself"}
_PLURAL_PRONOUNS = {"they", "them", "their", "theirs"}
_POSSESSIVE = {"his", "its", "their", "hers", "theirs"}
# Type nouns of a description ("the company") and the kind of entity they refer to: general English, not a dataset's.
_TYPE_NOUNS: dict[str, Kind] = {
    **dict.fromkeys(("company", "firm", "corporation", "business", "organisation", "organization", "startup", "brand",
                     "group", "institution", "university", "school", "bank", "club", "team", "band", "party",
                     "agency", "studio", "label", "publisher", "manufacturer", "airline", "network"), "org"),
    **dict.fromkeys(("city", "town", "country", "state", "region", "island", "village", "nation", "province",
                     "capital", "place", "river", "mountain", "lake"), "place"),
    **dict.fromkeys(("person", "man", "woman", "guy", "lady", "author", "writer", "actor", "actress", "singer",
                     "player", "politician", "scientist", "artist", "musician", "composer", "painter",
                     "athlete"), "person"),  # no role words (CEO, founder): "the CEO" asks a relation
    **dict.fromkeys(("book", "novel", "film", "movie", "song", "album", "game", "product", "device", "car", "ship",
                     "building", "painting", "show", "series", "language", "software", "app"), "thing"),
}
_ORG_WORDS = {"inc", "corp", "corporation", "company", "co", "ltd", "llc", "plc", "group", "gmbh", "ag", "sa",
              "university", "bank", "institute", "college", "school", "club", "fc", "association", "foundation",
              "agency", "airlines", "records", "studios", "party", "society", "council", "technologies",
              "systems", "labs", "motors", "holdings"}
_PLACE_WORDS = {"city", "river", "mount", "mountain", "lake", "island", "islands", "republic", "kingdom", "county",
                "province", "state", "states", "bay", "sea", "ocean", "valley"}
_THING_WORDS = {"tower", "building", "bridge", "museum", "theatre", "theater", "station", "airport", "dam", "hotel",
                "stadium", "park", "church", "cathedral", "castle", "palace", "hall", "library", "hospital", "express",
                "railway", "road", "street", "square", "gallery", "centre", "center", "festival", "award", "prize", "cup",
                "league", "series", "show", "film", "album", "song", "book", "novel", "trilogy", "war", "treaty", "act",
                "glacier", "massif", "krai", "oblast", "district", "canal", "peninsula", "desert", "forest", "port"}
_FUNCTION_WORDS = {"the", "a", "an", "and", "or", "but", "who", "what", "where", "when", "why", "how", "which", "is",
                   "was", "are", "were", "do", "does", "did", "can", "could", "will", "would", "should", "i", "you",
                   "we", "my", "your", "our", "tell", "me", "please", "yes", "no", "ok", "okay", "thanks", "thank",
                   "sure", "hi", "hello", "also", "so", "then", "now", "in", "on", "at", "of", "for", "to", "by",
                   "from", "with", "about", "as", "if", "this", "that", "these", "those", "there", "here", "it",
                   "its", "he", "she", "they", "his", "her", "their", "him", "them", "let", "well", "sorry"}
_TOKEN = r"(?:[A-Z]\.|[A-Z](?:[\w'’&-]|\.(?=\w))*)"  # "Curie", "J.", "AT&T", "U.S"; a sentence's full stop is not part
_NAME = re.compile(rf"\b{_TOKEN}(?:\s+(?:(?:of|de|van|von|da|der|la|le|du|the)\s+)?{_TOKEN})*")
_CONTRACTED = {"m", "s", "re", "ve", "ll", "d", "t"}  # I'm, it's, we're, I've, I'll, I'd, don't
_WORD = re.compile(r"[A-Za-z][A-Za-z'’]*")
_FOLLOWERS_NOT_NOUNS = {"and", "or", "to", "in", "at", "on", "for", "with", "from", "by", "about", "as", "is", "was",
                        "that", "than", "if", "when", "because", "so", "but"}


@dataclass
class Entity:
    """A name an earlier turn used, with its guessed kind and where it came from."""

    name: str
    kind: Kind
    source: Literal["edit subject", "name"]
    described_as: set[str] = field(default_factory=set)  # type nouns the turn used next to it ("the company")
    sure: bool = True  # the kind has evidence (an organisation word, a pronoun after it), not only the name's shape


@dataclass
class Resolution:
    """What :func:`resolve` did: ``query`` as the user wrote it, ``resolved`` what retrieval and scope see."""

    query: str
    resolved: str
    replaced: list[tuple[str, str, str]] = field(default_factory=list)  # (what the user wrote, entity, its source)

    @property
    def changed(self) -> bool:
        return self.resolved != self.query

    def describe(self) -> str:
        """One line for decisions and logs: ``'she' -> 'Marie Curie' (edit subject)``."""
        return ", ".join(f"{src!r} -> {name!r} ({how})" for src, name, how in self.replaced)


def turns(messages: Sequence[dict[str, Any]]) -> tuple[str, list[tuple[str, str]]]:
    """The last user message's text and the earlier user/assistant turns (role, text), newest first, without tool
    turns: ``tool`` results and assistant messages that only call tools."""
    last = None
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            last = i
            break
    if last is None:
        return "", []
    earlier: list[tuple[str, str]] = []
    for m in reversed(messages[:last]):
        role = m.get("role")
        if role not in ("user", "assistant"):
            continue
        text = _content_text(m.get("content")).strip()
        if text:
            earlier.append((str(role), text))
    return _content_text(messages[last].get("content")), earlier


def window(earlier: Sequence[tuple[str, str]], *, max_turns: int = WINDOW_TURNS,
           max_chars: int = WINDOW_CHARS) -> list[str]:
    """The texts of the earlier turns inside the window, newest first (the last one cut to the character budget)."""
    out: list[str] = []
    left = max_chars
    for _, text in earlier[:max_turns]:
        if left <= 0:
            break
        out.append(text[-left:])
        left -= len(text)
    return out


def _reference(query: str) -> list[tuple[int, int, str, Kind, bool]]:
    """(start, end, text, wanted kind, possessive) of each pronoun or "the <type noun>" in ``query``."""
    words = list(_WORD.finditer(query))
    out: list[tuple[int, int, str, Kind, bool]] = []
    for i, m in enumerate(words):
        w = m.group(0).lower()
        nxt = words[i + 1].group(0).lower() if i + 1 < len(words) else ""
        owned = nxt.endswith(("'s", "’s"))
        nxt = nxt[:-2] if owned else nxt
        gap = query[m.end():words[i + 1].start()] if i + 1 < len(words) else ""
        if w in ("it's", "it’s"):  # "who is it's partner town?": the common misspelling of "its"
            out.append((m.start(), m.end(), m.group(0), "thing", True))
        elif w in _PERSON_PRONOUNS or w in _THING_PRONOUNS or w in _PLURAL_PRONOUNS:
            kind: Kind = "person" if w in _PERSON_PRONOUNS else "thing" if w in _THING_PRONOUNS else "any"
            possessive = w in _POSSESSIVE or (w == "her" and bool(nxt) and not gap.strip() and nxt not in _FOLLOWERS_NOT_NOUNS)
            out.append((m.start(), m.end(), m.group(0), kind, possessive))
        elif w in ("the", "this", "that") and nxt in _TYPE_NOUNS and not gap.strip(" ") and \
                not re.match(r"\s+of\b", query[words[i + 1].end():], re.IGNORECASE):  # "the capital of X" asks a relation
            end = words[i + 1].end() - (2 if owned else 0)
            out.append((m.start(), end + (2 if owned else 0), query[m.start():end], _TYPE_NOUNS[nxt], owned))
    return out


def _kind_of(name: str, text: str) -> tuple[Kind, bool]:
    """The entity's kind, and whether the text gives evidence for it (rather than the name's shape alone)."""
    words = normalise(name).split()
    if any(w in _ORG_WORDS for w in words):
        return "org", True
    if any(w in _PLACE_WORDS for w in words):
        return "place", True
    if any(w in _THING_WORDS for w in words):
        return "thing", True
    at = text.find(name)
    after = text[at + len(name):at + len(name) + 200].lower() if at >= 0 else ""
    if re.search(r"\b(?:he|she|his|her|him)\b", after):
        return "person", True
    if 2 <= len(words) <= 3 and all(w.isalpha() for w in words):
        return "person", False  # "Marie Curie", but also "Full House" or "Krasnoyarsk Krai"
    return "thing", False


def _described(name: str, text: str) -> set[str]:
    """Type nouns the text puts next to ``name``: "Acme, the company that", "the company Acme"."""
    found: set[str] = set()
    esc = re.escape(name)
    for m in re.finditer(rf"{esc}\s*,\s*(?:a|an|the)\s+(\w+)(?:\s+(\w+))?|\bthe\s+(\w+)\s+{esc}", text, re.IGNORECASE):
        found.update(n.lower() for n in m.groups() if n and n.lower() in _TYPE_NOUNS)
    return found


def _contraction(word: str) -> bool:
    """A contracted function word ("I'm", "It's", "Don't", "Let's"): no name, whatever its capital."""
    head, sep, tail = word.replace("’", "'").partition("'")
    return bool(sep) and tail.lower() in _CONTRACTED and (head.lower() in _FUNCTION_WORDS or (tail.lower() == "t" and head.lower().endswith("n")))


def names_in(text: str) -> list[str]:
    """Capitalised names in ``text``, last mention first, leading function words dropped ("Did Marie Curie" ->
    "Marie Curie")."""
    out: list[str] = []
    for m in _NAME.finditer(text):
        if " " not in m.group(0) and re.search(r"(?:^|[.!?:]\s*)$", text[:m.start()]) and \
                re.match(r"\s*(?:[.!?,;:]|$)", text[m.end():]):
            continue  # a one-word sentence or interjection ("Fine.", "Sure, ...") is no name
        words = m.group(0).rstrip(".'’").split()
        while words and (_contraction(words[0]) or words[0].lower().strip("'’") in _FUNCTION_WORDS):
            words = words[1:]
        name = " ".join(words).rstrip(".'’")
        if name.endswith(("'s", "’s")):
            name = name[:-2]
        if len(name) >= 2 and name.lower() not in _FUNCTION_WORDS and name.lower() not in _TYPE_NOUNS:
            out.append(name)
    out.reverse()
    seen: list[str] = []
    for n in out:
        if normalise(n) not in {normalise(s) for s in seen}:
            seen.append(n)
    return seen


def entities(text: str, subjects: Iterable[str] = ()) -> list[Entity]:
    """The entities of one turn: stored edit subjects it names first (by their last mention), then other names."""
    out: list[Entity] = []
    taken: set[str] = set()
    located = []
    for s in subjects:
        spelled = find_subject(text, [s])
        if spelled:
            pos = normalise(text).rfind(spelled)
            located.append((pos, s))
    for _, s in sorted(located, key=lambda x: -x[0]):
        if normalise(s) not in taken:
            kind, sure = _kind_of(s, text)
            out.append(Entity(s, kind, "edit subject", _described(s, text), sure))
            taken.add(normalise(s))
    for n in names_in(text):
        if not any(normalise(n) in t.split(" ") or f" {normalise(n)} " in f" {t} " or f" {t} " in f" {normalise(n)} "
                   for t in taken):
            kind, sure = _kind_of(n, text)
            out.append(Entity(n, kind, "name", _described(n, text), sure))
            taken.add(normalise(n))
    return out


def _compatible(ent: Entity, kind: Kind, noun: str | None, *, loose: bool = False) -> bool:
    """Whether ``ent`` can be what a reference of ``kind`` (or "the ``noun``") means; ``loose`` also lets a pronoun
    take an entity whose kind is only guessed from its name's shape."""
    if noun is not None and noun in ent.described_as:
        return True
    if kind == "any" or (loose and not ent.sure and (ent.source == "edit subject" or " " in ent.name)):
        return True
    if kind == "thing":  # "it" is anything but a person
        return ent.kind != "person"
    return ent.kind == kind


def _pick(pool: Sequence[Entity], kind: Kind, noun: str | None) -> Entity | None:
    """The entity a reference means: a compatible one of known kind, else a stored edit's subject, else a plain name
    (newest first within each); then the same with kinds only guessed from a name's shape let through."""
    def rank(e: Entity) -> int:
        return 0 if e.sure else 1 if e.source == "edit subject" else 2

    for loose in (False, True):
        fits = [e for e in pool if _compatible(e, kind, noun, loose=loose)]
        if fits:
            return min(fits, key=rank)  # min keeps the first (newest) of equal rank
    return None


def resolve(messages: Sequence[dict[str, Any]], *, subjects_of: Callable[[str], list[str]] | None = None,
            max_turns: int = WINDOW_TURNS, max_chars: int = WINDOW_CHARS) -> Resolution:
    """The last user message with its pronouns and descriptions replaced by the entities they most likely refer to.

    ``subjects_of(text)`` gives the subjects of stored edits relevant to an earlier turn (the workflow retrieves
    them); it is only called when the question has something to resolve."""
    query, earlier = turns(messages)
    res = Resolution(query, query)
    refs = _reference(query)
    if not refs or not earlier:
        return res
    texts = window(earlier, max_turns=max_turns, max_chars=max_chars)
    pool: list[Entity] = []
    for text in texts:
        pool.extend(entities(text, subjects_of(text) if subjects_of else ()))
    if not pool:
        return res
    named = {normalise(e.name) for e in pool if find_subject(query, [e.name])}
    # "Where did Acme Corp start? Who runs it?": a stored edit's subject the question names itself is what "it" is;
    # other names in the question do not stop the resolution (a lead-in sentence often names something else)
    own = [e for e in entities(query, subjects_of(query) if subjects_of else ()) if e.source == "edit subject"]
    chosen: dict[int, Entity] = {}
    # Specific references first; a plural pronoun then takes no entity a singular one took ("what do they speak
    # in it?": "they" are the people, "it" the place).
    for at, (_, _, said, kind, _) in sorted(enumerate(refs), key=lambda r: r[1][3] == "any"):
        noun = said.split()[-1].lower() if " " in said else None
        if any(_compatible(e, kind, noun) for e in own):
            continue
        taken = {id(e) for e in chosen.values()} if kind == "any" else set()
        ent = _pick([e for e in pool if id(e) not in taken], kind, noun)
        if ent is None and kind in ("org", "place"):  # a single unknown name ("Acme") can still be "the company"
            ent = next((e for e in pool if e.kind == "thing"), None)
        if ent is not None and normalise(ent.name) not in named:  # something fits, and the query does not name it
            chosen[at] = ent
    out, last = [], 0
    for at, (start, end, said, _, possessive) in enumerate(refs):
        if (ent := chosen.get(at)) is None:
            continue
        out.append(query[last:start] + ent.name + ("'s" if possessive else ""))
        last = end
        res.replaced.append((said, ent.name, ent.source))
    if res.replaced:
        res.resolved = "".join(out) + query[last:]
    return res


__all__ = ["Entity", "Resolution", "WINDOW_CHARS", "WINDOW_TURNS", "entities", "names_in", "resolve", "turns", "window"]
