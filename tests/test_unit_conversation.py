"""Conversation-aware scope (issue 17, item 3): follow-ups that name their subject by pronoun or description.

Real components: the on-disk store (Chroma + SQLite), the MiniLM embedder, the default ``relation`` checker,
the RecordingBackend standing in for the model."""

from __future__ import annotations

from typing import Any

import pytest

from agentedit import Editor
from agentedit.conversation import resolve, turns, window
from agentedit.memory import EditMemory

STUDY = {"prompt": "Ada Quill studied at", "subject": "Ada Quill", "target_new": "the University of Lisbon", "id": "ada-study"}
FOUNDER = {"prompt": "Zentrix Labs was founded by", "subject": "Zentrix Labs", "target_new": "Omar Haddad",
           "id": "zentrix-founder"}


def _conv(*texts: str) -> list[dict[str, Any]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


@pytest.fixture()
def ed(memory: EditMemory, make_backend):
    memory.add_many([STUDY, FOUNDER])
    editor = Editor(memory=memory, backend=make_backend("ok"))
    yield editor


def _facts(ed: Editor) -> str:
    """The facts the model was sent: after its own earlier answer they lead the last user message, not the system one."""
    sent = ed.backend.calls[-1][1]  # type: ignore[attr-defined]
    return str(sent[-1]["content"] if any(m["role"] == "assistant" for m in sent) else sent[0]["content"])


def test_pronoun_for_a_person_carries_the_subject_over(ed: Editor) -> None:
    ans = ed.chat_answer(_conv("Who is Ada Quill?", "Ada Quill is a marine biologist known for her reef surveys.",
                               "Where did she study?"))
    assert ans.applied == ["ada-study"]
    assert ans.resolved_query == "Where did Ada Quill study?"
    assert "'she' -> 'Ada Quill' (edit subject)" in ans.resolution
    accepted = [d for d in ans.decisions if d.in_scope]
    assert accepted and "query resolved" in accepted[0].reason
    assert "the University of Lisbon" in _facts(ed)


def test_pronoun_and_description_for_a_company(ed: Editor) -> None:
    it = ed.chat_answer(_conv("Tell me about Zentrix Labs.", "Zentrix Labs builds sensors.", "Who founded it?"))
    assert it.applied == ["zentrix-founder"] and it.resolved_query == "Who founded Zentrix Labs?"
    desc = ed.chat_answer(_conv("Tell me about Zentrix Labs.", "Zentrix Labs builds sensors.", "Who founded the company?"))
    assert desc.applied == ["zentrix-founder"] and desc.resolved_query == "Who founded Zentrix Labs?"


def test_a_follow_up_about_another_attribute_stays_out_of_scope(ed: Editor) -> None:
    ans = ed.chat_answer(_conv("Who is Ada Quill?", "A marine biologist.", "How tall is she?"))
    assert ans.resolved_query == "How tall is Ada Quill?"  # resolved, but the relation check still applies
    assert ans.applied == [] and ans.mode == "passthrough"
    assert ed.backend.calls[-1][1] == _conv("Who is Ada Quill?", "A marine biologist.", "How tall is she?")  # type: ignore[attr-defined]


def test_the_window_is_bounded(ed: Editor) -> None:
    msgs = _conv("Who is Ada Quill?", "A biologist.", "Nice.", "Anything else?", "No.", "Fine.", "Where did she study?")
    ans = ed.chat_answer(msgs)  # Ada Quill was named four turns back: outside the 3-turn window
    assert ans.applied == [] and ans.resolved_query == ""
    assert ed.chat_answer(msgs[2:]).applied == []  # still four turns back
    assert ed.chat_answer(msgs[:2] + msgs[-1:]).applied == ["ada-study"]
    assert window([("user", "x" * 5000), ("assistant", "Ada Quill")], max_chars=4000) == ["x" * 4000]


def test_tool_turns_keep_the_users_question(ed: Editor) -> None:
    msgs = [{"role": "user", "content": "Who founded Zentrix Labs?"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "search", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "Ada Quill studied at Porto. Weather: sunny."}]
    ans = ed.chat_answer(msgs)
    assert ans.applied == ["zentrix-founder"]
    assert ed.prepare_chat(msgs).query == "Who founded Zentrix Labs?"
    follow = msgs + [{"role": "assistant", "content": "It was founded in 2001."}, {"role": "user", "content": "Who founded it?"}]
    p = ed.prepare_chat(follow)
    assert p.resolved_query == "Who founded Zentrix Labs?" and p.applied_ids == ["zentrix-founder"]


def test_the_resolution_reaches_the_openai_reply_and_a_single_message_is_untouched(ed: Editor) -> None:
    out = ed.chat(_conv("Tell me about Zentrix Labs.", "It builds sensors.", "Who founded it?"))
    assert out["agentedit"]["resolved_query"] == "Who founded Zentrix Labs?"
    single = ed.chat([{"role": "user", "content": "Who founded Zentrix Labs?"}])
    assert "resolved_query" not in single["agentedit"] and single["agentedit"]["applied"] == ["zentrix-founder"]


def test_resolve_rules_without_a_store() -> None:
    r = resolve(_conv("Tell me about Marie Curie and Acme Corp.", "ok", "Where did she study? And who founded it?"))
    assert r.resolved == "Where did Marie Curie study? And who founded Acme Corp?"
    r = resolve(_conv("Who is Jane Doe?", "She runs Acme.", "What is her husband's name?"))
    assert r.resolved == "What is Jane Doe's husband's name?"
    assert resolve(_conv("Where did Marie Curie study?")).changed is False
    assert resolve(_conv("Tell me about Acme Corp.", "Fine.", "Where did Acme Corp start? Who runs it?")).changed is False
    assert turns([{"role": "tool", "content": "x"}]) == ("", [])
    # another name in the question does not stop the resolution; a stored edit's subject it names does
    assert resolve(_conv("Who is Jane Doe?", "She runs Acme.", "Does Bob Smith know her?")).resolved == \
        "Does Bob Smith know Jane Doe?"
    follow = _conv("Tell me about Globex.", "A firm.", "I read about Acme Corp. Who runs it?")
    assert resolve(follow).resolved == "I read about Acme Corp. Who runs Globex?"
    assert resolve(follow, subjects_of=lambda t: ["Acme Corp"] if "Acme" in t else []).changed is False


def test_a_description_that_asks_a_relation_is_not_a_reference() -> None:
    r = resolve(_conv("Who runs Acme Corp?", "Bob Jones runs it.", "Who is the CEO of the company?"))
    assert r.resolved == "Who is the CEO of Acme Corp?"
    assert resolve(_conv("Tell me about France.", "A country.", "What is the capital of the country?")).resolved == \
        "What is the capital of France?"


def test_interactive_cli_chat_shows_how_a_follow_up_was_read(tmp_path, monkeypatch, make_backend) -> None:
    from typer.testing import CliRunner

    from agentedit.cli.main import app

    backend = make_backend("They build sensors.")
    monkeypatch.setattr("agentedit.backends.make_backend", lambda cfg, **kw: backend)
    args = ["--model", "openai/gpt-4o-mini", "--store", "conv", "--store-dir", str(tmp_path)]
    runner = CliRunner()
    assert runner.invoke(app, [*args, "edit", FOUNDER["prompt"], FOUNDER["target_new"], "--subject", "Zentrix Labs"]).exit_code == 0
    res = runner.invoke(app, [*args, "chat"], input="Tell me about Zentrix Labs.\nWho founded it?\n/exit\n")
    assert res.exit_code == 0, res.output
    assert "read as: Who founded Zentrix Labs?" in " ".join(res.output.split())
    assert "Omar Haddad" in str(backend.calls[-1][1][-1]["content"])  # after the model's answer: in the last user turn


@pytest.mark.parametrize("earlier, answer, question, resolved", [
    # the assistant's "I'm not sure" names nobody: "it" is the place the user asked about
    ("What is the area of Krasnoyarsk Krai?", "I'm not certain about that.", "And which language is official in it?",
     "And which language is official in Krasnoyarsk Krai?"),
    # "they" are the people, "it" the place: the plural pronoun takes no entity the singular one took
    ("When was Zhovti Vody founded?", "Don't know, sorry.", "What do they speak in it?", "What do they speak in Zhovti Vody?"),
    # the common misspelling of "its"
    ("How many people live in Havana?", "About two million.", "And who is it's partner town?",
     "And who is Havana's partner town?"),
    # a name that only looks like a person's (two capitalised words) can still be "it"
    ("Who stars in Full House?", "I'm not sure.", "In which language was it first produced?",
     "In which language was Full House first produced?"),
])
def test_follow_up_references_in_everyday_chat(earlier: str, answer: str, question: str, resolved: str) -> None:
    assert resolve(_conv(earlier, answer, question)).resolved == resolved


def test_a_stored_subject_comes_before_a_name_of_the_same_guessed_kind() -> None:
    msgs = _conv("What is Mick Marquiss's job?", "Special Operations Executive.", "Which school did this person attend?")
    assert resolve(msgs).resolved == "Which school did Special Operations Executive attend?"  # no stored subject: newest
    stored = resolve(msgs, subjects_of=lambda text: ["Mick Marquiss"] if "Marquiss" in text else [])
    assert stored.resolved == "Which school did Mick Marquiss attend?"
    assert stored.replaced == [("this person", "Mick Marquiss", "edit subject")]
