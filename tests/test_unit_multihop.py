"""The decomposition branch: routing, the hop loop's stop conditions, edits settling hops, malformed output.

The loop tests turn ``follow_edits`` off so that every hop comes from the (scripted) model; the edit chain
has its own tests at the end.

The model's replies are scripted here (a recording backend) so that each stop condition is reached on
purpose; tests/test_integration_blackbox.py runs the same loop on a real model.
"""

from __future__ import annotations

from typing import Any

import pytest

from agentedit import Editor
from agentedit.errors import ConfigError
from agentedit.graph.multihop import chain_depth, parse_answer, parse_step
from agentedit.memory import EditMemory

QUESTION = "What is the official language of the country of citizenship of the director of Hey Jude's performer?"


def scripted(replies: list[str]):
    """A reply function that hands out ``replies`` in order (the last one again when they run out)."""
    state = {"i": 0}

    def reply(payload: Any) -> str:
        i = min(state["i"], len(replies) - 1)
        state["i"] += 1
        return replies[i]

    return reply


@pytest.fixture()
def music(memory: EditMemory) -> EditMemory:
    memory.add_many([
        {"id": "performer", "prompt": "Hey Jude was performed by", "subject": "Hey Jude", "target_new": "Madonna"},
        {"id": "director", "prompt": "The director of Madonna is", "subject": "Madonna", "target_new": "Narendra Modi"},
    ])
    return memory


# -- parsing and routing helpers --------------------------------------------------------------------
def test_parse_step() -> None:
    assert parse_step("Sub-question: Who performed Hey Jude?\nAnswer: The Beatles\nSub-question: x") == {
        "sub_question": "Who performed Hey Jude?", "tentative": "The Beatles"}
    assert parse_step("**Final answer:** English") == {"final": "English"}
    assert parse_step("subquestion - Who directs Madonna?") == {"sub_question": "Who directs Madonna?", "tentative": ""}
    assert parse_step("The answer is probably English.") is None
    assert parse_step("Final answer:") is None
    assert parse_answer("The fact answers it.\nAnswer: Madonna") == "Madonna"
    assert parse_answer("Madonna") == "Madonna"


def test_chain_depth_separates_simple_from_chained_questions() -> None:
    assert chain_depth("What is the capital of France?") == 0
    assert chain_depth("Who is the director of Madonna?") == 0
    assert chain_depth(QUESTION) >= 2
    assert chain_depth("Which city is the headquarters of the company that makes the iPhone in?") >= 2


# -- the loop ----------------------------------------------------------------------------------------
def test_in_scope_edit_replaces_a_contradicted_answer_and_is_carried_on(music: EditMemory, make_backend) -> None:
    backend = make_backend(scripted([
        "Sub-question: Who performed Hey Jude?\nAnswer: The Beatles",
        "Sub-question: Who is the director of Madonna?\nAnswer: Guy Oseary",
        "Final answer: Narendra Modi",
    ]))
    ed = Editor(memory=music, backend=backend, multihop="always", follow_edits=False)
    ans = ed.ask(QUESTION)
    assert ans.decomposed and ans.mode == "multi-hop" and ans.stop == "final answer"
    first, second = ans.hops
    assert first["accepted"] == "performer" and first["tentative"] == "The Beatles"
    assert first["answer"] == "Madonna" and first["contradicted"]
    assert second["accepted"] == "director" and second["answer"] == "Narendra Modi"
    assert ans.text == "Narendra Modi" and ans.applied == ["performer", "director"]
    assert ans.model_calls == 3
    # The second proposal saw the edit's answer, not the model's: the edit is carried to the next hop.
    second_prompt = backend.calls[1][1][-1]["content"]
    assert "Answer: Madonna" in second_prompt and "Known fact:" in second_prompt


def test_hop_without_an_in_scope_edit_keeps_the_models_answer(music: EditMemory, make_backend) -> None:
    backend = make_backend(scripted(["Sub-question: What is the capital of France?\nAnswer: Paris", "Final answer: Paris"]))
    ans = Editor(memory=music, backend=backend, multihop="always", follow_edits=False).ask("What is the capital of the country of the Louvre?")
    assert ans.hops[0]["accepted"] is None and ans.hops[0]["answer"] == "Paris" and not ans.hops[0]["contradicted"]
    assert ans.text == "Paris" and ans.applied == []


def test_hop_limit_stops_the_loop(music: EditMemory, make_backend) -> None:
    replies = [f"Sub-question: Step {i}, who comes next?\nAnswer: Person {i}" for i in range(10)]
    backend = make_backend(scripted(replies))
    ans = Editor(memory=music, backend=backend, multihop="always", hop_limit=3, follow_edits=False).ask(QUESTION)
    assert len(ans.hops) == 3 and ans.stop == "hop limit"
    assert ans.text == "Person 2" and len(backend.calls) == 3


def test_repeated_sub_question_stops_the_loop(music: EditMemory, make_backend) -> None:
    backend = make_backend(scripted(["Sub-question: Who performed Hey Jude?\nAnswer: The Beatles"]))
    ans = Editor(memory=music, backend=backend, multihop="always", follow_edits=False).ask(QUESTION)
    assert ans.stop == "repeated sub-question" and len(ans.hops) == 1
    assert ans.text == "Madonna"  # the last hop's answer, settled by the edit


