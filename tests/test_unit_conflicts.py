"""Corrections and conflicts (issue 17, item 4) on real components: the on-disk store (Chroma + SQLite), the
MiniLM embedder, the default relation checker's threshold, the RecordingBackend standing in for the model."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentedit import Editor
from agentedit.anatomy import correction_cue
from agentedit.errors import EditConflictError, EditError, EditNotFoundError
from agentedit.memory import EditMemory
from agentedit.scope.conflict import SUPERSEDE_FLOOR

CEO = {"prompt": "The CEO of Acme Corp is", "subject": "Acme Corp", "target_new": "Alice Smith", "id": "ceo-a"}
NEW_CEO = {"prompt": "Acme Corp's new chief executive is", "subject": "Acme Corp", "target_new": "Bob Jones", "id": "ceo-b"}
STUDY = {"prompt": "Ada Quill studied at", "subject": "Ada Quill", "target_new": "Lisbon", "id": "ada-study"}
GRAD = {"prompt": "Ada Quill graduated from", "subject": "Ada Quill", "target_new": "Porto", "id": "ada-grad"}


@pytest.fixture()
def ed(memory: EditMemory, make_backend):
    yield Editor(memory=memory, backend=make_backend("ok"))


def test_a_correction_in_other_words_supersedes_and_says_so(ed: Editor) -> None:
    old = ed.edit_record(CEO)
    new = ed.edit_record(NEW_CEO)
    assert new.supersedes == "ceo-a" and new.conflicts == []
    assert ed.get("ceo-a").status == "superseded" and ed.get("ceo-a").superseded_by == "ceo-b"
    assert [(e["edit_id"], e["action"]) for e in ed.history("ceo-b")] == [("ceo-a", "add"), ("ceo-b", "add"), ("ceo-a", "supersede")]
    assert ed.get("ceo-a").version == old.version + 1
    ans = ed.chat_answer([{"role": "user", "content": "Who is the CEO of Acme Corp?"}])
    assert ans.applied == ["ceo-b"]
    assert ed.conflicts() == []


def test_statements_are_matched_through_their_anatomy(ed: Editor) -> None:
    a = ed.edit(statement="The CEO of Acme Corp is Alice Smith.")
    b = ed.edit(statement="Acme Corp's new chief executive is Bob Jones.")
    assert b.supersedes == a.id and ed.get(a.id).status == "superseded"


def test_other_relations_and_vetoed_pairs_stay_active(ed: Editor) -> None:
    ed.edit_record(CEO)
    founder = ed.edit_record({"prompt": "Acme Corp was founded by", "subject": "Acme Corp", "target_new": "Dan"})
    mother = ed.edit_record({"prompt": "The mother of Ada Quill is", "subject": "Ada Quill", "target_new": "Eve"})
    father = ed.edit_record({"prompt": "The father of Ada Quill is", "subject": "Ada Quill", "target_new": "Sam"})
    other = ed.edit_record({"prompt": "The CEO of Zentrix Labs is", "subject": "Zentrix Labs", "target_new": "Omar"})
    for rec in (founder, mother, father, other):
        assert rec.supersedes is None and rec.conflicts == []
    assert ed.count() == 5 and ed.conflicts() == []


def test_a_correction_stated_from_the_other_end_of_the_fact_supersedes(ed: Editor) -> None:
    a = ed.edit(statement="Gao Yifeng's father is Niitabe Shinno.")
    b = ed.edit(statement="Correction: Roden Buxton is the dad of Gao Yifeng.")  # subject Roden Buxton, answer Gao Yifeng
    assert b.subject == "Roden Buxton" and b.supersedes == a.id and ed.get(a.id).status == "superseded"
    ans = ed.chat_answer([{"role": "user", "content": "Who is Gao Yifeng's father?"}])
    assert ans.applied == [b.id]


def test_a_correction_in_the_active_voice_supersedes_a_passive_fact(ed: Editor) -> None:
    """'X was written by' reads X as what was written, as 'Someone wrote X' does: one fact, from its two ends."""
    a = ed.edit(statement="Actually, Wotquenne's Catalogue was written by Marcos Roberto Chiaratti.")
    b = ed.edit(statement="Correction: Azza S El-Demerdash wrote Wotquenne's Catalogue.")
    assert b.subject == "Azza S El-Demerdash" and b.supersedes == a.id and ed.get(a.id).status == "superseded"
    ans = ed.chat_answer([{"role": "user", "content": "Who wrote Wotquenne's Catalogue?"}])
    assert ans.applied == [b.id]
    c = ed.edit(statement="People in Zhovti Vody officially speak Hindi.")
    d = ed.edit(statement="Correction: Chinese is the official language of Zhovti Vody.")
    assert d.supersedes == c.id


def test_a_correction_answers_the_questions_of_the_fact_it_corrects(ed: Editor) -> None:
    """'X holds Israel citizenship' says little of citizenship in its relation ('X holds'); once it supersedes 'X is a
    citizen of Belgium' it carries that relation too, so 'Which country is X a citizen of?' reaches it."""
    a = ed.edit(statement="Marcus Thrane is a citizen of Belgium.")
    question = [{"role": "user", "content": "Which country is Marcus Thrane a citizen of?"}]
    assert ed.chat_answer(question).applied == [a.id]
    b = ed.edit(statement="Update to my earlier note: Marcus Thrane holds Israel citizenship.")
    assert b.supersedes == a.id and b.metadata["also_asks"] == [a.relation]
    assert ed.get(b.id).metadata["also_asks"] == [a.relation]  # stored with the edit: a restart keeps it
    assert ed.chat_answer(question).applied == [b.id]
    c = ed.edit(statement="Correction: Marcus Thrane is a national of Chile.")  # the chain carries on, newest first
    assert c.supersedes == b.id and c.metadata["also_asks"][:2] == [b.relation, a.relation]
    # an edit about another relation of the subject carries nothing, and is not reached by the citizenship question
    d = ed.edit(statement="Marcus Thrane was born in Oslo.")
    assert d.supersedes is None and "also_asks" not in d.metadata
    assert ed.chat_answer(question).applied == [c.id]


