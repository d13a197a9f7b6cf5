"""Unit tests of the ``agentedit`` command line (no model needed: edit, list, forget, history, import, export)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentedit import cli
from agentedit.errors import EditError

EIFFEL = ["The Eiffel Tower is located in", "Rome", "--subject", "Eiffel Tower"]


def _flat(text: str) -> str:
    """Rich output with its wrapping and tab expansion undone."""
    return " ".join(text.split())


@pytest.fixture()
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder):
    """Invoke the Typer app against a store under tmp_path; returns the click Result."""
    monkeypatch.setattr(cli.console, "width", 400)
    runner = CliRunner()
    base = ["--store-dir", str(tmp_path / "stores")]

    def invoke(*args: str):
        return runner.invoke(cli.app, [*base, *args])

    return invoke


@pytest.fixture()
def run_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], embedder):
    """Run the real entry point ``agentedit.cli.main`` (exit codes, error printing)."""
    monkeypatch.setattr(cli.err_console, "width", 400)  # no wrapping of error lines

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["agentedit", "--store-dir", str(tmp_path / "stores"), *args])
        with pytest.raises(SystemExit) as exc:
            cli.main()
        out, err = capsys.readouterr()
        return exc.value.code, out, err

    return invoke


def _ok(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_edit_json_and_list_json(run) -> None:
    rec = json.loads(_ok(run("edit", *EIFFEL, "--id", "eiffel", "--old", "Paris", "--alias", "La Tour Eiffel", "--json")))
    assert rec["id"] == "eiffel" and rec["statement"] == "The Eiffel Tower is located in Rome."
    assert rec["target_old"] == "Paris" and rec["metadata"]["aliases"] == ["La Tour Eiffel"]
    assert rec["relation"] == "The {} is located in"
    _ok(run("edit", "--statement", "The Globex office moved to Lyon.", "--id", "globex"))
    listed = json.loads(_ok(run("list", "--json")))
    assert [r["id"] for r in listed] == ["eiffel", "globex"]
    assert [r["id"] for r in json.loads(_ok(run("list", "--text", "lyon", "--json")))] == ["globex"]
    assert [r["id"] for r in json.loads(_ok(run("list", "--subject", "eiffel tower", "--json")))] == ["eiffel"]


def test_edit_human_output_mentions_supersession(run) -> None:
    assert "recorded eiffel in default: The Eiffel Tower is located in Rome." in _flat(_ok(run("edit", *EIFFEL, "--id", "eiffel")))
    out = _flat(_ok(run("edit", "The Eiffel Tower is located in", "Berlin", "--subject", "Eiffel Tower", "--id", "eiffel-2")))
    assert "(supersedes eiffel)" in out
    table = _ok(run("list"))
    assert "1 edit(s)" in table and "eiffel-2" in table
    assert "2 edit(s)" in _ok(run("list", "--all"))


def test_forget_and_history(run) -> None:
    _ok(run("edit", *EIFFEL, "--id", "eiffel"))
    gone = json.loads(_ok(run("forget", "eiffel", "--json")))
    assert gone["status"] == "retracted"
    assert json.loads(_ok(run("list", "--json"))) == []
    assert [r["status"] for r in json.loads(_ok(run("list", "--all", "--json")))] == ["retracted"]
    events = json.loads(_ok(run("history", "eiffel", "--json")))
    assert [e["action"] for e in events] == ["add", "delete"]
    assert events[1]["before"]["status"] == "active" and events[1]["after"]["status"] == "retracted"
    assert "history of eiffel" in _ok(run("history", "eiffel"))


def test_namespace_option_and_commands(run) -> None:
    _ok(run("--namespace", "ops", "edit", "--statement", "The Globex office moved to Lyon.", "--id", "globex"))
    assert json.loads(_ok(run("list", "--json"))) == []
    assert [r["namespace"] for r in json.loads(_ok(run("-n", "ops", "list", "--json")))] == ["ops"]
    assert [r["id"] for r in json.loads(_ok(run("list", "--every-namespace", "--json")))] == ["globex"]
    assert "namespace team-b ready" in _ok(run("namespace", "create", "team-b"))
    out = _flat(_ok(run("namespace", "list")))
    assert out == "default 0 active edit(s) ops 1 active edit(s) team-b 0 active edit(s)"


def test_import_and_export(run, tmp_path: Path) -> None:
    src = tmp_path / "edits.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in [
        {"prompt": "The Eiffel Tower is located in", "subject": "Eiffel Tower", "target_new": "Rome", "id": "eiffel"},
        {"prompt": "The CEO of Acme Corp is", "subject": "Acme Corp", "target_new": "Jane Doe", "id": "acme"},
    ]) + "\n", "utf-8")
    res = json.loads(_ok(run("import", str(src), "--json")))
    assert res == {"imported": 2, "ids": ["eiffel", "acme"]}
    out = tmp_path / "out.jsonl"
    assert f"wrote 2 edit(s) to {out}" in _flat(_ok(run("export", str(out))))
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["eiffel", "acme"] and rows[0]["actor"] == "import"
    csv = tmp_path / "more.csv"
    csv.write_text("statement,id\nThe Globex office moved to Lyon.,globex\n", "utf-8")
    assert "imported 1 edit(s) into default" in _flat(_ok(run("import", str(csv))))


def test_ask_and_chat_with_a_recording_backend(run, monkeypatch: pytest.MonkeyPatch, make_backend) -> None:
    backend = make_backend("Rome")
    specs: list[str] = []

    def resolve(cfg, **kwargs):  # the Editor builds its backend from ModelSettings, in one place
        specs.append(str(cfg.spec))
        return backend

    monkeypatch.setattr("agentedit.backends.make_backend", resolve)
    _ok(run("edit", *EIFFEL, "--id", "eiffel"))
    ans = json.loads(_ok(run("--model", "openai/gpt-4o-mini", "ask", "In which city is the Eiffel Tower?",
                             "--max-tokens", "9", "--json")))
    assert specs == ["openai/gpt-4o-mini"]
    assert ans["text"] == "Rome" and ans["applied"] == ["eiffel"] and ans["mode"] == "in-context"
    assert {"retrieve", "scope", "compose", "generate", "total"} <= set(ans["timings"])
    method, sent, params = backend.calls[-1]
    assert method == "chat" and params == {"max_tokens": 9} and sent[0]["role"] == "system"
    assert backend.closed  # the Editor resolved the backend, so it closes it
    res = run("--model", "openai/gpt-4o-mini", "chat", "-M", "What is the boiling point of water?", "--json")
    resp = json.loads(_ok(res))
    assert resp["choices"][0]["message"]["content"] == "Rome" and resp["agentedit"]["route"] == "passthrough"
    assert backend.calls[-1][1] == [{"role": "user", "content": "What is the boiling point of water?"}]
    trace = run("--model", "openai/gpt-4o-mini", "ask", "In which city is the Eiffel Tower?", "--trace")
    assert _ok(trace).strip() == "Rome"
    assert "mode=in-context" in _flat(trace.stderr) and "in eiffel" in _flat(trace.stderr)


def test_errors_propagate_from_the_app(run) -> None:
    res = run("edit", "The mayor of Springfield is", "")
    assert res.exit_code != 0 and isinstance(res.exception, EditError)


def test_main_empty_target_exits_2_with_a_clear_message(run_main, tmp_path: Path) -> None:
    code, out, err = run_main("edit", "The mayor of Springfield is", "   ")
    assert code == 2
    assert "error:" in err and "target_new is empty or only whitespace" in err
    assert "Traceback" not in err and out == ""
    assert not list((tmp_path / "stores" / "default").glob("*.tmp"))
    code, out, _ = run_main("list", "--json")
    assert code == 0 and json.loads(out) == []


def test_main_invalid_jsonl_line_exits_2_and_imports_nothing(run_main, tmp_path: Path) -> None:
    src = tmp_path / "edits.jsonl"
    src.write_text(json.dumps({"statement": "Fine."}) + "\n" + '{"statement": oops}\n', "utf-8")
    code, _, err = run_main("import", str(src))
    assert code == 2 and "line 2 is not valid JSON" in err and "edits.jsonl" in err
    bad_edit = tmp_path / "bad.jsonl"
    bad_edit.write_text(json.dumps({"statement": "Fine."}) + "\n" + json.dumps({"prompt": "X is", "target_new": ""}) + "\n", "utf-8")
    code, _, err = run_main("import", str(bad_edit))
    assert code == 2 and "line 2: target_new is empty" in err
    code, out, _ = run_main("list", "--json")
    assert code == 0 and json.loads(out) == []


def test_main_other_errors_exit_2(run_main) -> None:
    code, _, err = run_main("forget", "nope")
    assert code == 2 and "no edit with id 'nope'" in err
    code, out, _ = run_main("-n", "ghost", "list", "--json")  # never written to: no edits, as over HTTP
    assert code == 0 and json.loads(out) == []
    code, _, err = run_main("-n", "bad name!", "list")
    assert code == 2 and "invalid namespace 'bad name!'" in err
    code, _, err = run_main("--scope", "cosine", "list")
    assert code == 2 and "unknown scope checker 'cosine'" in err
    code, _, err = run_main("edit", "--statement", "x" * 100_000)
    assert code == 2 and "the limit is 2,000" in err


def test_main_success_exits_0(run_main) -> None:
    code, out, _ = run_main("edit", *EIFFEL, "--id", "eiffel", "--json")
    assert code == 0 and json.loads(out)["id"] == "eiffel"


def test_eval_without_a_terminal_prints_plain_progress_lines(run, monkeypatch: pytest.MonkeyPatch, make_backend,
                                                            tmp_path: Path) -> None:
    """Under nohup or CI there is no live bar, so the eval command prints a plain line as each step ends."""
    monkeypatch.setattr("agentedit.evaluation.runner.resolve_backend", lambda spec, **kw: make_backend("Rome"))
    data = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    res = run("eval", "--dataset", "counterfact-edit", "--method", "none", "--method", "prefix-all", "--limit", "2",
              "--data-dir", str(data), "--out-dir", str(tmp_path / "runs"), "--run-name", "plain")
    _ok(res)
    lines = [ln for ln in res.stderr.splitlines() if "counterfact-edit" in ln]
    assert any(ln.endswith("counterfact-edit · none · all edits: 6/6") for ln in lines), res.stderr
    assert any(ln.endswith("counterfact-edit · prefix-all · all edits: 6/6") for ln in lines), res.stderr
    assert (tmp_path / "runs" / "plain" / "results.json").is_file()