def test_malformed_output_mid_loop_ends_with_the_last_answer(music: EditMemory, make_backend) -> None:
    backend = make_backend(scripted(["Sub-question: Who performed Hey Jude?\nAnswer: The Beatles", "I am not sure."]))
    ans = Editor(memory=music, backend=backend, multihop="always", follow_edits=False).ask(QUESTION)
    assert ans.stop == "malformed" and ans.text == "Madonna" and ans.decomposed


def test_malformed_output_before_any_hop_falls_back_to_one_pass(music: EditMemory, make_backend) -> None:
    backend = make_backend(scripted(["Let me think about it.", "English"]))
    ans = Editor(memory=music, backend=backend, multihop="always", follow_edits=False).ask(QUESTION)
    assert not ans.decomposed and ans.mode in ("passthrough", "in-context")
    assert "single pass" in ans.plan_reason and ans.text == "English" and len(backend.calls) == 2


def test_model_resolution_asks_the_model_about_the_fact(music: EditMemory, make_backend) -> None:
    backend = make_backend(scripted([
        "Sub-question: Who performed Hey Jude?\nAnswer: The Beatles",
        "It does.\nAnswer: Madonna",
        "Final answer: Madonna",
    ]))
    ans = Editor(memory=music, backend=backend, multihop="always", resolve="model", scope="prefix-all", follow_edits=False).ask(QUESTION)
    assert ans.hops[0]["answer"] == "Madonna" and ans.model_calls == 3
    assert "Known fact:" in backend.calls[1][1][-1]["content"]


# -- routing -----------------------------------------------------------------------------------------
def test_auto_routing_keeps_simple_questions_single_pass(music: EditMemory, make_backend) -> None:
    backend = make_backend("Narendra Modi")
    ed = Editor(memory=music, backend=backend)  # multihop="auto" is the default
    simple = ed.ask("Who is the director of Madonna?")
    assert not simple.decomposed and simple.applied == ["director"] and len(backend.calls) == 1
    prefix = ed.ask("The official language of the country of the director of the band of Madonna is", style="complete")
    assert not prefix.decomposed and prefix.route_reason == "not a question"
    chained = Editor(memory=music, backend=make_backend(scripted(["Final answer: Arabic"]))).ask(QUESTION)
    assert chained.decomposed and "chain depth" in chained.route_reason and chained.text == "Arabic"


def test_decomposition_options_are_validated(memory: EditMemory, make_backend) -> None:
    with pytest.raises(ConfigError, match="multihop"):
        Editor(memory=memory, backend=make_backend(), multihop="sometimes")
    with pytest.raises(ConfigError, match="hop_limit"):
        Editor(memory=memory, backend=make_backend(), hop_limit=0)
    with pytest.raises(ConfigError, match="resolve"):
        Editor(memory=memory, backend=make_backend(), resolve="vote")


# -- following stored edits ---------------------------------------------------------------------------
def test_edit_chain_settles_the_hops_stored_edits_answer(music: EditMemory, make_backend) -> None:
    music.add_many([
        {"id": "citizen", "prompt": "Narendra Modi is a citizen of", "subject": "Narendra Modi", "target_new": "Australia"},
        {"id": "born", "prompt": "Narendra Modi was born in", "subject": "Narendra Modi", "target_new": "Lagos"},  # not asked
        {"id": "language", "prompt": "The official language of Australia is", "subject": "Australia", "target_new": "Arabic"},
    ])
    backend = make_backend(scripted(["Final answer: Arabic"]))
    ans = Editor(memory=music, backend=backend, multihop="always", hop_limit=6).ask(QUESTION)
    assert [h["accepted"] for h in ans.hops] == ["performer", "director", "citizen", "language"]
    assert all(h.get("via") == "edit chain" for h in ans.hops)
    assert ans.text == "Arabic" and ans.model_calls == 1 and "born" not in ans.applied
    # The model was asked only to finish, and saw the settled chain.
    prompt = backend.calls[0][1][-1]["content"]
    assert "Known fact:" in prompt and "Arabic" in prompt and "Lagos" not in prompt


def test_edit_chain_is_off_for_the_mello_protocol(music: EditMemory, make_backend) -> None:
    backend = make_backend(scripted(["Final answer: English"]))
    ans = Editor(memory=music, backend=backend, multihop="always", follow_edits=False).ask(QUESTION)
    assert ans.hops == [] and ans.text == "English" and ans.applied == []


def test_relation_words_match_by_meaning_not_only_spelling(memory: EditMemory, embedder) -> None:
    from agentedit.scope.text import RelationMatcher
    from agentedit.records import build_record

    match = RelationMatcher(embedder, "What is the official language of the country of citizenship of the spouse of Ozzy?")
    married = build_record({"prompt": "Ozzy Osbourne is married to", "subject": "Ozzy Osbourne", "target_new": "Miranda"})
    citizen = build_record({"prompt": "Miranda is a citizen of", "subject": "Miranda", "target_new": "Spain"})
    born = build_record({"prompt": "Miranda was born in", "subject": "Miranda", "target_new": "Lima"})
    assert match.score(citizen) == 1.0                 # "citizen" / "citizenship" share a stem
    assert 0.5 <= match.score(married) < 1.0          # "married" / "spouse" by meaning
    assert match.score(born) < 0.5                    # not asked
