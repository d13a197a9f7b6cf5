"""Edit anatomy: free-text facts split into subject, relation and target (offline rules and a model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentedit import Editor, cli
from agentedit.anatomy import parse_with_rules, parse_model_reply, validate
from agentedit.memory import EditMemory


@pytest.mark.parametrize("statement, subject, relation, target", [
    ("Alice's manager is Bob.", "Alice", "{}'s manager is", "Bob"),
    ("The CEO of Acme Corp is Jane Doe.", "Acme Corp", "The CEO of {} is", "Jane Doe"),
    ("The Eiffel Tower is located in Rome.", "The Eiffel Tower", "{} is located in", "Rome"),
    ("Lionel Messi plays for Inter Miami CF", "Lionel Messi", "{} plays for", "Inter Miami CF"),
    ("Paris is the capital of France", "Paris", "{} is the capital of", "France"),
    ("The Beatles were formed in 1960", "The Beatles", "{} were formed in", "1960"),
    ("Alice speaks french", "Alice", "{} speaks", "french"),
])
def test_rules_split_common_sentence_shapes(statement: str, subject: str, relation: str, target: str) -> None:
    found = parse_with_rules(statement)
    assert found is not None and found.source == "rules"
    assert (found.subject, found.relation, found.target) == (subject, relation, target)
    assert validate(statement, found.subject, found.relation, found.target)


@pytest.mark.parametrize("statement", ["hello", "Our team lead is now Carol.", "It is raining in Paris", ""])
def test_rules_decline_what_they_cannot_split(statement: str) -> None:
    assert parse_with_rules(statement) is None


def test_model_reply_is_accepted_only_when_its_parts_come_from_the_statement() -> None:
    stmt = "Our team lead is now Carol."
    good = json.dumps({"subject": "Our team", "relation": "{} lead is now", "target": "Carol"})
    assert parse_model_reply(stmt, f"Sure: {good}").subject == "Our team"
    invented = json.dumps({"subject": "The team", "relation": "{} lead is now", "target": "Carol"})
    assert parse_model_reply(stmt, invented) is None
    no_slot = json.dumps({"subject": "Our team", "relation": "lead is now", "target": "Carol"})
    assert parse_model_reply(stmt, no_slot) is None
    assert parse_model_reply(stmt, "not json") is None


def test_editor_decomposes_statements_and_the_relation_checker_uses_them(memory: EditMemory, make_backend) -> None:
    backend = make_backend("Bob")
    ed = Editor(memory=memory, backend=backend)  # a given backend is not a hosted API model: offline rules
    rec = ed.edit(statement="Alice's manager is Bob.")
    assert backend.calls == []  # no model call to store an edit
    assert (rec.subject, rec.relation, rec.target_new) == ("Alice", "{}'s manager is", "Bob")
    assert rec.statement == "Alice's manager is Bob." and rec.metadata["anatomy"] == "rules"
    ans = ed.ask("Who is Alice's manager?")
    assert ans.applied == [rec.id] and "relation similarity" in ans.decisions[0].reason
    assert ed.ask("Where was Alice born?").applied == []  # same subject, another relation
    plain = ed.edit(statement="Our team lead is now Carol.")
    assert plain.subject is None and "anatomy" not in plain.metadata  # left to the similarity fallback


def test_editor_asks_the_model_when_told_and_falls_back_to_rules(memory: EditMemory, make_backend) -> None:
    reply = json.dumps({"subject": "Our team", "relation": "{} lead is now", "target": "Carol"})
    ed = Editor(memory=memory, backend=make_backend(reply), decompose="model")
    rec = ed.edit(statement="Our team lead is now Carol.")
    assert rec.subject == "Our team" and rec.metadata["anatomy"] == "model"
    broken = Editor(memory=memory, backend=make_backend("I cannot help with that."), decompose="model")
    rec2 = broken.edit(statement="Bob works for Acme Corp.")
    assert rec2.subject == "Bob" and rec2.metadata["anatomy"] == "rules"
    off = Editor(memory=memory, backend=make_backend(), decompose="off").edit(statement="Carol works for Initech.")
    assert off.subject is None


def test_cli_shows_the_anatomy_and_update_corrects_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder) -> None:
    monkeypatch.setattr(cli.console, "width", 400)
    runner = CliRunner()
    base = ["--store-dir", str(tmp_path / "stores")]
    out = runner.invoke(cli.app, [*base, "edit", "--statement", "The Eiffel Tower is located in Rome.", "--id", "eiffel"])
    assert out.exit_code == 0, out.output
    assert "subject The Eiffel Tower" in out.output and "offline rules" in out.output
    fixed = runner.invoke(cli.app, [*base, "update", "eiffel", "--subject", "Eiffel Tower", "--alias", "La Tour Eiffel", "--json"])
    assert fixed.exit_code == 0, fixed.output
    rec = json.loads(fixed.output)
    assert rec["subject"] == "Eiffel Tower" and rec["metadata"]["aliases"] == ["La Tour Eiffel"]
    assert rec["relation"] == "The {} is located in"
    history = runner.invoke(cli.app, [*base, "history", "eiffel", "--json"])
    assert [e["action"] for e in json.loads(history.output)][-1] == "update"
    nothing = runner.invoke(cli.app, [*base, "update", "eiffel"])
    assert nothing.exit_code != 0 and "nothing to change" in nothing.output