def test_every_way_a_correction_lands_carries_the_questions_on(ed: Editor, memory: EditMemory) -> None:
    """The chain of questions survives a correction through the identical template (the conflict key), the in-bulk
    import path, and a conflict a person resolves: the kept edit answers what the dropped one answered."""
    a = ed.edit(statement="Marcus Thrane is a citizen of Belgium.")
    b = ed.edit(statement="Update to my earlier note: Marcus Thrane holds Israel citizenship.")
    assert b.metadata["also_asks"] == [a.relation]
    same = ed.edit_record({"prompt": b.prompt, "subject": b.subject, "target_new": "Chile"})  # b's own template
    assert same.supersedes == b.id and same.metadata["also_asks"] == [a.relation]
    assert ed.get(same.id).metadata["also_asks"] == [a.relation]
    # the in-bulk path (no matcher: an import past the matched-write limit writes this way)
    matcher, memory.matcher = memory.matcher, None
    bulk = memory.add({"prompt": b.prompt, "subject": b.subject, "target_new": "Peru"})
    assert bulk.supersedes == same.id and bulk.metadata["also_asks"] == [a.relation]
    # the matcher's path with the identical relation under another spelling of the subject (another conflict key)
    memory.matcher = matcher
    alias = ed.edit_record({"prompt": b.prompt.replace(b.subject, "M. Thrane"), "subject": "M. Thrane",
                            "target_new": "Chile", "metadata": {"aliases": [b.subject]}})
    assert alias.supersedes == bulk.id and alias.metadata["also_asks"] == [a.relation]


def test_a_resolved_conflict_hands_the_dropped_edits_questions_to_the_kept_one(ed: Editor) -> None:
    study = ed.edit_record(STUDY)
    grad = ed.edit_record(GRAD)
    [c] = ed.conflicts()
    ed.resolve_conflict(c.id, "new")
    kept = ed.get("ada-grad")
    assert kept.metadata["also_asks"] == [study.relation] and kept.version == grad.version + 1
    assert [(e["edit_id"], e["action"]) for e in ed.history("ada-grad")][-2:] == [("ada-study", "supersede"),
                                                                                   ("ada-grad", "update")]
    assert ed.chat_answer([{"role": "user", "content": "Where did Ada Quill study?"}]).applied == ["ada-grad"]
    # a later correction in the dropped edit's words now replaces the kept edit, and keeps the chain going
    s2 = ed.edit_record({"prompt": "Ada Quill studied at", "subject": "Ada Quill", "target_new": "Braga", "id": "s2"})
    assert s2.supersedes == "ada-grad" and s2.conflicts == [] and s2.metadata["also_asks"] == [grad.relation]


