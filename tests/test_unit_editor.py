"""Unit tests of agentedit.Editor with a recording backend in place of a paid API model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agentedit import Editor
from agentedit.errors import ConfigError, EditError, EditNotFoundError
from agentedit.memory import EditMemory
from agentedit.scope import JudgeChecker, RelationChecker, SimilarityChecker

EIFFEL_Q = "In which city is the Eiffel Tower?"
STAGES = {"plan", "retrieve", "scope", "compose", "generate", "total"}


@pytest.fixture()
def editor(memory: EditMemory, make_backend):
    ed = Editor(memory=memory, backend=make_backend("Rome"))
    ed.edit("The Eiffel Tower is located in", "Rome", subject="Eiffel Tower", id="eiffel")
    ed.edit("The CEO of Acme Corp is", "Jane Doe", subject="Acme Corp", id="acme-ceo")
    yield ed
    ed.close()


def test_ask_in_scope_applies_the_edit(editor: Editor) -> None:
    ans = editor.ask(EIFFEL_Q, max_tokens=8)
    assert ans.text == "Rome"
    assert ans.applied == ["eiffel"] and ans.mode == "in-context"
    assert set(ans.timings) == STAGES and ans.timings["total"] >= ans.timings["generate"]
    assert ans.model == "fake/recorder" and ans.usage["total_tokens"] == 9
    [(method, sent, params)] = editor.backend.calls  # type: ignore[attr-defined]
    assert method == "chat" and params == {"max_tokens": 8}
    assert ans.messages == sent
    assert sent[0]["role"] == "system" and json.dumps("The Eiffel Tower is located in Rome.") in sent[0]["content"]
    assert sent[-1] == {"role": "user", "content": EIFFEL_Q}
    in_scope = {d.edit_id: d.in_scope for d in ans.decisions}
    assert in_scope["eiffel"] is True and in_scope.get("acme-ceo", False) is False


def test_ask_out_of_scope_is_passthrough(editor: Editor) -> None:
    ans = editor.ask("What is the boiling point of water?", system="Be terse.")
    [(_, sent, _)] = editor.backend.calls  # type: ignore[attr-defined]
    assert sent == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "What is the boiling point of water?"}]
    assert ans.applied == [] and ans.mode == "passthrough"


def test_ask_keeps_the_users_system_message_first(editor: Editor) -> None:
    editor.ask(EIFFEL_Q, system="You are a pirate.")
    sent = editor.backend.calls[0][1]  # type: ignore[attr-defined]
    assert len(sent) == 2 and sent[0]["content"].startswith("You are a pirate.\n\n")
    assert "Rome" in sent[0]["content"]


def test_aask_and_achat(editor: Editor) -> None:
    ans = asyncio.run(editor.aask(EIFFEL_Q))
    assert ans.applied == ["eiffel"] and editor.backend.calls[-1][0] == "achat"  # type: ignore[attr-defined]
    resp = asyncio.run(editor.achat([{"role": "user", "content": EIFFEL_Q}]))
    assert resp["choices"][0]["message"]["content"] == "Rome"
    assert resp["agentedit"]["applied"] == ["eiffel"]


def test_chat_returns_an_openai_shaped_response(editor: Editor) -> None:
    resp = editor.chat([{"role": "user", "content": EIFFEL_Q}])
    assert resp["object"] == "chat.completion" and resp["id"].startswith("chatcmpl-")
    assert resp["choices"][0]["message"] == {"role": "assistant", "content": "Rome"}
    assert resp["choices"][0]["finish_reason"] == "stop"
    assert resp["model"] == "fake/recorder"
    assert resp["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    assert resp["agentedit"]["applied"] == ["eiffel"] and resp["agentedit"]["route"] == "in-context"
    assert STAGES <= set(resp["agentedit"]["timings"])
    json.dumps(resp)  # serialisable as is


def test_complete_and_text_styles(editor: Editor) -> None:
    a = editor.ask("The Eiffel Tower is located in", style="complete")
    assert a.applied == ["eiffel"]
    assert editor.backend.calls[-1][1][-1]["content"].startswith("Complete the sentence")  # type: ignore[attr-defined]
    t = editor.ask("The Eiffel Tower is located in", style="text")
    method, prompt, _ = editor.backend.calls[-1]  # type: ignore[attr-defined]
    assert method == "complete" and prompt.startswith("Updated facts")
    assert t.messages == [{"role": "prompt", "content": prompt}]


def test_forgotten_edit_no_longer_applies(editor: Editor) -> None:
    editor.forget("eiffel")
    ans = editor.ask(EIFFEL_Q)
    assert ans.applied == [] and editor.backend.calls[-1][1] == [{"role": "user", "content": EIFFEL_Q}]  # type: ignore[attr-defined]
    assert [e["action"] for e in editor.history("eiffel")] == ["add", "delete"]


def test_newer_edit_wins_in_answers(editor: Editor) -> None:
    rec = editor.edit("The Eiffel Tower is located in", "Berlin", subject="Eiffel Tower", id="eiffel-2")
    assert rec.supersedes == "eiffel"
    ans = editor.ask(EIFFEL_Q)
    assert ans.applied == ["eiffel-2"]
    system = editor.backend.calls[-1][1][0]["content"]  # type: ignore[attr-defined]
    assert "Berlin" in system and "Rome" not in system


def test_namespaces_in_the_editor(editor: Editor) -> None:
    ghost = editor.ask(EIFFEL_Q, namespace="ghost")  # a namespace never written to has no edits, on every entry point
    assert ghost.applied == [] and ghost.mode == "passthrough"
    with pytest.raises(EditNotFoundError, match="eiffel"):  # an edit of another namespace is not found there
        editor.forget("eiffel", namespace="ghost")
    editor.edit(statement="The Globex office moved to Lyon.", namespace="ops", id="globex")
    assert editor.ask(EIFFEL_Q, namespace="ops").applied == []
    assert [r.id for r in editor.edits("ops")] == ["globex"]
    assert {r.id for r in editor.edits()} == {"eiffel", "acme-ceo", "globex"}


def test_edit_errors_and_atomic_edit_many(editor: Editor) -> None:
    with pytest.raises(EditError, match="target_new is empty"):
        editor.edit("The mayor of Springfield is", "  ")
    with pytest.raises(EditError, match="edit #1"):
        editor.edit_many([{"statement": "Fine."}, {"prompt": "P is", "target_new": ""}])
    assert editor.memory.count() == 2


def test_update_import_export(editor: Editor, tmp_path: Path) -> None:
    new = editor.update("acme-ceo", target_new="John Roe")
    assert new.statement == "The CEO of Acme Corp is John Roe."
    out = tmp_path / "e.jsonl"
    assert editor.export_edits(out) == 2
    assert editor.export_edits(tmp_path / "all.jsonl", include_inactive=True) == 2
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"prompt": "The Globex CEO is", "subject": "Globex", "target_new": "Hank"}) + "\n", "utf-8")
    [rec] = editor.import_edits(src, namespace="ops")
    assert rec.namespace == "ops" and rec.actor == "import"


def test_editor_with_judge_scope_uses_the_backend(memory: EditMemory, make_backend) -> None:
    backend = make_backend(lambda msgs: "no" if "Decide whether" in msgs[-1]["content"] else "Paris")
    with Editor(memory=memory, backend=backend, scope="judge") as ed:
        ed.edit("The Eiffel Tower is located in", "Rome", subject="Eiffel Tower")
        assert isinstance(ed.checker, JudgeChecker)
        ans = ed.ask(EIFFEL_Q)
    assert ans.applied == [] and ans.text == "Paris"
    assert len(backend.calls) == 2 and backend.calls[-1][1] == [{"role": "user", "content": EIFFEL_Q}]


def test_calibrate_saves_with_the_store(tmp_path: Path, embedder, make_backend, counterfact_slice: Path) -> None:
    mem = EditMemory("cal", root=tmp_path, embedder=embedder)
    with Editor(memory=mem, backend=make_backend()) as ed:
        cal = ed.calibrate(counterfact_slice, n_cases=25, target_specificity=0.9)
        assert isinstance(ed.checker, RelationChecker)  # the default checker, rebuilt from the new calibration
        assert ed.checker.relation_threshold == cal.relation_threshold and ed.checker.fallback_threshold == cal.threshold
    with Editor(memory=mem, backend=make_backend(), scope="similarity") as sim:
        assert isinstance(sim.checker, SimilarityChecker) and sim.checker.threshold == cal.threshold
    saved = json.loads((tmp_path / "cal" / "store.json").read_text("utf-8"))
    assert saved["scope"]["calibration"]["threshold"] == cal.threshold
    with Editor(memory=EditMemory("cal", root=tmp_path, embedder=embedder), backend=make_backend()) as again:
        assert again.calibration.threshold == cal.threshold and again.calibration.n_cases == 25


def test_given_backend_is_not_closed_by_the_editor(memory: EditMemory, make_backend) -> None:
    backend = make_backend()
    Editor(memory=memory, backend=backend).close()
    assert backend.closed is False


def test_model_without_provider_prefix(memory: EditMemory) -> None:
    ed = Editor(model="gpt-4o", memory=memory)
    with pytest.raises(ConfigError, match="needs a provider prefix, e.g. 'openai/gpt-4o-mini'"):
        ed.backend


@pytest.mark.parametrize("kwargs,match", [
    ({"scope": "bogus"}, "unknown scope checker 'bogus'"),
    ({"injection": "rome"}, "unknown injection mode 'rome'"),
    ({"injection": "ike"}, "needs demo_pool="),
    ({"k": 0}, "at least 1"),
])
def test_editor_option_errors(memory: EditMemory, kwargs, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Editor(memory=memory, **kwargs)


def test_request_errors(editor: Editor) -> None:
    with pytest.raises(ConfigError, match="unknown style 'poem'"):
        editor.ask("q", style="poem")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no messages"):
        editor.chat([])
    with pytest.raises(ConfigError, match="message #0 must be an object"):
        editor.chat([{"content": "no role"}])
    with pytest.raises(ConfigError, match="the prompt is empty"):
        editor.ask("  ", style="text")
    assert editor.backend.calls == []  # type: ignore[attr-defined]
