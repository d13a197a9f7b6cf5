"""Short names of a subject: a person's surname, an organisation's acronym, a country's adjective.

Users rarely repeat a full name: "Arkwright" for "Richard Arkwright", "IBM" for "International Business
Machines Corporation", "the French capital" for France's capital. These short forms are riskier than the full name
("who" is also the World Health Organization's acronym; "Maria Arkwright" is somebody else), so each comes with the
spelling it must have in the raw query (:func:`short_names`), and :func:`short_name_in` checks it there: the
capitalised surname not preceded by another capitalised name word, the acronym in capitals, the adjective
capitalised. The tables are general knowledge, not any benchmark's vocabulary.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# Head words of names that are not people ("Harbour Museum", "Calder Bridge"): such a name has no surname.
_NOT_PERSON = frozenset("""academy agency airport alliance association bank band bay beach bridge building cafe castle cathedral
centre center church city clinic club coast college company corporation council county court district embassy empire
express festival forest foundation fund gallery group hall harbour harbor hill hospital hotel house inc institute island
kingdom lake league library limited ltd mall market ministry motors mount mountain museum network new north ocean office
orchestra organization organisation palace park party plaza port press project railway records republic restaurant
river road school sea society south square station street studio studios system team temple theatre theater tower
town trust union university valley village west east world zoo""".split())
# Words an acronym leaves out.
_MINOR = frozenset("of and the for in on at to de du la le des von van da del".split())
_PARTICLES = frozenset("van von de da del della di du le la der den ter".split())  # part of a surname
_SUFFIXES = frozenset("corporation corp company co inc incorporated limited ltd group plc llc".split())
# Country -> adjective / demonym (the form "the French capital" uses).
DEMONYMS: dict[str, tuple[str, ...]] = {
    "afghanistan": ("Afghan",), "albania": ("Albanian",), "algeria": ("Algerian",), "argentina": ("Argentine", "Argentinian"),
    "armenia": ("Armenian",), "australia": ("Australian",), "austria": ("Austrian",), "bangladesh": ("Bangladeshi",),
    "belgium": ("Belgian",), "bolivia": ("Bolivian",), "brazil": ("Brazilian",), "bulgaria": ("Bulgarian",),
    "cambodia": ("Cambodian",), "canada": ("Canadian",), "chile": ("Chilean",), "china": ("Chinese",),
    "colombia": ("Colombian",), "croatia": ("Croatian",), "cuba": ("Cuban",), "czech republic": ("Czech",),
    "denmark": ("Danish",), "egypt": ("Egyptian",), "england": ("English",), "estonia": ("Estonian",),
    "ethiopia": ("Ethiopian",), "finland": ("Finnish",), "france": ("French",), "georgia": ("Georgian",),
    "germany": ("German",), "ghana": ("Ghanaian",), "greece": ("Greek",), "hungary": ("Hungarian",),
    "iceland": ("Icelandic",), "india": ("Indian",), "indonesia": ("Indonesian",), "iran": ("Iranian",), "iraq": ("Iraqi",),
    "ireland": ("Irish",), "israel": ("Israeli",), "italy": ("Italian",), "japan": ("Japanese",), "kenya": ("Kenyan",),
    "korea": ("Korean",), "south korea": ("South Korean",), "north korea": ("North Korean",), "latvia": ("Latvian",),
    "lebanon": ("Lebanese",), "lithuania": ("Lithuanian",), "malaysia": ("Malaysian",), "mexico": ("Mexican",),
    "morocco": ("Moroccan",), "nepal": ("Nepalese", "Nepali"), "netherlands": ("Dutch",), "the netherlands": ("Dutch",),
    "new zealand": ("New Zealand",), "nigeria": ("Nigerian",), "norway": ("Norwegian",), "pakistan": ("Pakistani",),
    "peru": ("Peruvian",), "philippines": ("Filipino", "Philippine"), "poland": ("Polish",), "portugal": ("Portuguese",),
    "romania": ("Romanian",), "russia": ("Russian",), "saudi arabia": ("Saudi",), "scotland": ("Scottish",),
    "serbia": ("Serbian",), "singapore": ("Singaporean",), "slovakia": ("Slovak",), "slovenia": ("Slovenian",),
    "south africa": ("South African",), "spain": ("Spanish",), "sweden": ("Swedish",), "switzerland": ("Swiss",),
    "syria": ("Syrian",), "taiwan": ("Taiwanese",), "thailand": ("Thai",), "tunisia": ("Tunisian",), "turkey": ("Turkish",),
    "ukraine": ("Ukrainian",), "united kingdom": ("British",), "uk": ("British",), "united states": ("American",),
    "united states of america": ("American",), "usa": ("American",), "uruguay": ("Uruguayan",), "venezuela": ("Venezuelan",),
    "vietnam": ("Vietnamese",), "wales": ("Welsh",),
}
_NAME_WORD = re.compile(r"[A-Z][\w'\-]*")
_TITLES = frozenset("mr mrs ms miss dr prof professor sir dame lord lady president coach captain".split())


class ShortName(NamedTuple):
    normalised: str  # as name_variants spells it (lower case)
    raw: str  # the spelling the raw query must contain (case-sensitive)
    kind: str  # "surname", "acronym" or "demonym"


def _fold(text: str) -> str:
    from .text import fold

    return fold(text)


# A name word: capitalised, with an inner capital after Mc/Mac/O'/a hyphen ("McGowan", "O'Neill", "Tindal-Carill"), in
# any alphabet ("Bronisław" keeps its "ł" after folding); and a middle initial ("D", "J.").
_SURNAME_WORD = re.compile(r"(?:Ma?c|O'|D')?[^\W\d_][^\W\d_'\-]*(?:['\-][^\W\d_][^\W\d_'\-]*)*")
_INITIAL = re.compile(r"[A-Z]\.?")


def surname(name: str) -> str | None:
    """The surname of a person-like name ("Richard Arkwright" -> "Arkwright", "Brent D Wainwright" -> "Wainwright",
    "Aaron Michael McGowan" -> "McGowan"): 2-4 capitalised words (middle initials allowed, not first or last), no head
    word of a place or an organisation, a last word of 4+ letters; else None."""
    words = _fold(name).strip().split()
    if not 2 <= len(words) <= 4:
        return None
    first, *middle, last = words
    if len(first) < 2 or not all(w[:1].isupper() and _SURNAME_WORD.fullmatch(w) for w in (first, last)):
        return None
    if not all(_INITIAL.fullmatch(w) or w in _PARTICLES or (w[:1].isupper() and _SURNAME_WORD.fullmatch(w))
               for w in middle):
        return None
    if first.lower() in ("the", "a", "an"):  # a title ("The Shooting Star": not a person called Star)
        return None
    if any(w.lower() in _NOT_PERSON for w in words) or len(last) < 4 or last.isupper():
        return None
    if middle and middle[-1].lower() in _PARTICLES and middle[-1][:1].isupper():  # "Van Damme"; "van Beethoven": "Beethoven"
        return f"{middle[-1]} {last}"
    return last


def acronyms(name: str) -> list[str]:
    """Acronyms of a multi-word name ("European Space Agency" -> "ESA"), with and without a corporate suffix; 3+
    letters."""
    words = [w for w in _fold(name).strip().split() if w and w.lower() not in _MINOR]
    words = [w for w in words if w[:1].isalpha()]
    out = []
    for ws in (words, [w for w in words if w.lower().strip(".") not in _SUFFIXES]):
        if len(ws) >= 3 and all(w[:1].isupper() for w in ws):
            acro = "".join(w[0] for w in ws).upper()
            if acro not in out:
                out.append(acro)
    return out


def short_names(name: str) -> list[ShortName]:
    """The short forms of ``name`` (see the module docstring), each with the raw spelling a query must use."""
    out: list[ShortName] = []
    if (sn := surname(name)) is not None:
        out.append(ShortName(sn.lower(), sn, "surname"))
    out += [ShortName(a.lower(), a, "acronym") for a in acronyms(name)]
    key = " ".join(re.sub(r"[^\w\s]", " ", _fold(name).lower()).split())
    out += [ShortName(d.lower(), d, "demonym") for d in DEMONYMS.get(key, ())]
    return out


def short_name_in(query: str, short: ShortName) -> bool:
    """Whether the raw ``query`` uses ``short`` as the subject's name (case-sensitive; a surname must not follow another
    capitalised name word: "Maria Arkwright" is not "Richard Arkwright")."""
    text = _fold(query)
    for m in re.finditer(r"(?<![\w\-])" + re.escape(short.raw) + r"(?![\w\-])", text):
        if short.kind != "surname":
            return True
        before = text[: m.start()].rstrip()
        prev = re.search(r"([\w'\-]+)\W*$", before)
        # a sentence's end, not an initial's full stop ("Ryan P. Kelly" is not Megan A Kelly)
        at_start = not before or (before[-1] in ".!?:;\"(" and not re.search(r"(?<![\w.])[A-Z]\.$", before))
        if prev and not at_start and _NAME_WORD.fullmatch(prev.group(1)) and not before.endswith(",") \
                and prev.group(1).lower().rstrip(".") not in _TITLES:
            continue  # "Maria Arkwright", "Dr. Arkwright" aside: another name word in front of it
        return True
    return False


__all__ = ["DEMONYMS", "ShortName", "acronyms", "short_name_in", "short_names", "surname"]