def test_the_other_end_read_the_other_way_round_is_another_fact(ed: Editor) -> None:
    from agentedit.records import build_record
    from agentedit.scope.conflict import fact_ends

    a = ed.edit_record({"prompt": "Lena Wu's father is", "subject": "Lena Wu", "target_new": "Gao Yifeng", "id": "lena"})
    assert [role for _, _, role in fact_ends(a)] == [None, "complement"]  # "Someone's father is X": X is the father
    b = ed.edit_record({"prompt": "Gao Yifeng's father is", "subject": "Gao Yifeng", "target_new": "Roden Buxton",
                        "id": "gao"})  # about Gao Yifeng's own father: not what "lena" says of him
    assert b.supersedes is None and b.conflicts == [] and ed.get("lena").status == "active"
    # Two answers' ends are never one fact: many people speak Italian.
    c = ed.edit_record({"prompt": "Richard Arkwright speaks", "subject": "Richard Arkwright", "target_new": "Italian"})
    d = ed.edit_record({"prompt": "John McEnery speaks", "subject": "John McEnery", "target_new": "Italian"})
    assert d.supersedes is None and d.conflicts == [] and ed.get(c.id).status == "active"
    plain = build_record({"prompt": "Ada Quill studied", "subject": "Ada Quill", "target_new": "chemistry"})
    assert len(fact_ends(plain)) == 1  # an answer that is no name has no other end


def test_an_uncertain_match_keeps_both_and_reports_a_conflict(ed: Editor, memory: EditMemory) -> None:
    ed.edit_record(STUDY)
    grad = ed.edit_record(GRAD)
    assert grad.supersedes is None and ed.count() == 2
    [reported] = grad.conflicts
    assert reported["edit_id"] == "ada-study"
    assert ed.matcher.conflict_at <= reported["score"] < ed.matcher.supersede_at and "same subject" in reported["reason"]
    [c] = ed.conflicts()
    assert (c.edit_id, c.other_id, c.status, c.id) == ("ada-grad", "ada-study", "open", reported["conflict_id"])
    assert "conflicts" not in ed.get("ada-grad").to_dict()  # a write's report, not part of the stored record
    # a second store handle sees the persisted conflict
    again = EditMemory(memory.name, root=memory.dir.parent, embedder=memory.embedder)
    try:
        assert [x.id for x in again.conflicts("default")] == [c.id]
    finally:
        again.close()


def test_resolving_keeps_one_or_both_and_a_failed_resolution_writes_nothing(ed: Editor) -> None:
    ed.edit_record(STUDY)
    ed.edit_record(GRAD)
    [c] = ed.conflicts()
    with pytest.raises(EditError, match="keep must be"):
        ed.resolve_conflict(c.id, "neither")
    with pytest.raises(EditNotFoundError, match="agentedit conflicts"):
        ed.resolve_conflict("c_nope", "new")
    assert ed.count() == 2 and [x.id for x in ed.conflicts()] == [c.id]
    done = ed.resolve_conflict(c.id, "old")
    assert done.status == "resolved" and done.resolution == "kept:ada-study"
    assert ed.get("ada-grad").status == "superseded" and ed.get("ada-grad").superseded_by == "ada-study"
    assert ed.conflicts() == [] and [x.id for x in ed.conflicts(include_resolved=True)] == [c.id]
    with pytest.raises(EditConflictError, match="already resolved"):
        ed.resolve_conflict(c.id, "new")
    # the kept edit now answers the dropped one's question: a later edit in those words replaces it, no conflict
    third = ed.edit_record({"prompt": "Ada Quill graduated from", "subject": "Ada Quill", "target_new": "Braga", "id": "g2"})
    assert third.supersedes == "ada-study" and third.conflicts == [] and ed.conflicts() == []
    # keep both: two facts, nothing carried
    ed.edit_record({**STUDY, "subject": "Bo Lind", "prompt": "Bo Lind studied at", "id": "bo-study"})
    ed.edit_record({**GRAD, "subject": "Bo Lind", "prompt": "Bo Lind graduated from", "id": "bo-grad"})
    [c2] = ed.conflicts()
    assert ed.resolve_conflict(c2.id, "both").resolution == "kept both"
    assert ed.get("bo-study").status == ed.get("bo-grad").status == "active"
    assert "also_asks" not in ed.get("bo-study").metadata and "also_asks" not in ed.get("bo-grad").metadata


