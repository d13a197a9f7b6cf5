"""The user-style scope benchmark (issue 17): its builder reads training files only and is deterministic, the suite
loads through the harness, and the subject's short names (surname, acronym, country adjective) match while
look-alikes do not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentedit.evaluation.loaders import DATASETS, load_dataset
from agentedit.evaluation.suites import config_from_suite, load_suite
from agentedit.evaluation.userstyle import read_records
from agentedit.scope.names import acronyms, short_names, surname
from agentedit.scope.text import find_subject, name_variants, query_relation

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets"
EVALUATION_FILES = ("counterfact-edit.json", "ZsRE-test-all.json", "MQuAKE", "trivia_qa_test.json",
                    "counterfact_portability_gpt4.json")


@pytest.mark.skipif(not (DATA / "counterfact" / "counterfact-train.json").exists(), reason="shared datasets not here")
def test_builder_reads_training_files_only_and_is_deterministic() -> None:
    from evals.userstyle.build import OUT, SOURCES, Builder, read_sources

    opened: list[str] = []
    sources = read_sources(DATA, opened)
    assert sorted(Path(p).name for p in opened) == ["counterfact-train.json", "train_cf.json", "trivia_qa_train.json"]
    assert not [p for p in opened for bad in EVALUATION_FILES if bad in p]
    assert all(p.endswith(rel) for p, rel in zip(opened, SOURCES.values()))
    first, second = Builder(sources).build(), Builder(read_sources(DATA)).build()
    assert first == second
    committed = [json.loads(line) for line in OUT.read_text("utf-8").splitlines() if line.strip()]
    assert committed == first  # the committed file is what the seeded builder writes


def test_benchmark_composition() -> None:
    records = read_records()
    hand = [r for r in records if r["origin"] == "hand"]
    assert len(hand) >= 60
    types = {p["type"] for r in records for p in r["probes"]}
    assert {"question", "surname", "acronym", "demonym", "lookalike", "same-subject-other-relation",
            "same-relation-other-subject", "followup-in", "followup-out", "joined"} <= types
    assert any(len(r["edits"]) == 2 and r["supersedes"] for r in hand)
    for r in records:
        for p in r["probes"]:
            assert ("prompt" in p) != ("messages" in p)
            assert not p["in_scope"] or p.get("target") or not r["edits"]


def test_suite_loads_through_the_harness() -> None:
    assert "userstyle" in DATASETS
    config = config_from_suite(load_suite("userstyle"))
    assert config.datasets == ["userstyle"]
    cases = load_dataset("userstyle", limit=None)
    assert len(cases) == len(read_records())
    conv = [p for c in cases for p in c.probes if p.messages]
    assert conv and all(p.prompt == p.messages[-1]["content"] for p in conv)
    corrected = [c for c in cases if len(c.edits) == 2]
    assert corrected and all(c.edits[0]["prompt"] == c.edits[1]["prompt"] for c in corrected)


def test_short_names() -> None:
    assert surname("Richard Arkwright") == "Arkwright"
    # middle initials, inner capitals, letters beyond ASCII, particles
    assert surname("Brent D Wainwright") == "Wainwright" and surname("Orrin J. Williams") == "Williams"
    assert surname("Aaron Michael McGowan") == "McGowan" and surname("Steve O'Neill") == "O'Neill"
    assert surname("Bronisław Szymański") == "Szymanski" and surname("Jean-Claude Van Damme") == "Van Damme"
    assert surname("Ludwig van Beethoven") == "Beethoven"
    assert surname("D Wainwright") is None and surname("Brent D") is None  # an initial is never first or last
    assert surname("Air France KLM") is None and surname("New York City") is None
    assert surname("Harbour Museum") is None and surname("Paris") is None
    assert surname("The Shooting Star") is None  # a title: "Star Wars" does not name it
    assert "ESA" in acronyms("European Space Agency")
    assert "IBM" in acronyms("International Business Machines Corporation")
    assert "NASA" in acronyms("National Aeronautics and Space Administration")
    assert [s.raw for s in short_names("France")] == ["French"]
    assert "french" in name_variants("France", short_forms=True) and "french" not in name_variants("France")


@pytest.mark.parametrize("query, subject", [
    ("Which language did Arkwright grow up speaking?", "Richard Arkwright"),
    ("Who does Wainwright work for?", "Brent D Wainwright"),
    ("Which prize did Szymański win?", "Bronisław Szymański"),
    ("Is Dr. Arkwright Italian?", "Richard Arkwright"),
    ("Where is IBM based?", "International Business Machines Corporation"),
    ("When was ESA founded?", "European Space Agency"),
    ("What is the French capital?", "France"),
    ("Who is the Dutch head of state?", "Netherlands"),
])
def test_short_names_name_the_subject(query: str, subject: str) -> None:
    assert find_subject(query, [subject]) is not None


@pytest.mark.parametrize("query, subject", [
    ("What language does Peter Arkwright speak?", "Richard Arkwright"),  # same surname, another person
    ("who is the director?", "World Health Organization"),  # an acronym must be in capitals
    ("Which language do they speak in french guiana?", "France"),  # an adjective must be capitalised
    ("Who supervises Dana Whitbread?", "Dana Whitfield"),
    ("How much does the Aurora X3 cost?", "Aurora X2"),
    ("Where is the museum?", "Harbour Museum"),
])
def test_look_alikes_do_not_name_the_subject(query: str, subject: str) -> None:
    assert find_subject(query, [subject]) is None


def test_short_name_is_masked_in_the_query_relation() -> None:
    named = find_subject("What is the French capital?", ["France"])
    assert named == "french"
    assert query_relation("What is the French capital?", named) == "What is the X capital?"


@pytest.mark.parametrize("clause, target, ruled_out", [
    ("When did X die?", "Paris", True),
    ("When was X founded?", "1962", False),
    ("Where was X founded?", "1962", True),
    ("How long is X?", "850 metres", False),
    ("How many people live in X?", "Paris", True),
    ("What day is X?", "Thursday", False),
    ("When was X born?", "Sir John Pakington, 3rd Baronet", True),  # an ordinal inside a name is no date
    ("When was X released?", "DC-9", True),  # nor a model number
    ("When does X leave?", "07:15", False),
    ("When are salaries paid at X?", "the 25th", False),
    ("When was X built?", "the 19th century", False),
    ("Who wrote X?", "Leonie Maas", False),
    ("What is the X capital?", "Lyon", False),
])
def test_answer_kind_veto(clause: str, target: str, ruled_out: bool) -> None:
    from agentedit.scope.contrast import answer_conflict

    assert (answer_conflict(clause, target) is not None) == ruled_out


@pytest.mark.parametrize("clause, relation, ruled_out", [
    ("Who owns X?", "X is headquartered in", True),  # a place after "in" is nobody
    ("Which company controls X?", "X, whose headquarters are in", True),
    ("Who founded X?", "X was founded in", True),
    ("Where is X based?", "X is headquartered in", False),
    ("Who owns X?", "X is owned by", False),
    ("Who employs X?", "X works at", False),  # "at Google": an organisation may follow "at" or "on"
    ("Which network first aired X?", "X premiered on", False),
    ("In which language was X first produced?", "X was written by", True),  # someone follows "by"
    ("Where was X founded?", "X was founded by", True),
    ("Who wrote X?", "X was written by", False),
    # asked of another thing through a relative clause: the answer kind is that thing's, not the fact's
    ("In which city is the company that produces X headquartered?", "X is produced by", False),
    ("In which city is the company responsible for developing X headquartered?", "X is developed by", False),
    ("Who is the mayor of the city where X is headquartered?", "X is headquartered in", False),
])
def test_the_answer_kind_the_relation_gives(clause: str, relation: str, ruled_out: bool) -> None:
    from agentedit.scope.contrast import answer_conflict

    assert (answer_conflict(clause, "Oslo", relation) is not None) == ruled_out
    assert answer_conflict(clause, "Oslo") is None  # without the edit's relation, no rule applies


def test_query_relations_covers_every_clause() -> None:
    from agentedit.scope.text import query_relations

    rels = query_relations("When was Roland Freisler born, and where did he die?", "Roland Freisler")
    assert any("born" in r for r in rels) and any("where did X die" in r for r in rels)


@pytest.mark.parametrize("query, subject, relation", [
    ("Where was A. Leonard Allen born?", "A. Leonard Allen", "Where was X born?"),  # an initial's stop ends nothing
    ("I met Dr. Rao. Where does Dr. Rao work?", "Rao", "Where does Dr. X work?"),
    ("It is in Cardiff City F.C. Mark Isham plays", "Mark Isham", "X plays"),  # a dotted acronym may end one
    ("Who at Acme Inc. hired Mark Isham?", "Mark Isham", "Who at Acme Inc. hired X?"),  # nor an abbreviation's
    ("No. Where was Mark Isham born?", "Mark Isham", "Where was X born?"),  # "No." ends one before a word
    ("Which line stops at No. 5 Mark Lane?", "Mark Lane", "Which line stops at No. 5 X?"),  # not before a number
])
def test_the_sentence_that_names_the_subject(query: str, subject: str, relation: str) -> None:
    from agentedit.scope.text import query_relations

    assert query_relations(query, subject)[0] == relation


def test_relation_clauses_checker() -> None:
    from agentedit.memory import shared_embedder
    from agentedit.records import build_record
    from agentedit.scope import make_checker
    from agentedit.types import Candidate

    checker = make_checker("relation-clauses", embedder=shared_embedder())
    rec = build_record({"prompt": "Roland Freisler died in", "subject": "Roland Freisler", "target_new": "Berlin", "id": "a"})

    def accepted(q: str) -> bool:
        return checker.check(q, [Candidate(rec, 0.7)])[0].in_scope

    assert accepted("When was Roland Freisler born, and where did he die?")
    assert accepted("Where did Freisler die?")
    assert not accepted("When did Roland Freisler die?")
    assert not accepted("Where did Maria Freisler die?")


@pytest.mark.parametrize("data, names, relation", [
    ({"prompt": "Google employs", "subject": "Google", "target_new": "Alan Sugar"}, ["Alan Sugar"], "Someone employs X"),
    ({"prompt": "The river Ostra flows into", "subject": "Ostra", "target_new": "the Baltic Sea"}, ["Baltic Sea"],
     "The river Someone flows into X"),
    ({"prompt": "Valentin Sardou is the father of", "subject": "Valentin Sardou", "target_new": "Al-Amir bi-Ahkam Allah"},
     ["Al-Amir bi-Ahkam Allah"], "Someone is the father of X"),
    ({"prompt": "Microsoft owns", "subject": "Microsoft", "target_new": "iWork"}, ["iWork"], "Someone owns X"),
    ({"prompt": "Hannah Koenig teaches", "subject": "Hannah Koenig", "target_new": "chemistry"}, [], None),
    ({"prompt": "Hannah Koenig teaches", "subject": "Hannah Koenig", "target_new": "organic chemistry"}, [], None),
    ({"prompt": "The Orion Tower has", "subject": "Orion Tower", "target_new": "88 floors"}, [], None),
    ({"prompt": "Kobe is twinned with", "subject": "Kobe", "target_new": "kobe"}, [], None),
])
def test_the_answers_end_of_a_fact(data: dict, names: list, relation: str | None) -> None:
    from agentedit.records import build_record
    from agentedit.scope.views import answer_names, answer_relation

    rec = build_record(data)
    assert answer_names(rec) == names
    assert answer_relation(rec) == relation


def test_a_fact_is_asked_from_either_end() -> None:
    from agentedit.memory import shared_embedder
    from agentedit.records import build_record
    from agentedit.scope import make_checker
    from agentedit.types import Candidate

    checker = make_checker("relation-clauses", embedder=shared_embedder())
    # A statement parsed with its grammatical subject first: the question names the answer and asks for the subject.
    rec = build_record({"statement": "Valentin Sardou is the dad of Marc Aubert.", "prompt": "Valentin Sardou is the dad of",
                        "subject": "Valentin Sardou", "target_new": "Marc Aubert", "id": "a"})

    def decision(q: str):
        return checker.check(q, [Candidate(rec, 0.7)])[0]

    assert decision("Who is Marc Aubert's father?").in_scope
    assert decision("Who is the dad of Marc Aubert?").in_scope
    assert decision("Whose dad is Valentin Sardou?").in_scope
    # The same relation asked of the answer itself is another fact: Marc Aubert's own children.
    for q in ("Whose father is Marc Aubert?", "Who is Marc Aubert the father of?"):
        assert not decision(q).in_scope and "the fact has it as the holder" in decision(q).reason
    assert not decision("Where was Marc Aubert born?").in_scope
    assert not decision("When did Marc Aubert die?").in_scope  # the answer's end keeps the answer-kind veto: "when" vs a name
    assert not decision("Who is Marc Dupont's father?").in_scope
    # a surname names the answer's end too, in the fact's role only; another first name in front is another person
    assert decision("Who is Aubert's dad?").in_scope
    assert not decision("Whose father is Aubert?").in_scope and not decision("Who is Lea Aubert's dad?").in_scope
    plain = build_record({"prompt": "Hannah Koenig teaches", "subject": "Hannah Koenig", "target_new": "chemistry", "id": "b"})
    assert not checker.check("Who teaches chemistry?", [Candidate(plain, 0.7)])[0].in_scope  # "chemistry" is no name
    # an answer that is a name with a common head noun ("the Solberg concert hall") is read from its end as well
    hall = build_record({"prompt": "Lindqvist Architects designed", "subject": "Lindqvist Architects",
                         "target_new": "the Solberg concert hall", "id": "d"})
    assert checker.check("Who designed the Solberg concert hall?", [Candidate(hall, 0.7)])[0].in_scope
    assert not checker.check("How many seats does the Solberg concert hall have?", [Candidate(hall, 0.7)])[0].in_scope
    network = build_record({"prompt": "Sunday Night Baseball debuted on", "subject": "Sunday Night Baseball",
                            "target_new": "CBS", "id": "c"})
    assert checker.check("Which show debuted on CBS?", [Candidate(network, 0.7)])[0].in_scope
    assert not checker.check("CBS News debuted on", [Candidate(network, 0.7)])[0].in_scope  # CBS News is not CBS


@pytest.mark.parametrize("text, role", [
    ("Who is X's father?", "holder"), ("the dad of X", "holder"), ("Someone employs X", "object"),
    ("Which river flows into X?", "object"), ("Who does X employ?", "other"), ("X", "other"),
    ("Who fathered X?", "object"), ("Whose father is X?", "complement"), ("Someone's father is X", "complement"),
    ("X was written by", "object"), ("X is owned by", "object"), ("X was born in", "other"),  # the passive's subject
    ("people in X officially speak", "holder"), ("Who lives in X?", "object"),
])
def test_masked_role(text: str, role: str) -> None:
    from agentedit.scope.views import masked_role

    assert masked_role(text) == role


def test_same_role_joins_holder_and_object_only() -> None:
    from agentedit.scope.views import same_role

    assert same_role("holder", "object") and same_role("object", "holder") and same_role("complement", "complement")
    assert not same_role("complement", "holder") and not same_role("other", "object") and not same_role("other", "holder")


def test_the_answers_end_asked_in_other_words() -> None:
    from agentedit.anatomy_step import with_anatomy
    from agentedit.memory import shared_embedder
    from agentedit.records import build_record
    from agentedit.scope import make_checker
    from agentedit.types import Candidate

    def build_record_parsed(data: dict) -> Any:
        return build_record(with_anatomy(data, "auto"))

    checker = make_checker("relation-clauses", embedder=shared_embedder())
    dad = build_record_parsed({"statement": "Roden Buxton is the dad of Gao Yifeng.", "id": "dad"})
    assert (dad.subject, dad.target_new) == ("Roden Buxton", "Gao Yifeng")
    assert checker.check("Who fathered Gao Yifeng?", [Candidate(dad, 0.7)])[0].in_scope  # object ~ holder
    assert not checker.check("Whose father is Gao Yifeng?", [Candidate(dad, 0.7)])[0].in_scope  # Gao is the father
    built = build_record_parsed({"statement": "Renault developed DC-9.", "id": "dc9"})
    assert checker.check("Who built DC-9?", [Candidate(built, 0.7)])[0].in_scope  # a name holding a hyphen and a digit
    book = build_record_parsed({"statement": "Azza S El-Demerdash wrote Wotquenne's Catalogue.", "id": "book"})
    assert checker.check("Who wrote Wotquenne's Catalogue?", [Candidate(book, 0.7)])[0].in_scope  # a possessive inside


def test_find_whole_name_wants_the_whole_name() -> None:
    from agentedit.scope.views import find_answer_name, find_whole_name

    assert find_whole_name("Who built DC-9?", ["DC-9"]) == "dc 9"
    assert find_whole_name("Who built DC-9X?", ["DC-9"]) is None  # a piece of a word is no name

    assert find_whole_name("Who employs Alan Sugar?", ["Alan Sugar"]) == "alan sugar"
    assert find_whole_name("Who is Marc Aubert's father?", ["Marc Aubert"]) == "marc aubert"
    assert find_whole_name("What does Sugar do?", ["Alan Sugar"]) is None  # no surnames at the answer's end
    assert find_whole_name("The Canadian is located in", ["Canada"]) is None  # nor country adjectives
    assert find_whole_name("CBS News debuted on", ["CBS"]) is None
    assert find_answer_name("What does Sugar do?", ["Alan Sugar"]) == "sugar"  # a surname spelt as a name
    assert find_answer_name("The Canadian is located in", ["Canada"]) is None  # not a country adjective
    assert find_answer_name("Who founded Google?", ["Google"]) == "google"
    from agentedit.records import build_record
    from agentedit.scope.views import answer_names

    def names(target: str) -> list[str]:
        return answer_names(build_record({"prompt": "X built", "subject": "X", "target_new": target}))

    assert names("the Solberg concert hall") == ["Solberg concert hall"] and names("the Baltic Sea") == ["Baltic Sea"]
    assert names("chemistry") == [] and names("a bishop") == [] and names("Solberg concert hall of fame") == []


@pytest.mark.parametrize("name, core", [
    ("river Ostra", "Ostra"), ("Aurora X2 phone", "Aurora X2"), ("the Blue Heron restaurant", "Blue Heron"),
    ("profession Bruno Quint", "Bruno Quint"), ("La colombe", None), ("Javan surili", None), ("van Gogh", None),
    ("Alan Sugar", None),
])
def test_proper_core_of_a_subject(name: str, core: str | None) -> None:
    from agentedit.scope.text import find_subject, proper_core

    assert proper_core(name) == core
    if core:
        assert find_subject(f"Where is {core} these days?", [name]) == core.lower()


def test_a_relation_that_says_little_borrows_its_answer() -> None:
    from agentedit.memory import shared_embedder
    from agentedit.records import build_record
    from agentedit.scope import make_checker
    from agentedit.scope.views import views
    from agentedit.scope.text import relation_text
    from agentedit.scope.views import with_answer
    from agentedit.types import Candidate

    holds = build_record({"prompt": "Vita Semerenko holds", "subject": "Vita Semerenko", "target_new": "Swiss citizenship",
                          "id": "a"})
    assert with_answer(relation_text(holds), holds) == "X holds Swiss citizenship"
    grew = build_record({"prompt": "Eve Adams grew up speaking", "subject": "Eve Adams", "target_new": "Dutch"})
    assert with_answer(relation_text(grew), grew) is None  # two content words say what is asked
    # the subject's reading, the one with the answer, and the answer's end ("Swiss citizenship" is a name and a noun)
    assert [v.states_answer for v in views(holds, relation_text(holds))] == [False, True, False]
    checker = make_checker("relation-clauses", embedder=shared_embedder())

    def accepted(q: str) -> bool:
        return checker.check(q, [Candidate(holds, 0.7)])[0].in_scope

    assert accepted("Which citizenship does Vita Semerenko hold?")
    [plain] = checker.relation_scores([("Which citizenship does X hold?", "X holds")])
    assert checker.scores("Which citizenship does Vita Semerenko hold?", [Candidate(holds, 0.7)])[0][1] > plain
    assert not accepted("Where was Vita Semerenko born?")
    # A question that already says the answer is not asking for it: the answer-bearing reading is left out.
    assert checker.scores("Is Vita Semerenko's citizenship, which is not Swiss citizenship, Austrian?",
                          [Candidate(holds, 0.7)])[0][1] < checker.scores(
        "Which citizenship does Vita Semerenko hold?", [Candidate(holds, 0.7)])[0][1]


def test_a_clause_naming_the_edits_attribute_counts_as_asking_it() -> None:
    """Just short of the threshold, a clause that names the edit's attribute ("job" and "works as": occupation) is
    accepted; one that names another (employer), or none, or only death against a death (burial), is not."""
    from agentedit.memory import shared_embedder
    from agentedit.records import build_record
    from agentedit.scope import make_checker
    from agentedit.scope.clauses import AGREEMENT_FLOOR
    from agentedit.types import Candidate

    checker = make_checker("relation-clauses", embedder=shared_embedder())
    job = build_record({"prompt": "Dan Fukami works as", "subject": "Dan Fukami", "target_new": "a full stack developer"})
    boss = build_record({"prompt": "Fred Brooks works for", "subject": "Fred Brooks", "target_new": "CBS"})
    died = build_record({"prompt": "Michel Benoist died in", "subject": "Michel Benoist", "target_new": "Lyon"})

    def decided(q: str, rec: Any) -> tuple[bool, float]:
        [(_, score)] = checker.scores(q, [Candidate(rec, 0.7)])
        return checker.check(q, [Candidate(rec, 0.7)])[0].in_scope, score

    [plain] = checker.relation_scores([("What is X's job?", "X works as")])
    assert AGREEMENT_FLOOR <= plain < checker.threshold  # the similarity alone falls short
    assert decided("What is Dan Fukami's job?", job) == (True, checker.threshold)
    assert decided("Who employs Fred Brooks?", boss)[0]
    assert decided("What does Dan Fukami do for a living?", job)[0]  # the attribute in everyday words
    citizen = build_record({"prompt": "Vita Semerenko is a citizen of", "subject": "Vita Semerenko", "target_new": "Peru"})
    assert decided("What nationality is Vita Semerenko?", citizen)[0]
    assert not decided("What is the capital of Vita Semerenko?", citizen)[0]  # capital against country: vetoed
    assert not decided("Who employs Dan Fukami?", job)[0]  # employer against occupation: vetoed
    assert not decided("Where was Dan Fukami born?", job)[0]
    [burial] = checker.relation_scores([("The place of burial of X is", "X died in")])
    assert AGREEMENT_FLOOR <= burial < checker.threshold
    assert decided("The place of burial of Michel Benoist is", died) == (False, burial)  # not raised