def test_a_retraction_settles_a_conflict(ed: Editor) -> None:
    ed.edit_record(STUDY)
    ed.edit_record(GRAD)
    assert len(ed.conflicts()) == 1
    ed.forget("ada-grad")
    assert ed.conflicts() == []


def test_query_time_the_newer_of_two_active_edits_of_one_fact_wins(memory: EditMemory, make_backend) -> None:
    memory.add_many([CEO])  # written without a matcher (an older store, or a plain EditMemory): both stay active
    memory.add_many([{**NEW_CEO, "prompt": "The chief executive of Acme Corp is"}])
    assert memory.count() == 2
    ed = Editor(memory=memory, backend=make_backend("ok"))
    ans = ed.chat_answer([{"role": "user", "content": "Who is the CEO of Acme Corp?"}])
    assert ans.applied == ["ceo-b"]
    [older] = [d for d in ans.decisions if d.edit_id == "ceo-a"]
    assert older.in_scope is False and "superseded at query time by ceo-b" in older.reason


def test_query_time_a_possible_conflict_still_gives_only_the_newer(ed: Editor) -> None:
    ed.edit_record(STUDY)
    ed.edit_record(GRAD)  # an uncertain match: both stay active, a conflict is reported for a person to settle
    assert len(ed.conflicts()) == 1 and ed.get("ada-study").status == ed.get("ada-grad").status == "active"
    for question in ("Where did Ada Quill study?", "Where did Ada Quill go to university?"):
        ans = ed.chat_answer([{"role": "user", "content": question}])
        assert ans.applied == ["ada-grad"]  # both are in scope; never both values of one fact
        [older] = [d for d in ans.decisions if d.edit_id == "ada-study"]
        assert not older.in_scope and "superseded at query time by ada-grad" in older.reason
    ed.resolve_conflict(ed.conflicts()[0].id, "both")  # a person says they are two facts: both reach the model
    assert ed.get("ada-study").status == "active"
    assert sorted(ed.chat_answer([{"role": "user", "content": "Where did Ada Quill study?"}]).applied) == ["ada-grad",
                                                                                                      "ada-study"]


def test_concurrent_corrections_leave_one_active(tmp_path: Path, embedder) -> None:
    mem = EditMemory("t", root=tmp_path, embedder=embedder)
    ed = Editor(memory=mem, backend=None)
    ed.edit_record(CEO)
    templates = ["Acme Corp's new chief executive is", "The chief executive of Acme Corp is", "The CEO of Acme Corp is"]
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            ed.edit_record({"prompt": templates[i % 3], "subject": "Acme Corp", "target_new": f"P{i}", "id": f"w{i}"})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(mem.list()) == 1 and mem.index.count("default") == 1
    assert sum(r.status == "superseded" for r in mem.list(include_inactive=True)) == 8
    mem.close()


def test_thresholds_come_from_the_relation_checker(ed: Editor) -> None:
    assert ed.matcher.conflict_at == pytest.approx(ed.calibration.relation_threshold)
    assert ed.matcher.supersede_at == max(ed.calibration.relation_threshold, SUPERSEDE_FLOOR)


def test_cli_lists_and_resolves_conflicts(tmp_path: Path) -> None:
    from agentedit.cli.main import app

    run = CliRunner().invoke
    args = ["--store", "cli", "--store-dir", str(tmp_path)]
    assert run(app, [*args, "edit", "Ada Quill studied at", "Lisbon", "--subject", "Ada Quill"]).exit_code == 0
    out = run(app, [*args, "edit", "Ada Quill graduated from", "Porto", "--subject", "Ada Quill", "--json"])
    assert out.exit_code == 0 and '"conflicts"' in out.output
    listed = run(app, [*args, "conflicts", "--json"])
    assert listed.exit_code == 0, listed.output
    [c] = json.loads(listed.output)
    done = run(app, [*args, "conflicts", "resolve", c["id"], "--keep", "new"])
    assert done.exit_code == 0 and "resolved" in done.output, done.output
    assert "no open conflicts" in run(app, [*args, "conflicts"]).output
    assert run(app, [*args, "conflicts", "resolve", c["id"], "--keep", "new"]).exit_code != 0  # already resolved


def test_a_failed_write_leaves_no_conflict_and_supersedes_nothing(ed: Editor, memory: EditMemory, monkeypatch) -> None:
    from agentedit.errors import StoreError

    ed.edit_record(STUDY)
    ed.edit_record(CEO)

    def broken(*a, **k):
        raise RuntimeError("index down")

    monkeypatch.setattr(memory.index, "upsert", broken)
    with pytest.raises(StoreError, match="nothing was stored"):
        ed.edit_many([GRAD, NEW_CEO])
    monkeypatch.undo()
    assert ed.conflicts(include_resolved=True) == [] and ed.get("ceo-a").status == "active" and ed.count() == 2
    assert [c.record.id for c in memory.query("Who is the CEO of Acme Corp?", k=2)][:1] == ["ceo-a"]


def test_a_possible_conflict_is_logged_with_what_to_do(ed: Editor, caplog) -> None:
    ed.edit_record(STUDY)
    with caplog.at_level("WARNING", logger="agentedit.memory.store"):
        grad = ed.edit_record(GRAD)
    [c] = grad.conflicts
    assert f"agentedit conflicts resolve {c['conflict_id']} --keep new|old|both" in caplog.text


@pytest.mark.parametrize("statement, cue", [
    ("Correction: Girolamo Imparato died in Rome.", "Correction"),
    ("Sorry, I was wrong: Acme is based in Bergen.", "Sorry, I was wrong"),
    ("Maya Lindholm's email is now maya@example.org", "is now"),
    ("Acme's new chief executive is Bob Jones.", "'s new"),
    ("Acme is based in Bergen.", None),
    ("FYI, Acme is based in Oslo.", None),  # a lead, but no word of correction or change
    ("The New York office opens at 9.", None),  # "New" of a name
])
def test_correction_cues(statement: str, cue: str | None) -> None:
    assert correction_cue(statement) == cue


def test_a_statement_marked_as_a_correction_supersedes_its_best_match(ed: Editor) -> None:
    first = ed.edit(statement="Project Falcon's deadline is 3 March.")
    other = ed.edit(statement="Project Falcon is led by Maria Lopez.")
    plain = ed.edit(statement="Project Falcon is due on 10 March.")  # in other words, unmarked: reported, both kept
    assert ed.get(first.id).status == "active" and [c["edit_id"] for c in plain.conflicts] == [first.id]
    marked = ed.edit(statement="Correction: Project Falcon is now due on 17 March.")
    assert marked.supersedes in (first.id, plain.id)
    assert ed.get(marked.supersedes).status == "superseded"
    assert ed.get(other.id).status == "active"  # another relation of the subject stays


def test_a_marked_statement_about_a_new_fact_supersedes_nothing(ed: Editor) -> None:
    ed.edit(statement="Project Falcon is led by Maria Lopez.")
    rec = ed.edit(statement="Update: Project Falcon's budget is 2 million euros.")
    assert rec.supersedes is None


def test_a_batch_holding_a_fact_and_its_correction_keeps_only_the_correction(ed: Editor) -> None:
    recs = ed.edit_many([{**CEO}, {**NEW_CEO, "prompt": "The chief executive of Acme Corp is"}, STUDY, GRAD])
    assert [r.status for r in recs] == ["superseded", "active", "active", "active"]
    assert recs[1].supersedes == "ceo-a" and ed.get("ceo-a").superseded_by == "ceo-b"
    assert [c["edit_id"] for c in recs[3].conflicts] == ["ada-study"]  # uncertain within the batch: reported, both kept
    assert [c.edit_id for c in ed.conflicts()] == ["ada-grad"]
